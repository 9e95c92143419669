"""The embedded default: each message as one .eml file in NEWSLETTER_OUTBOX_DIR.

Files are written under a temporary name and renamed into place (os.replace is atomic on
POSIX and Windows), so a reader never sees half a message; names carry no characters a
file system or shell could trip on, whatever the address holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from newsletter.mail.failures import Cause
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.mail.mime import HeaderError
from newsletter.providers.base import MimeTransport, unsendable

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


def file_name(recipient: Recipient) -> str:
    """Time first (so a listing sorts by sending), then the address made safe, then a hash
    of the Message-ID so two copies to one address never overwrite each other."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%f")
    who = _UNSAFE.sub("_", recipient.email).strip("._")[:64] or "recipient"
    digest = hashlib.sha256(recipient.message_id.encode("utf-8")).hexdigest()[:12]
    return f"{stamp}-{who}-{digest}.eml"


class OutboxTransport(MimeTransport):
    name = "outbox"
    max_batch = 100

    @property
    def directory(self) -> Path:
        return self.settings.outbox_dir

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def send_batch(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[Result]:
        self.check_batch(recipients)
        self.open()
        builder = self.builder(envelope)
        results = []
        for recipient in recipients:
            try:
                data = builder.build(recipient)
            except HeaderError as err:
                results.append(unsendable(recipient, err))
                continue
            try:
                path = self._write(file_name(recipient), data)
            except OSError as err:  # a full or read-only disk may clear up: try again later
                results.append(Result(recipient, "failed", error=f"outbox: {err}",
                                      cause=Cause.TRANSIENT))
                continue
            results.append(Result(recipient, "sent", provider_id=str(path)))
        return results

    def _write(self, name: str, data: bytes) -> Path:
        target = self.directory / name
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target
