"""The ORM classes, mapped onto the Core tables of newsletter.store.tables (the schema's
one description). Object-shaped work uses these: stories with their facts, narratives and
sources, subscribers edited one at a time. Alembic (newsletter/migrations) owns the schema.

The annotations only type the attributes: the columns, their types and defaults are the
tables'. The enums and `utcnow` are the tables' too, named here for the code that reads
and writes through the models.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, text
from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from newsletter.store import tables
from newsletter.store.tables import (  # noqa: F401 - the schema's values, used with the models
    BounceKind,
    DeliveryState,
    EditionStatus,
    MailState,
    StoryAction,
    SubscriberStatus,
    SuppressionReason,
    UTCDateTime,
    utcnow,
)


class Base(DeclarativeBase):
    metadata = tables.metadata


class Story(Base):
    __table__ = tables.stories

    id: Mapped[int]
    date: Mapped[dt.date]
    position: Mapped[int]
    title: Mapped[str]
    image_url: Mapped[str | None]
    image_credit: Mapped[str | None]
    source_file: Mapped[str | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    facts: Mapped[list[Fact]] = relationship(
        order_by="Fact.position", cascade="all, delete-orphan", lazy="selectin")
    narratives: Mapped[list[Narrative]] = relationship(
        order_by="Narrative.position", cascade="all, delete-orphan", lazy="selectin")
    sources: Mapped[list[Source]] = relationship(
        order_by="Source.position", cascade="all, delete-orphan", lazy="selectin")


class Fact(Base):
    __table__ = tables.facts

    id: Mapped[int]
    story_id: Mapped[int]
    position: Mapped[int]
    text: Mapped[str]


class Narrative(Base):
    __table__ = tables.narratives

    id: Mapped[int]
    story_id: Mapped[int]
    position: Mapped[int]
    label: Mapped[str]
    text: Mapped[str]


class Source(Base):
    __table__ = tables.sources

    id: Mapped[int]
    story_id: Mapped[int]
    position: Mapped[int]
    label: Mapped[str | None]
    url: Mapped[str]


class Subscriber(Base):
    __table__ = tables.subscribers

    id: Mapped[int]
    email: Mapped[str]
    email_key: Mapped[str]
    name: Mapped[str | None]
    status: Mapped[SubscriberStatus]
    source: Mapped[str | None]
    consent_ip: Mapped[str | None]
    created_at: Mapped[dt.datetime]
    confirmed_at: Mapped[dt.datetime | None]
    status_changed_at: Mapped[dt.datetime]
    paused_until: Mapped[dt.date | None]


class Suppression(Base):
    __table__ = tables.suppressions

    id: Mapped[int]
    email_key: Mapped[str]
    reason: Mapped[SuppressionReason]
    detail: Mapped[str | None]
    created_at: Mapped[dt.datetime]


class SuppressionChange(Base):
    __table__ = tables.suppression_changes

    id: Mapped[int]
    email_key: Mapped[str]
    action: Mapped[str]
    reason: Mapped[str]
    detail: Mapped[str | None]
    by: Mapped[str]
    at: Mapped[dt.datetime]


class Edition(Base):
    __table__ = tables.editions

    id: Mapped[int]
    date: Mapped[dt.date]
    subject: Mapped[str]
    content: Mapped[dict]
    status: Mapped[EditionStatus]
    created_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
    counts: Mapped[dict | None]
    pruned_at: Mapped[dt.datetime | None]


class Delivery(Base):
    __table__ = tables.deliveries

    id: Mapped[int]
    edition_id: Mapped[int]
    subscriber_id: Mapped[int]
    state: Mapped[DeliveryState]
    attempts: Mapped[int]
    lease_until: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None]
    provider_id: Mapped[str | None]
    error: Mapped[str | None]
    next_attempt_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    failure: Mapped[str | None]
    message_id: Mapped[str | None]


# Only rows under a lease, by when it ends: lease expiry and renewal touch these few rows,
# never the whole ledger (newsletter.store.leases). Declared here rather than with its
# table: a partial index's dialect options load both dialects' modules (~25 ms), which the
# Core reads of `status` and `health` need not. Alembic and tests/test_db.py read the
# metadata with these models loaded.
LEASED = text("state = 'sending'")
Index("ix_deliveries_leased", tables.deliveries.c.lease_until, postgresql_where=LEASED,
      sqlite_where=LEASED)


class Run(Base):
    __table__ = tables.runs

    id: Mapped[int]
    kind: Mapped[str]
    edition_date: Mapped[dt.date | None]
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None]
    detail: Mapped[str | None]


class StoryChange(Base):
    __table__ = tables.story_changes

    id: Mapped[int]
    date: Mapped[dt.date]
    story_id: Mapped[int | None]
    action: Mapped[StoryAction]
    title: Mapped[str]
    detail: Mapped[str | None]
    before: Mapped[str | None]
    client: Mapped[str]
    at: Mapped[dt.datetime]


class QueuedMail(Base):
    __table__ = tables.mail_queue

    id: Mapped[int]
    kind: Mapped[str]
    subscriber_id: Mapped[int]
    name: Mapped[str | None]
    state: Mapped[MailState]
    attempts: Mapped[int]
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime]
    lease_until: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    error: Mapped[str | None]


class WebhookReplay(Base):
    __table__ = tables.webhook_replays

    id: Mapped[int]
    provider: Mapped[str]
    key: Mapped[str]
    seen_at: Mapped[dt.datetime]


class Bounce(Base):
    __table__ = tables.bounces

    id: Mapped[int]
    message_key: Mapped[str]
    email_key: Mapped[str]
    delivery_id: Mapped[int | None]
    kind: Mapped[BounceKind]
    status: Mapped[str | None]
    detail: Mapped[str | None]
    received_at: Mapped[dt.datetime]
