"""Settings: read once from the environment and `.env` at an entry point, then passed down.

Every variable is `NEWSLETTER_<FIELD>`; the environment wins over `.env` (pydantic-settings'
order). A bad value stops start-up with a message naming the variable and the value.
"""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.errors import ConfigError

PREFIX = "NEWSLETTER_"
# Values never echoed back in an error message.
SECRET_FIELDS = {"smtp_password", "esp_api_key", "secret_key", "admin_password",
                 "mailgun_webhook_signing_key", "postmark_webhook_password",
                 "secret_key_fallbacks", "redis_url", "bounce_imap_url",
                 "alert_webhook_url"}  # a Slack/Mattermost webhook URL is its own credential


def check_address(value: str) -> str:
    """Syntax-check one address (no DNS) and return it normalised. No SMTPUTF8: an address
    with non-ASCII before the @ cannot go into the headers our transports write, so it is
    refused here rather than bounced later."""
    from email_validator import validate_email  # ~20 ms to import: only when there is one

    return validate_email(value.strip(), check_deliverability=False,
                          allow_smtputf8=False).normalized


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", env_file_encoding="utf-8", extra="forbid",
        frozen=True,
    )

    database_url: str = "sqlite:///newsletter.db"
    transport: Literal["outbox", "smtp", "sendgrid", "mailgun", "postmark"] = "outbox"
    outbox_dir: Path = Path("outbox")

    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_timeout: float = Field(30.0, gt=0)

    esp_api_key: str | None = None
    esp_api_url: str | None = None
    esp_timeout: float = Field(30.0, gt=0)
    mailgun_domain: str | None = None

    sender: str = Field("The Daily Spin <news@localhost>", validation_alias="NEWSLETTER_FROM")
    reply_to: str | None = None
    list_name: str = "The Daily Spin"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str | None = None
    # Older keys, comma-separated: tokens they signed still verify (key rotation); new
    # tokens use secret_key only.
    secret_key_fallbacks: str = ""
    # Days a preferences / data-export link works; unsubscribe links never expire.
    manage_token_days: int = Field(30, ge=1, le=3650)
    postal_address: str | None = None

    send_time: dt.time = dt.time(6, 0)
    timezone: str = "UTC"
    batch_size: int | None = Field(None, ge=1)
    rate_limit: float = Field(0.0, ge=0)
    test_recipients: str = ""
    size_budget_kb: int = Field(100, ge=10)
    # Past this many words the email shows a narrative's opening and a link to the whole of
    # it on the web edition (newsletter.render.prose.opening); the text part keeps it whole.
    narrative_words: int = Field(120, ge=20)
    catchup_hours: float = Field(6.0, ge=0, le=23)
    lease_seconds: int = Field(300, ge=1)
    # How long a run keeps retrying transient trouble (4xx, 429, 503, a relay that is down)
    # before it stops and leaves the copies pending for the next `send`.
    retry_window: dt.timedelta = dt.timedelta(hours=4)
    # The circuit breaker: more than this percent of permanent refusals among the last
    # `breaker_window` attempts means the relay or the provider is refusing us, not the
    # readers: the run stops and nobody is suppressed.
    breaker_window: int = Field(50, ge=5, le=10_000)
    breaker_percent: float = Field(20.0, gt=0, le=100)
    message_id_domain: str | None = None
    send_workers: int = Field(1, ge=1, le=64)  # the daemon's parallel senders
    # Per-recipient delivery rows are kept this long (newsletter.delivery.prune).
    keep_days: int = Field(90, ge=1)
    admin_password: str | None = None
    trusted_proxies: int = Field(0, ge=0, le=5)  # reverse proxies setting X-Forwarded-For
    # Where the web app's rate limits count (Flask-Limiter storage); unset: each process's
    # memory, exact only with one process.
    redis_url: str | None = None
    # Sign-up posts per client address, in Flask-Limiter's syntax ("10/hour", "5 per minute").
    signup_rate_limit: str = "10/hour"

    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_private_key_path: Path | None = None

    sendgrid_webhook_public_key: str | None = None
    mailgun_webhook_signing_key: str | None = None
    postmark_webhook_username: str | None = None
    postmark_webhook_password: str | None = None

    # Bounces and complaints by mail (newsletter/bounces).
    bounce_address: str | None = None
    bounce_imap_url: str | None = None
    bounce_imap_done_folder: str = "Processed"
    bounce_fetch_minutes: int | None = Field(None, ge=1)
    soft_bounce_limit: int = Field(3, ge=1)

    # Operating it (README: Operating it).
    log_format: Literal["text", "json"] = "text"
    alert_webhook_url: str | None = None
    alert_failed_percent: float = Field(2.0, ge=0, le=100)
    metrics_port: int | None = Field(None, ge=1, le=65535)

    @field_validator("send_time", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return dt.datetime.strptime(value.strip(), "%H:%M").time()
            except ValueError:
                raise ValueError("expected a 24-hour time HH:MM, e.g. 06:00") from None
        return value

    @field_validator("signup_rate_limit")
    @classmethod
    def _limit(cls, value: str) -> str:
        if value == cls.model_fields["signup_rate_limit"].default:
            return value  # known good: importing the parser costs every command ~15 ms
        from limits import parse_many  # Flask-Limiter's own parser: the syntax it accepts

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("expected a rate limit such as 10/hour or 5 per minute") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("retry_window", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value.lower())
            if not match:
                raise ValueError("expected a duration such as 4h, 90m or 600 (seconds)")
            unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
            return dt.timedelta(seconds=float(match.group(1)) * unit)
        return value

    @field_validator("message_id_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9.-]+", value):
            raise ValueError("expected an ASCII domain name, e.g. news.example.org")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone name, e.g. Europe/London") from None
        return value

    @field_validator("base_url", "esp_api_url", "alert_webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or len(value.split("/")[2]) == 0:
            raise ValueError("expected an http:// or https:// URL")
        return _ascii_url(value.rstrip("/"))

    @field_validator("sender", "reply_to")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "\r" in value or "\n" in value:
            raise ValueError("must be one line")
        # Plain shape check: a sender at a dotless host (news@localhost, the embedded
        # default) is fine for the outbox, though email-validator would refuse it.
        local, at, domain = parseaddr(value)[1].rpartition("@")
        if not (local and at and domain) or " " in domain:
            raise ValueError("expected 'Name <address>' or an address")
        return value

    @field_validator("test_recipients")
    @classmethod
    def _recipients(cls, value: str) -> str:
        if not value.strip():
            return ""
        from email_validator import EmailNotValidError

        try:
            return ",".join(check_address(a) for a in value.split(",") if a.strip())
        except EmailNotValidError as err:
            raise ValueError(f"expected a comma list of addresses: {err}") from None

    @field_validator("bounce_address")
    @classmethod
    def _bounce_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local, at, domain = value.strip().rpartition("@")
        # VERP puts "+token" after the local part (bounces+token@domain): no "+" of its own.
        if not re.fullmatch(r"[A-Za-z0-9._-]+", local) or not at or not domain \
                or not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
            raise ValueError("expected a plain address such as bounces@news.example.org "
                             "(letters, digits, '.', '_' or '-' before the @)")
        return value.strip()

    @field_validator("bounce_imap_url")
    @classmethod
    def _imap_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise ValueError("expected imaps://user:password@host/INBOX (or imap://, which "
                             "uses STARTTLS)")
        return value

    @model_validator(mode="after")
    def _together(self) -> Settings:
        dkim = [self.dkim_domain, self.dkim_selector, self.dkim_private_key_path]
        if any(dkim) and not all(dkim):
            raise ValueError("NEWSLETTER_DKIM_DOMAIN, _SELECTOR and _PRIVATE_KEY_PATH go together")
        if self.dkim_private_key_path and not self.dkim_private_key_path.is_file():
            raise ValueError(f"NEWSLETTER_DKIM_PRIVATE_KEY_PATH: no file at "
                             f"{self.dkim_private_key_path}")
        if self.bounce_fetch_minutes and not self.bounce_imap_url:
            raise ValueError("NEWSLETTER_BOUNCE_FETCH_MINUTES needs NEWSLETTER_BOUNCE_IMAP_URL")
        return self

    # Derived values, so no caller parses a setting twice.
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def test_recipient_list(self) -> list[str]:
        return [a for a in self.test_recipients.split(",") if a]

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @property
    def message_id_host(self) -> str:
        """The right-hand side of every Message-ID: NEWSLETTER_MESSAGE_ID_DOMAIN, else the
        From address's domain (RFC 5322 3.6.4: unique, and ours)."""
        domain = self.message_id_domain or self.sender_address.rpartition("@")[2]
        try:
            return domain.encode("idna").decode("ascii") if domain else "localhost"
        except UnicodeError:
            return "localhost"

    @property
    def list_id(self) -> str:
        """RFC 2919 List-Id: a name and a unique id under the sender's domain."""
        domain = self.sender_address.rpartition("@")[2] or "localhost"
        return f"{self.list_name} <daily.{domain}>"

    def today(self, now: dt.datetime | None = None) -> dt.date:
        """Today's date in NEWSLETTER_TIMEZONE: the date 'today's edition' means."""
        return (now or dt.datetime.now(dt.UTC)).astimezone(self.zone).date()

    @property
    def secret_keys(self) -> list[str]:
        """The current key first, then the fallbacks: itsdangerous signs with the last of
        a list and verifies with any, so callers reverse this."""
        return [self.require_secret(), *(k.strip() for k in self.secret_key_fallbacks.split(",")
                                         if k.strip())]

    def require_secret(self) -> str:
        if not self.secret_key:
            raise ConfigError("NEWSLETTER_SECRET_KEY is not set: it signs the unsubscribe, "
                              "preference and confirmation links (and the web app's forms)")
        return self.secret_key


def _ascii_url(url: str) -> str:
    """Every link we mail goes into headers (List-Unsubscribe) and must be ASCII: an
    internationalised host becomes IDNA (RFC 5890), other characters are percent-encoded
    (RFC 3987 3.1), so a non-ASCII base URL works instead of failing every copy."""
    if url.isascii():
        return url
    parts = urlsplit(url)
    try:
        host = parts.hostname.encode("idna").decode("ascii") if parts.hostname else ""
    except UnicodeError:
        raise ValueError("the host name is not a valid internationalised domain") from None
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe="/%:@!$&'()*+,;="),
                       quote(parts.query, safe="=&%/?"), ""))


def _variable(loc: tuple) -> str:
    field = str(loc[0]) if loc else ""
    if field.startswith(PREFIX):
        return field
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    return PREFIX + field.upper() if field else "settings"


def load_settings(**overrides: object) -> Settings:
    """Read and validate every setting, or raise ConfigError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            name = _variable(e["loc"])
            message = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                lines.append(f"{name}: unknown setting (in .env)")
                continue
            shown = "" if not e["loc"] or e["loc"][0] in SECRET_FIELDS else f" (got {e['input']!r})"
            lines.append(f"{name}: {message}{shown}")
        raise ConfigError("bad setting: " + "; ".join(lines)) from None
