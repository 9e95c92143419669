"""One root error for everything a user can cause or fix.

The command line and the web app catch `NewsletterError` and print its message; anything
else is a bug and keeps its traceback.
"""


class NewsletterError(Exception):
    """Root of every error the project reports to a person."""


class ConfigError(NewsletterError):
    """A setting is missing or has a bad value."""


class StoryFormatError(NewsletterError):
    """A story file cannot be read; names the file, the line and what was expected."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.reason = path, line, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class NoStories(NewsletterError):
    """The day has no stories: nothing is rendered or sent, and nothing is marked done."""

    def __init__(self, date):
        self.date = date
        super().__init__(f"no stories for {date.isoformat()}; import some with `newsletter "
                         f"stories import PATH --date {date.isoformat()}`")


class EditionFrozen(NewsletterError):
    """The day's edition is frozen (its first send began): its stories can no longer change.

    A correction goes into the next open edition (`correction_day`): subscribers already
    have, or are getting, the frozen version, and the archive shows that same version.
    """

    def __init__(self, date, state: str, frozen_at, correction_day):
        self.date, self.state, self.correction_day = date, state, correction_day
        super().__init__(
            f"The edition of {date:%A %d %B %Y} is {state}: it was frozen at "
            f"{frozen_at:%H:%M} UTC on {frozen_at:%d %B}, when its first send began, and "
            "every subscriber gets that version, as does its archive page. Its stories can no "
            "longer be changed, moved or deleted: put a correction in the edition of "
            f"{correction_day:%A %d %B %Y}.")


class SubscriberError(NewsletterError):
    """A subscriber cannot be added, changed or found."""


class TransportError(NewsletterError):
    """A whole call to a mail transport failed (network, auth, protocol, a refusal that
    is about us rather than one recipient).

    Carries the provider's status and body when there was one, so operators see what
    the provider said, and its cause (newsletter.mail.failures.Cause): transient (try again
    later), ambiguous (the request left and no answer came back: the messages may have
    been accepted), or one that stops the run (message, config).
    """

    def __init__(self, message: str, *, cause: str = "config", status: int | None = None,
                 body: str | None = None):
        super().__init__(message)
        self.cause, self.status, self.body = cause, status, body
        # Results known before the call failed (earlier messages of the batch, refused
        # addresses): the caller records these and retries only the rest.
        self.partial: list = []
        # Recipients of the batch that no request carried yet: certainly not sent, even
        # when the failed request itself is ambiguous.
        self.untouched: list = []

    @property
    def transient(self) -> bool:
        return self.cause == "transient"

    @property
    def ambiguous(self) -> bool:
        return self.cause == "ambiguous"


class AuthRefused(TransportError):
    """The provider refused our credentials: stop the run, retrying cannot help."""


class TransportBug(TransportError):
    """A transport failed with a bug of ours in the middle of a batch. Copies before it
    are known (`partial`), those after it untouched; the one in hand may have gone out,
    so it is ambiguous, and the run stops: a bug is not retried."""

    def __init__(self, transport: str, err: Exception):
        super().__init__(f"a bug in the {transport} transport ({type(err).__name__}: {err})",
                         cause="ambiguous")


class SendError(NewsletterError):
    """A send run cannot start or had to stop."""
