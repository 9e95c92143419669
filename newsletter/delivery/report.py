"""What a send run did: its progress after every batch, and the report it ends with."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

from newsletter.mail.message import Result

FINAL = ("sent", "failed", "skipped")


@dataclass
class Progress:
    """What a run did so far; `on_progress` gets it after every batch."""

    total: int = 0
    done_before: int = 0   # already final when this run started
    sent: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def starting(cls, counts: dict[str, int]) -> Progress:
        """Progress of a run that starts with the ledger at `counts`."""
        return cls(total=sum(counts.values()), done_before=sum(counts[s] for s in FINAL))

    def add(self, results: list[Result]) -> None:
        with self.lock:
            self.sent += sum(r.delivered for r in results)
            self.failed += sum(r.cause is not None and r.cause.refusal for r in results)

    @property
    def done(self) -> int:
        return self.done_before + self.sent + self.failed


@dataclass(frozen=True)
class SendReport:
    date: dt.date
    edition_id: int
    counts: dict[str, int]
    progress: Progress
    stopped: bool
    seconds: float
    settled_before: bool = False  # nothing pending or sending when the run started

    @property
    def settled(self) -> bool:
        """No delivery left to send: each is final or of unknown fate (a person decides)."""
        return self.counts["pending"] == 0 and self.counts["sending"] == 0

    @property
    def complete(self) -> bool:
        return all(self.counts[s] == 0 for s in ("pending", "sending", "unknown"))

    @property
    def outcome(self) -> str:
        if self.complete:
            return "complete"
        if self.stopped:
            return "stopped"
        if self.counts["sending"] and not self.counts["pending"]:
            return "done here"  # other senders are finishing their batches
        return "incomplete"

    @property
    def summary(self) -> str:
        c, p = self.counts, self.progress
        return (f"edition {self.date}: sent {p.sent} now ({c['sent']} in all), failed "
                f"{c['failed']}, skipped {c['skipped']}, pending {c['pending']}, unknown "
                f"{c['unknown']} in {self.seconds:.1f}s")
