"""Render one edition (8 stories x 4 narratives) end to end, against the tutorial way.

    .venv/bin/python bench/bench_render.py [--runs 30] [--recipients 20]

Ours: template, MJML, inlining and text part once per edition (`render_edition`), then a
string join per recipient (`personalise`). Tutorial: all of it again for every recipient,
with premailer's defaults, and `EmailMessage.as_bytes()`. Both are timed in this run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from email.message import EmailMessage

from mjml import mjml2html
from premailer import transform

from newsletter.render.edition import render_edition
from newsletter.render.emails import environment
from newsletter.settings import load_settings
from tests.editions import ordinary_day  # the editable install puts the checkout on the path

DAY = dt.date(2026, 11, 25)


def recipient(i: int) -> dict[str, str]:
    token = f"{i:08d}.".ljust(120, "x")
    return {"email": f"reader{i}@example.org",
            "unsubscribe_url": f"https://news.example.org/unsubscribe/{token}",
            "preferences_url": f"https://news.example.org/preferences/{token}",
            "webview_url": "https://news.example.org/archive/2026-11-25"}


def tutorial_copy(stories, settings, values: dict[str, str]) -> bytes:
    """What a tutorial does for each recipient: render everything, inline, build MIME."""
    env = environment()
    context = {"title": "t", "stories": stories, "preheader": "p", "date_long": "d",
               "full_count": len(stories), "narrative_words": settings.narrative_words,
               "list_name": settings.list_name,
               "postal_address": settings.postal_address, "base_url": settings.base_url,
               **values}
    html = transform(mjml2html(env.get_template("edition.mjml.j2").render(context)))
    message = EmailMessage()
    message["To"], message["From"], message["Subject"] = values["email"], settings.sender, "t"
    message.set_content(env.get_template("edition.txt.j2").render(context))
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def median_ms(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--recipients", type=int, default=20)
    args = parser.parse_args()
    stories, settings = ordinary_day(), load_settings(postal_address="1 Test Street")
    edition = render_edition(stories, date=DAY, settings=settings)
    people = [recipient(i) for i in range(args.recipients)]

    once = median_ms(lambda: render_edition(stories, date=DAY, settings=settings), args.runs)
    join = median_ms(lambda: [edition.personalise(v) for v in people], args.runs)
    tutorial = median_ms(lambda: [tutorial_copy(stories, settings, v) for v in people],
                         max(3, args.runs // 10))
    ours = once + join
    print(f"edition: 8 stories x 4 narratives, HTML {edition.html_size / 1000:.1f} KB, "
          f"shrunk {edition.shrunk}")
    print(f"render once (template, MJML, inlining, text part): {once:.1f} ms median "
          f"(target < 50 ms)")
    print(f"personalise one copy: {join / args.recipients * 1000:.1f} µs")
    print(f"tutorial, per recipient (render + inline + as_bytes): "
          f"{tutorial / args.recipients:.1f} ms")
    print(f"{args.recipients} recipients: ours {ours:.1f} ms, tutorial {tutorial:.1f} ms, "
          f"ratio {tutorial / ours:.0f}x")


if __name__ == "__main__":
    main()
