"""Logs on stderr through `logging`, as text (colour only on a terminal) or one JSON object
a line (NEWSLETTER_LOG_FORMAT=json) for a log shipper; results a command prints stay on
stdout.

A send run binds its edition date, run id and counts with `run_context`, and every record
logged inside it (in any of its sender threads, see `in_context`) carries them as fields.
Never log secrets or tokens; addresses only at DEBUG.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

# Fields bound by the run in progress: edition (date), run_id, and counts when known.
_RUN: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "newsletter_run", default=None)
_COLOURS = {logging.DEBUG: "\x1b[2m", logging.INFO: "", logging.WARNING: "\x1b[33m",
            logging.ERROR: "\x1b[31m", logging.CRITICAL: "\x1b[1;31m"}
_RESET = "\x1b[0m"
_HANDLER_NAME = "newsletter-stderr"
# Progress of a send off a terminal: shown without -v, one line every 10%.
progress_log = logging.getLogger("newsletter.progress")
_format = {"now": "text"}


@contextlib.contextmanager
def run_context(**fields: Any) -> Iterator[dict[str, Any]]:
    """Bind `fields` to every record logged inside (the dict may be updated, e.g. counts)."""
    bound = {**(_RUN.get() or {}), **fields}
    token = _RUN.set(bound)
    try:
        yield bound
    finally:
        _RUN.reset(token)


def in_context(target: Callable[..., Any]) -> Callable[..., Any]:
    """`target` to run in another thread with this thread's run fields (threads start with
    an empty context)."""
    context = contextvars.copy_context()
    return lambda *args, **kwargs: context.run(target, *args, **kwargs)


class _RunFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_RUN.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One object a line: time, level, logger, message, then any bound or `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One line a record for a person; a bug's traceback only with -v (JSON always has it),
    so the one-line error stays readable on a terminal."""

    def __init__(self, colour: bool, tracebacks: bool):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.colour, self.tracebacks = colour, tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not self.tracebacks:
            # A copy without the traceback (another handler may have cached its text).
            note = f" ({record.exc_info[0].__name__}; run with -v for the traceback)"
            record = logging.makeLogRecord({**vars(record), "exc_info": None,
                                            "exc_text": None, "msg": f"{record.msg}{note}"})
        line = super().format(record)
        run = _RUN.get() or {}
        if "edition" in run:
            line += f" [edition {run['edition']}" + (
                f" run {run['run_id']}]" if run.get("run_id") else "]")
        colour = _COLOURS.get(record.levelno, "") if self.colour else ""
        return f"{colour}{line}{_RESET}" if colour else line


def configure(verbose: int, fmt: str = "text", *, debug: bool = False) -> None:
    """One stderr handler on the root logger (replaced, not added, on a second call)."""
    stream = sys.stderr
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else TextFormatter(colour=stream.isatty(), tracebacks=verbose > 0))
    handler.addFilter(_RunFields())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    progress_log.setLevel(logging.INFO)
    _format["now"] = fmt


def json_lines() -> bool:
    """Whether stderr carries JSON objects only (errors must be logged, not printed)."""
    return _format["now"] == "json"
    # Alembic's INFO lines ("Will assume transactional DDL") are noise to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
