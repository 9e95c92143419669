"""What the ESP adapters share: one requests.Session, a timeout, a retry policy, and the
fixed send sequence (check recipients -> split into calls -> post -> parse per recipient).

Retries are a small loop rather than urllib3's Retry because the policy needs things Retry
does not do: SendGrid's X-RateLimit-Reset header (Retry only reads Retry-After), POST
retried only when the request never left (no idempotency keys on these APIs, so a read
timeout is ambiguous and must be reported, not repeated), a gateway's 502/504 never
retried (the API behind it may have taken the batch), the provider's own 500 retried at
most MAX_500 times (Mailgun: retry with backoff; Postmark: usually lost) and then reported
as ambiguous, 401/403 turned into AuthRefused, and the provider's body carried in every
error. Backoff is capped, exponential, jittered.
"""

from __future__ import annotations

import email.utils
import logging
import secrets
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson
import requests
from urllib3.exceptions import NewConnectionError

from newsletter.backoff import backoff
from newsletter.errors import AuthRefused, ConfigError, TransportBug, TransportError
from newsletter.mail.failures import Cause
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.mail.mime import HeaderError, address_value, encode_address
from newsletter.providers.base import Transport, unique_runs, unsendable
from newsletter.render.slots import SlottedText, html_values
from newsletter.settings import Settings

SHOWN, KEPT = 500, 2000  # characters of a provider's answer: in the message, on the error
log = logging.getLogger(__name__)
MAX_500 = 3  # a provider's own 500s before the batch is parked as ambiguous
# The name under which each copy carries its delivery id to the provider (SendGrid
# custom_args, Mailgun v: variables, Postmark Metadata), and gets it back in webhooks.
DELIVERY_ARG = "delivery_id"

def api_base(public_url: str, override: str | None) -> str:
    """NEWSLETTER_ESP_API_URL replaces scheme, host and port; the provider's paths stay."""
    if not override:
        return public_url
    parts = urlsplit(override)
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError("NEWSLETTER_ESP_API_URL: give only the scheme, host and port "
                          f"(the API paths are added), got {override!r}")
    return f"{parts.scheme}://{parts.netloc}"


