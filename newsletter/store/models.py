"""The store: typed SQLAlchemy 2 models. Alembic (newsletter/migrations) owns the schema."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC timestamps on both engines: SQLite keeps no zone, so one is put back on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict: JSON}


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: readable in SQL, same on both engines.
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=20,
                values_callable=lambda members: [m.value for m in members])


class Story(Base):
    __tablename__ = "stories"
    __table_args__ = (UniqueConstraint("date", "position", name="uq_stories_date_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    position: Mapped[int]
    title: Mapped[str] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
    image_credit: Mapped[str | None] = mapped_column(Text)
    source_file: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    facts: Mapped[list[Fact]] = relationship(
        order_by="Fact.position", cascade="all, delete-orphan", lazy="selectin")
    narratives: Mapped[list[Narrative]] = relationship(
        order_by="Narrative.position", cascade="all, delete-orphan", lazy="selectin")
    sources: Mapped[list[Source]] = relationship(
        order_by="Source.position", cascade="all, delete-orphan", lazy="selectin")


class Fact(Base):
    __tablename__ = "facts"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          index=True)
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)


class Narrative(Base):
    __tablename__ = "narratives"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          index=True)
    position: Mapped[int]
    label: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"),
                                          index=True)
    position: Mapped[int]
    label: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # Lower-cased address: the one way addresses are compared (CONTRACT: case-insensitive).
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus, "subscriber_status"), default=SubscriberStatus.PENDING)
    source: Mapped[str | None] = mapped_column(String(40))  # how consent was given
    consent_ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None]
    status_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    paused_until: Mapped[dt.date | None] = mapped_column(Date)

    # Ids are never reused (SQLite would reuse the highest after a delete): a link token
    # holds the id, and an erased person's old links must not reach the next person.
    __table_args__ = (Index("ix_subscribers_status_id", "status", "id"),
                      {"sqlite_autoincrement": True})


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    REMOVED = "removed"


class Suppression(Base):
    """Addresses never to be mailed again, whatever the subscribers table says."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(
        _enum(SuppressionReason, "suppression_reason"))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SuppressionChange(Base):
    """Who lifted which suppression, when and why it had been there: operators undo
    suppressions (`subscribers unsuppress`), and every undo leaves a trace."""

    __tablename__ = "suppression_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_key: Mapped[str] = mapped_column(String(320), index=True)
    action: Mapped[str] = mapped_column(String(20))  # lifted
    reason: Mapped[str] = mapped_column(String(20))  # the reason that was lifted
    detail: Mapped[str | None] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EditionStatus(enum.StrEnum):
    SENDING = "sending"
    COMPLETE = "complete"


class Edition(Base):
    """One per date: the frozen render that every subscriber of that day receives."""

    __tablename__ = "editions"

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, unique=True)
    subject: Mapped[str] = mapped_column(Text)
    # The rendered content with its per-recipient slots (see newsletter.render.slots), as JSON.
    content: Mapped[dict]
    status: Mapped[EditionStatus] = mapped_column(
        _enum(EditionStatus, "edition_status"), default=EditionStatus.SENDING)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None]
    # Delivery counts by state, kept when `newsletter prune` deletes the per-recipient rows
    # (newsletter.delivery.prune): `status` of an old edition answers from here.
    counts: Mapped[dict | None]
    pruned_at: Mapped[dt.datetime | None]


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"    # claimed by a sender, under a lease
    SENT = "sent"
    FAILED = "failed"      # permanent: the reason is in `error`
    UNKNOWN = "unknown"    # lease expired mid-send: may or may not have gone out
    SKIPPED = "skipped"    # unsubscribed or suppressed after the audience was frozen


LEASED = text("state = 'sending'")


class Delivery(Base):
    """One row per (edition, subscriber): the database decides who has been sent what."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # Subscriber first: it also finds a person's rows when erasing them cascades here
        # (ON DELETE CASCADE runs one DELETE per subscriber), so no index of its own.
        UniqueConstraint("subscriber_id", "edition_id", name="uq_deliveries_subscriber_edition"),
        Index("ix_deliveries_edition_state_id", "edition_id", "state", "id"),
        # Only rows under a lease, by when it ends: lease expiry and renewal touch these few
        # rows, never the whole ledger (newsletter.store.leases).
        Index("ix_deliveries_leased", "lease_until", postgresql_where=LEASED,
              sqlite_where=LEASED),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("subscribers.id", ondelete="CASCADE"))
    state: Mapped[DeliveryState] = mapped_column(
        _enum(DeliveryState, "delivery_state"), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    # Who a refusal was about (newsletter.mail.failures.Cause), for `status --failures`.
    failure: Mapped[str | None] = mapped_column(String(20))
    # The copy's Message-ID: derived from (edition, subscriber), set at its first claim,
    # the same on every retry, so a resent copy is recognisably the same message.
    message_id: Mapped[str | None] = mapped_column(String(255))


class Run(Base):
    """What the daemon and `send` did: one row per send run, for `status` and operators."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # send, schedule, housekeeping
    edition_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)


