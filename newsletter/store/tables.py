"""The schema as SQLAlchemy Core tables, and the values their columns take.

The one description of the tables (but for one partial index, declared with the models to
keep start-up short: see there). The ORM classes (newsletter.store.models) map onto these,
and the reads that must answer fast (`newsletter status` and `health`, run by monitoring
every minute) query them without loading the ORM (~0.1 s). Alembic (newsletter/migrations)
owns the schema in the database; tests/test_db.py checks these tables against the
migrations.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


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


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: readable in SQL, same on both engines.
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=20,
                values_callable=lambda members: [m.value for m in members])


def _big_id() -> BigInteger:
    # SQLite's rowid alias must be INTEGER exactly.
    return BigInteger().with_variant(Integer, "sqlite")


def _when(name: str, **kw) -> Column:
    return Column(name, UTCDateTime(), **kw)


metadata = MetaData()


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    REMOVED = "removed"


class EditionStatus(enum.StrEnum):
    SENDING = "sending"
    COMPLETE = "complete"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"    # claimed by a sender, under a lease
    SENT = "sent"
    FAILED = "failed"      # permanent: the reason is in `error`
    UNKNOWN = "unknown"    # lease expired mid-send: may or may not have gone out
    SKIPPED = "skipped"    # unsubscribed or suppressed after the audience was frozen


class StoryAction(enum.StrEnum):
    ADDED = "added"
    EDITED = "edited"
    DELETED = "deleted"
    MOVED = "moved"
    IMPORTED = "imported"  # `newsletter stories import` (added or replaced by title)


class MailState(enum.StrEnum):
    QUEUED = "queued"      # waiting, or waiting again after a transient failure
    SENDING = "sending"    # claimed by a drainer, under a lease
    SENT = "sent"
    FAILED = "failed"      # refused for good: the reason is in `error`
    EXPIRED = "expired"    # not sent within a day: a stale confirmation helps nobody
    DROPPED = "dropped"    # nothing to send after all (already confirmed, complaint, limit)


class BounceKind(enum.StrEnum):
    """What a message that came back by mail turned out to be (newsletter/bounces)."""

    HARD = "hard"              # the address is dead: delivery failed, address suppressed
    SOFT = "soft"              # 4.x.x, mailbox full: counted, suppressed past the limit
    REFUSED = "refused"        # 5.x.x about us or the message (policy, content): nobody suppressed
    COMPLAINT = "complaint"    # an ARF abuse report: the subscriber complained
    AUTO_REPLY = "auto-reply"  # out of office and the like: left alone
    UNRECOGNISED = "unrecognised"
    FORGED = "forged"          # a VERP token that does not verify: ignored


stories = Table(
    "stories", metadata,
    Column("id", Integer, primary_key=True),
    Column("date", Date, nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("image_url", Text),
    Column("image_credit", Text),
    Column("source_file", Text),
    _when("created_at", nullable=False, default=utcnow),
    _when("updated_at", nullable=False, default=utcnow, onupdate=utcnow),
    UniqueConstraint("date", "position", name="uq_stories_date_position"),
)


def _story_part(name: str, *columns: Column) -> Table:
    """A story's facts, narratives and sources: ordered rows that go with their story."""
    return Table(
        name, metadata,
        Column("id", Integer, primary_key=True),
        Column("story_id", Integer, ForeignKey("stories.id", ondelete="CASCADE"),
               nullable=False, index=True),
        Column("position", Integer, nullable=False),
        *columns,
    )


facts = _story_part("facts", Column("text", Text, nullable=False))
narratives = _story_part("narratives", Column("label", Text, nullable=False),
                         Column("text", Text, nullable=False))
sources = _story_part("sources", Column("label", Text), Column("url", Text, nullable=False))

subscribers = Table(
    "subscribers", metadata,
    Column("id", _big_id(), primary_key=True),
    Column("email", String(320), nullable=False),
    # Lower-cased address: the one way addresses are compared (CONTRACT: case-insensitive).
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", String(200)),
    Column("status", _enum(SubscriberStatus, "subscriber_status"), nullable=False,
           default=SubscriberStatus.PENDING),
    Column("source", String(40)),  # how consent was given
    Column("consent_ip", String(64)),
    _when("created_at", nullable=False, default=utcnow),
    _when("confirmed_at"),
    _when("status_changed_at", nullable=False, default=utcnow),
    Column("paused_until", Date),
    Index("ix_subscribers_status_id", "status", "id"),
    # Ids are never reused (SQLite would reuse the highest after a delete): a link token
    # holds the id, and an erased person's old links must not reach the next person.
    sqlite_autoincrement=True,
)

# Addresses never to be mailed again, whatever the subscribers table says.
suppressions = Table(
    "suppressions", metadata,
    Column("id", Integer, primary_key=True),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("reason", _enum(SuppressionReason, "suppression_reason"), nullable=False),
    Column("detail", Text),
    _when("created_at", nullable=False, default=utcnow),
)

# Who lifted which suppression, when and why it had been there: operators undo
# suppressions (`subscribers unsuppress`), and every undo leaves a trace.
suppression_changes = Table(
    "suppression_changes", metadata,
    Column("id", Integer, primary_key=True),
    Column("email_key", String(320), nullable=False, index=True),
    Column("action", String(20), nullable=False),  # lifted
    Column("reason", String(20), nullable=False),  # the reason that was lifted
    Column("detail", Text),
    Column("by", String(200), nullable=False),
    _when("at", nullable=False, default=utcnow),
)