class HttpTransport(Transport):
    public_url: ClassVar[str]

    def __init__(self, settings: Settings, *, backoff_base: float = 1.0,
                 backoff_cap: float = 60.0, max_attempts: int = 5, max_wait: float = 300.0,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(settings)
        if not settings.esp_api_key:
            raise ConfigError(f"NEWSLETTER_ESP_API_KEY is not set: the {self.name} "
                              "transport needs it")
        self.api_key = settings.esp_api_key
        self.base_url = api_base(self.public_url, settings.esp_api_url)
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_attempts, self.max_wait, self.sleep = max_attempts, max_wait, sleep
        self.session: requests.Session | None = None

    def open(self) -> None:
        if self.session is None:
            self.session = requests.Session()
            self.session.headers["User-Agent"] = "daily-spin-newsletter"

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.close()

    # The fixed send sequence.
    def send_batch(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[Result]:
        self.check_batch(recipients)
        self.open()
        results, good = _check_headers(recipients)
        calls = self.split(envelope, [recipients[i] for i in good])
        done: list[Result] = []
        for number, group in enumerate(calls):
            try:
                done += self.send_call(envelope, group)
            except Exception as err:
                # Keep what is known (earlier calls, refused addresses); the caller
                # records it and retries only the rest. A bug of ours after this call's
                # request left leaves its group's fate unknown, like a timeout.
                failed = err if isinstance(err, TransportError) else TransportBug(self.name,
                                                                                  err)
                failed.partial = [r for r in results if r is not None] + done
                failed.untouched = [r for later in calls[number + 1:] for r in later]
                if failed is err:
                    raise
                raise failed from err
        for index, result in zip(good, done, strict=True):
            results[index] = result
        return [r for r in results if r is not None]

    def split(self, envelope: Envelope,
              recipients: Sequence[Recipient]) -> list[Sequence[Recipient]]:
        return list(unique_runs(recipients))

    @abstractmethod
    def send_call(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[Result]:
        """One API call for `recipients`; one Result each, in order."""

    # HTTP with the retry policy.
    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to the provider; a 2xx response, or TransportError / AuthRefused."""
        assert self.session is not None
        url = self.base_url + path
        if "json" in kwargs:  # encoded once, for every attempt, by orjson (pyproject.toml)
            kwargs["data"] = orjson.dumps(kwargs.pop("json"))
            kwargs["headers"] = {**kwargs.get("headers", {}), "Content-Type": "application/json"}
        problem, status, body, slept, errors_500 = "", None, None, 0.0, 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.session.post(url, timeout=self.settings.esp_timeout, **kwargs)
            except requests.exceptions.SSLError as err:
                raise TransportError(f"{self.name}: TLS with {url} failed: {err}") from None
            except requests.RequestException as err:
                if not _never_sent(err):
                    raise TransportError(
                        f"{self.name}: no answer after the request was sent, so the messages "
                        f"may or may not have been accepted: {err}",
                        cause=Cause.AMBIGUOUS) from None
                problem = f"cannot connect to {url}: {err}"
                wait = backoff(attempt, self.backoff_base, self.backoff_cap)
            else:
                status, body = response.status_code, response.text[:KEPT]
                if 200 <= status < 300:
                    return response
                errors_500 += status == 500
                error = _call_error(self.name, status, body, errors_500)
                if error is not None:
                    raise error
                problem = f"HTTP {status}: {body}"
                asked = rate_limit_wait(response) if status == 429 else None
                wait = asked if asked is not None else backoff(attempt, self.backoff_base,
                                                               self.backoff_cap)
            wait = min(wait, self.max_wait)
            # The batch waits under its claim's lease: give up before outliving it.
            if attempt == self.max_attempts or slept + wait > self.settings.lease_seconds / 2:
                break
            # The problem names the URL and the provider's words, never the key.
            log.info("%s: %s; retrying in %.1fs (attempt %d of %d)", self.name,
                     problem[:SHOWN], wait, attempt, self.max_attempts)
            self.sleep(wait)
            slept += wait
        raise TransportError(f"{self.name}: gave up after {attempt} attempts: "
                             f"{problem}", cause=Cause.TRANSIENT, status=status, body=body)

    def json_body(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self.unexpected(response, "not with JSON") from None

    def unexpected(self, response: requests.Response, what: str) -> TransportError:
        """A success we cannot read: the provider may well have taken the messages, so it
        is ambiguous (never resent silently), and the run stops (it is not transient)."""
        return TransportError(f"{self.name} answered HTTP {response.status_code} but {what}: "
                              f"{response.text[:SHOWN]}", cause=Cause.AMBIGUOUS,
                              status=response.status_code, body=response.text[:KEPT])


def _call_error(name: str, status: int, body: str, errors_500: int) -> TransportError | None:
    """The error a non-2xx answer ends the call with, or None to try it again (HTTP 429,
    5xx, a provider's own 500 fewer than MAX_500 times)."""
    if status in (401, 403):
        return AuthRefused(f"{name} refused the API key (HTTP {status}): check "
                           f"NEWSLETTER_ESP_API_KEY. It said: {body}", status=status, body=body)
    cause = http_cause(status)
    if errors_500 >= MAX_500:
        return TransportError(f"{name} answered HTTP 500 {errors_500} times: the messages may "
                              f"or may not have been accepted. It said: {body}",
                              cause=Cause.AMBIGUOUS, status=status, body=body)
    if cause is Cause.AMBIGUOUS:
        return TransportError(f"{name}: a gateway answered HTTP {status}, so the API behind it "
                              f"may or may not have taken the messages: {body}",
                              cause=cause, status=status, body=body)
    if cause is not Cause.TRANSIENT:  # 400, 413, 422...: the same call fails again
        return TransportError(f"{name} refused the request (HTTP {status}): {body}",
                              cause=cause, status=status, body=body)
    return None


def http_cause(status: int) -> Cause:
    """An ESP's whole-call HTTP answer. 502 and 504 come from a gateway in front of the
    API: the request may have been processed, so its fate is unknown. A provider's own 500
    is handled by the caller (retried a few times, then ambiguous)."""
    if status in (502, 504):
        return Cause.AMBIGUOUS
    if status in (408, 425, 429) or status >= 500:
        return Cause.TRANSIENT
    if status == 413:
        return Cause.MESSAGE
    return Cause.CONFIG  # 400 our request, 401/403 our key or sender, 404 our URL


def rate_limit_wait(response: requests.Response) -> float | None:
    """Seconds the provider asked us to wait: Retry-After (RFC 9110 10.2.3, seconds or
    an HTTP date) or SendGrid's X-RateLimit-Reset (a Unix time)."""
    after = response.headers.get("Retry-After")
    if after:
        if after.strip().isdigit():
            return float(after)
        try:
            return max(0.0, email.utils.parsedate_to_datetime(after).timestamp()
                       - time.time())
        except (TypeError, ValueError):
            return None
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, int(reset) - time.time())
    return None


def _check_headers(recipients: Sequence[Recipient]) -> tuple[list[Result | None], list[int]]:
    """An `invalid` result for each recipient whose address or link cannot go into a
    header; the indexes of the others, which go to the provider."""
    results: list[Result | None] = [None] * len(recipients)
    good: list[int] = []
    for index, recipient in enumerate(recipients):
        try:
            # The address is what can fail (a name is always encodable): checked alone, not
            # by formatting the whole mailbox, which nobody here reads (~2 us a copy).
            encode_address(recipient.email)
            address_value(recipient.values["unsubscribe_url"], "unsubscribe URL")
        except HeaderError as err:
            results[index] = unsendable(recipient, err)
        else:
            good.append(index)
    return results, good


def _never_sent(err: requests.RequestException) -> bool:
    """Only a failed connect proves the request never left; anything later is ambiguous."""
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(err, requests.exceptions.ConnectionError) and err.args:
        return isinstance(getattr(err.args[0], "reason", None), NewConnectionError)
    return False


class Tags:
    """Per-send random substitution tags for ESP-side personalisation: story text can never
    hold one (64 random bits, and checked absent), unlike fixed tags such as -unsubscribe-
    or %recipient.x% that an article might quote. HTML and text get separate tags because
    a value goes into HTML escaped (html_values) and into text as it is."""

    def __init__(self, envelope: Envelope, form: Callable[[str], str]):
        texts = (*envelope.html.literals, *envelope.text.literals, envelope.subject)
        while True:
            self.token = secrets.token_hex(8)
            if not any(self.token in text for text in texts):
                break
        self.form = form
        self.slots = sorted({*envelope.html.slots, *envelope.text.slots, "unsubscribe_url"})
        # Every slot's two names, made once: values() runs per recipient, a million a day.
        self._name = {(slot, html): f"s{self.token}{number}{'h' if html else 't'}"
                      for number, slot in enumerate(self.slots) for html in (False, True)}
        self._names = [(name, slot, html) for (slot, html), name in self._name.items()]
        self._formed = [(form(name), slot, html) for name, slot, html in self._names]

    def name(self, slot: str, html: bool = False) -> str:
        return self._name[slot, html]

    def extra(self, name: str) -> str:
        """A variable name for a value that is not a slot (e.g. the delivery id)."""
        return f"x{self.token}{name}"

    def tag(self, slot: str, html: bool = False) -> str:
        return self.form(self.name(slot, html))

    def template(self, text: SlottedText, html: bool = False) -> str:
        parts = [text.literals[0]]
        for slot, literal in zip(text.slots, text.literals[1:], strict=True):
            parts += [self.tag(slot, html), literal]
        return "".join(parts)

    def values(self, recipient: Recipient, formed: bool = False) -> dict[str, str]:
        """Name -> value, HTML and text variants of every slot; `formed`: the names as
        tags (SendGrid's substitutions are keyed by the tag itself)."""
        raw = recipient.values
        escaped = html_values({slot: raw[slot] for slot in self.slots})
        return {name: escaped[slot] if html else raw[slot]
                for name, slot, html in (self._formed if formed else self._names)}