class StoryAction(enum.StrEnum):
    ADDED = "added"
    EDITED = "edited"
    DELETED = "deleted"
    MOVED = "moved"
    IMPORTED = "imported"  # `newsletter stories import` (added or replaced by title)


class StoryChange(Base):
    """The editors' audit log: every change to a day's stories, when, and from where."""

    __tablename__ = "story_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, index=True)  # the day the story belongs to
    # No foreign key: the log outlives a deleted story.
    story_id: Mapped[int | None]
    action: Mapped[StoryAction] = mapped_column(_enum(StoryAction, "story_action"))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    # The story in the text format before an edit or a delete: pasting it back undoes it.
    before: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str] = mapped_column(String(200))  # the web client's address, or the CLI
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MailState(enum.StrEnum):
    QUEUED = "queued"      # waiting, or waiting again after a transient failure
    SENDING = "sending"    # claimed by a drainer, under a lease
    SENT = "sent"
    FAILED = "failed"      # refused for good: the reason is in `error`
    EXPIRED = "expired"    # not sent within a day: a stale confirmation helps nobody
    DROPPED = "dropped"    # nothing to send after all (already confirmed, complaint, limit)


class QueuedMail(Base):
    """A transactional email (sign-up confirmation, a fresh preferences link) waiting to
    go out. Web requests only write these rows; a drainer sends them (newsletter.delivery
    .mail_queue), so a slow or dead provider never holds a web worker."""

    __tablename__ = "mail_queue"
    __table_args__ = (Index("ix_mail_queue_state_due", "state", "next_attempt_at"),
                      Index("ix_mail_queue_subscriber", "subscriber_id", "state"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # confirm, manage_link
    subscriber_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("subscribers.id", ondelete="CASCADE"))
    # The name given with a sign-up: stored on the subscriber only when this request's
    # link is confirmed (a stranger cannot rename a pending or known address).
    name: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[MailState] = mapped_column(_enum(MailState, "mail_state"),
                                             default=MailState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class WebhookReplay(Base):
    """Webhook posts already applied, for providers whose signature does not cover the
    event (Mailgun: timestamp + token only). Inserted in the transaction that applies the
    event, so every worker and host sees it, and a failed apply leaves no key behind."""

    __tablename__ = "webhook_replays"
    __table_args__ = (UniqueConstraint("provider", "key", name="uq_webhook_replays_provider_key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(200))
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
class BounceKind(enum.StrEnum):
    """What a message that came back by mail turned out to be (newsletter/bounces)."""

    HARD = "hard"              # the address is dead: delivery failed, address suppressed
    SOFT = "soft"              # 4.x.x, mailbox full: counted, suppressed past the limit
    REFUSED = "refused"        # 5.x.x about us or the message (policy, content): nobody suppressed
    COMPLAINT = "complaint"    # an ARF abuse report: the subscriber complained
    AUTO_REPLY = "auto-reply"  # out of office and the like: left alone
    UNRECOGNISED = "unrecognised"
    FORGED = "forged"          # a VERP token that does not verify: ignored


class Bounce(Base):
    """One row per (message that came back, address it was about): the processed
    messages remembered (a message seen again changes nothing), the soft bounces counted,
    and what `status --failures` lists beside the refusals at send time."""

    __tablename__ = "bounces"
    __table_args__ = (
        UniqueConstraint("message_key", "email_key", name="uq_bounces_message_email"),
        Index("ix_bounces_email_kind_received", "email_key", "kind", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the Message-ID (or of the whole message when it has none).
    message_key: Mapped[str] = mapped_column(String(64))
    email_key: Mapped[str] = mapped_column(String(320), default="")  # "" when about nobody
    # No foreign key: the record of a bounce outlives a pruned or erased delivery.
    delivery_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    kind: Mapped[BounceKind] = mapped_column(_enum(BounceKind, "bounce_kind"))
    status: Mapped[str | None] = mapped_column(String(20))  # RFC 3463 code, e.g. 5.1.1
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
