"""Where the Jinja templates are: `templates/` of a checkout, or the copy inside a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # newsletter/


def templates_dir() -> Path:
    # A checkout (and an editable install) has templates/ beside the package; a wheel
    # carries them as newsletter/_templates (pyproject: force-include).
    for candidate in (_PACKAGE.parent / "templates", _PACKAGE / "_templates"):
        if (candidate / "email").is_dir():
            return candidate
    raise FileNotFoundError("templates/ not found beside the newsletter package")
