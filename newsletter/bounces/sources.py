"""Messages from paths: one message per file, an mbox, or a maildir (its new/ and cur/),
read with the standard mailbox module. A folder that is not a maildir is walked, each file
in it taken as a message or an mbox."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path

from newsletter.errors import NewsletterError


class BounceSourceError(NewsletterError):
    """A path to read bounces from that does not exist or cannot be read."""


def check(paths: list[Path]) -> None:
    """Every path exists, before anything is read: a typo fails the command at once."""
    for path in paths:
        if not path.exists():
            raise BounceSourceError(f"{path}: no such file or folder")


def messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """(where, raw bytes) for every message under `path`."""
    try:
        if path.is_dir():
            if (path / "cur").is_dir() and (path / "new").is_dir():
                box = mailbox.Maildir(path, factory=None, create=False)
                for key in box.iterkeys():
                    yield f"{path}:{key}", box.get_bytes(key)
                return
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from _file(child)
            return
        yield from _file(path)
    except OSError as err:
        raise BounceSourceError(f"{path}: cannot read: {err.strerror or err}") from None


def _file(path: Path) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as handle:
        mbox = handle.read(5) == b"From "
    if not mbox:
        yield str(path), path.read_bytes()
        return
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), 1):
            yield f"{path}#{number}", box.get_bytes(key)
    finally:
        box.close()
