"""Processing messages that came back, one transaction each, and counting what they were.

One transaction per message: a message read later in the same batch never undoes one
applied before it, and a message seen twice (two fetches at once, the same file given
again) is caught by its remembered Message-ID or, in a race, by the unique key.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.bounces.apply import DUPLICATE, apply
from newsletter.bounces.read import read
from newsletter.mail.verp import Verp
from newsletter.settings import Settings

log = logging.getLogger(__name__)
# The order a summary names them in.
KINDS = ("hard", "soft", "refused", "complaint", "auto-reply", "unrecognised", "forged",
         DUPLICATE)


class Processor:
    def __init__(self, settings: Settings, engine: Engine):
        self.engine = engine
        self.verp = Verp.from_settings(settings)
        self.soft_limit = settings.soft_bounce_limit
        self.tally: Counter[str] = Counter()

    def one(self, where: str, raw: bytes) -> list[str]:
        notice = read(raw)
        try:
            with Session(self.engine) as session, session.begin():
                kinds = apply(session, notice, self.verp, self.soft_limit)
        except IntegrityError:  # another process recorded it between our check and insert
            kinds = [DUPLICATE]
        log.info("%s: %s", where, ", ".join(kinds))
        self.tally.update(kinds)
        return kinds

    def all(self, messages: Iterable[tuple[str, bytes]]) -> Counter[str]:
        for where, raw in messages:
            self.one(where, raw)
        return self.tally


def summary(tally: Counter[str]) -> str:
    shown = [f"{tally[k]} {k}" for k in KINDS if tally[k]]
    return ", ".join(shown) if shown else "no messages"