# One per date: the frozen render that every subscriber of that day receives.
editions = Table(
    "editions", metadata,
    Column("id", Integer, primary_key=True),
    Column("date", Date, nullable=False, unique=True),
    Column("subject", Text, nullable=False),
    # The rendered content with its per-recipient slots (see newsletter.render.slots), as JSON.
    Column("content", JSON, nullable=False),
    Column("status", _enum(EditionStatus, "edition_status"), nullable=False,
           default=EditionStatus.SENDING),
    _when("created_at", nullable=False, default=utcnow),
    _when("completed_at"),
    # Delivery counts by state, kept when `newsletter prune` deletes the per-recipient rows
    # (newsletter.delivery.prune): `status` of an old edition answers from here.
    Column("counts", JSON),
    _when("pruned_at"),
)

# One row per (edition, subscriber): the database decides who has been sent what.
deliveries = Table(
    "deliveries", metadata,
    Column("id", _big_id(), primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"),
           nullable=False),
    Column("subscriber_id", _big_id(), ForeignKey("subscribers.id", ondelete="CASCADE"),
           nullable=False),
    Column("state", _enum(DeliveryState, "delivery_state"), nullable=False,
           default=DeliveryState.PENDING),
    Column("attempts", Integer, nullable=False, default=0),
    _when("lease_until"),
    Column("claimed_by", String(100)),
    Column("provider_id", String(200)),
    Column("error", Text),
    _when("next_attempt_at"),
    _when("updated_at"),
    _when("sent_at"),
    # Who a refusal was about (newsletter.mail.failures.Cause), for `status --failures`.
    Column("failure", String(20)),
    # The copy's Message-ID: derived from (edition, subscriber), set at its first claim,
    # the same on every retry, so a resent copy is recognisably the same message.
    Column("message_id", String(255)),
    # Subscriber first: it also finds a person's rows when erasing them cascades here
    # (ON DELETE CASCADE runs one DELETE per subscriber), so no index of its own.
    UniqueConstraint("subscriber_id", "edition_id", name="uq_deliveries_subscriber_edition"),
    Index("ix_deliveries_edition_state_id", "edition_id", "state", "id"),
    # ix_deliveries_leased, on rows under a lease only: newsletter.store.models.
)

# What the daemon and `send` did: one row per send run, for `status` and operators.
runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),  # send, schedule, housekeeping
    Column("edition_date", Date, index=True),
    _when("started_at", nullable=False, default=utcnow),
    _when("finished_at"),
    Column("outcome", String(20)),
    Column("detail", Text),
)

# The editors' audit log: every change to a day's stories, when, and from where.
story_changes = Table(
    "story_changes", metadata,
    Column("id", Integer, primary_key=True),
    Column("date", Date, nullable=False, index=True),  # the day the story belongs to
    # No foreign key: the log outlives a deleted story.
    Column("story_id", Integer),
    Column("action", _enum(StoryAction, "story_action"), nullable=False),
    Column("title", Text, nullable=False),
    Column("detail", Text),
    # The story in the text format before an edit or a delete: pasting it back undoes it.
    Column("before", Text),
    Column("client", String(200), nullable=False),  # the web client's address, or the CLI
    _when("at", nullable=False, default=utcnow),
)

# A transactional email (sign-up confirmation, a fresh preferences link) waiting to go
# out. Web requests only write these rows; a drainer sends them (newsletter.delivery
# .mail_drain), so a slow or dead provider never holds a web worker.
mail_queue = Table(
    "mail_queue", metadata,
    Column("id", _big_id(), primary_key=True),
    Column("kind", String(20), nullable=False),  # confirm, manage_link
    Column("subscriber_id", _big_id(), ForeignKey("subscribers.id", ondelete="CASCADE"),
           nullable=False),
    # The name given with a sign-up: stored on the subscriber only when this request's
    # link is confirmed (a stranger cannot rename a pending or known address).
    Column("name", String(200)),
    Column("state", _enum(MailState, "mail_state"), nullable=False, default=MailState.QUEUED),
    Column("attempts", Integer, nullable=False, default=0),
    _when("created_at", nullable=False, default=utcnow),
    _when("next_attempt_at", nullable=False, default=utcnow),
    _when("lease_until"),
    _when("sent_at"),
    Column("error", Text),
    Index("ix_mail_queue_state_due", "state", "next_attempt_at"),
    Index("ix_mail_queue_subscriber", "subscriber_id", "state"),
)

# Webhook posts already applied, for providers whose signature does not cover the event
# (Mailgun: timestamp + token only). Inserted in the transaction that applies the event,
# so every worker and host sees it, and a failed apply leaves no key behind.
webhook_replays = Table(
    "webhook_replays", metadata,
    Column("id", _big_id(), primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("key", String(200), nullable=False),
    _when("seen_at", nullable=False, default=utcnow, index=True),
    UniqueConstraint("provider", "key", name="uq_webhook_replays_provider_key"),
)

# One row per (message that came back, address it was about): the processed messages
# remembered (a message seen again changes nothing), the soft bounces counted, and what
# `status --failures` lists beside the refusals at send time.
bounces = Table(
    "bounces", metadata,
    Column("id", Integer, primary_key=True),
    # SHA-256 of the Message-ID (or of the whole message when it has none).
    Column("message_key", String(64), nullable=False),
    Column("email_key", String(320), nullable=False, default=""),  # "" when about nobody
    # No foreign key: the record of a bounce outlives a pruned or erased delivery.
    Column("delivery_id", _big_id()),
    Column("kind", _enum(BounceKind, "bounce_kind"), nullable=False),
    Column("status", String(20)),  # RFC 3463 code, e.g. 5.1.1
    Column("detail", Text),
    _when("received_at", nullable=False, default=utcnow),
    UniqueConstraint("message_key", "email_key", name="uq_bounces_message_email"),
    Index("ix_bounces_email_kind_received", "email_key", "kind", "received_at"),
)
