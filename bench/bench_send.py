"""Whole `newsletter send` runs against loopback sinks, each beside a baseline measured in
the same run.

    .venv/bin/python bench/bench_send.py smtp [SUBSCRIBERS=20000] [WORKERS=2] [RUNS=5]
    .venv/bin/python bench/bench_send.py esp [SIZES=10000,200000] [WORKERS=2] [sqlite|postgresql]

smtp:   our send rate vs one plain smtplib connection pushing the same pre-built message.
esp:    the whole send command through a SendGrid stand-in, per audience size, SQLite and
        PostgreSQL side by side (time, rate, peak RSS: flat as the audience grows), vs the
        tutorial way: one API call per recipient with the whole message.
Set BENCH_DATABASE_URL (a PostgreSQL server URL) to add PostgreSQL; each run gets a fresh
database there.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import POSTGRES, fresh_url  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DAY, DAY2 = "2026-11-25", "2026-11-26"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(kind: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sinks.py"), kind, str(port)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sink did not start")


# Runs the CLI and reports its own peak RSS on exit: per command, not over all children.
LAUNCH = ("import atexit, resource, sys; atexit.register(lambda: sys.stderr.write("
          "f'\\nPEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')); "
          "sys.argv[0] = 'newsletter'; from newsletter.cli import main; main()")


def newsletter(env: dict, *args: str) -> tuple[float, float, str]:
    """Run the command; (seconds, peak RSS in MB, stdout)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCH, *args], env=env, text=True,
                          capture_output=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"newsletter {' '.join(args)} failed: {done.stderr}")
    peak_kb = int(done.stderr.rsplit("PEAK_RSS_KB=", 1)[1].split()[0])
    return seconds, peak_kb / 1024, done.stdout


def world(subscribers: int, extra: dict, backend: str | None = None) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-send-"))
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": "bench", "NEWSLETTER_BASE_URL":
           "https://news.example.org", "NEWSLETTER_OUTBOX_DIR": str(folder / "outbox"),
           "NEWSLETTER_DATABASE_URL": fresh_url(folder, backend),
           **extra}
    csv = folder / "people.csv"
    with csv.open("w") as out:
        out.write("email,name\n")
        for n in range(subscribers):
            out.write(f"reader{n}@example.com,Reader {n}\n")
    seconds, _, _ = newsletter(env, "subscribers", "import", str(csv), "--confirmed")
    print(f"  import {subscribers:,} subscribers from CSV: {seconds:.1f} s "
          f"({subscribers / seconds:,.0f} rows/s)")
    newsletter(env, "stories", "import", str(ROOT / "newsletter" / "samples"), "--date", DAY)
    return env


def one_message(env: dict) -> bytes:
    """The real edition's bytes for one reader, built as the sender builds them."""
    code = ("import sys; from newsletter.settings import load_settings;"
            "from newsletter.stories.imports import load_day; from newsletter.store.db import *;"
            "from newsletter.render.edition import render_edition;"
            "from newsletter.mail.links import Links;"
            "from newsletter.mail.message import Envelope, Recipient;"
            "from newsletter.mail.mime import MimeBuilder; import datetime as dt;"
            "s=load_settings(); d=dt.date(2026,11,25);"
            "e=make_engine(s.database_url); st=load_day(session_factory(e)(), d);"
            "r=render_edition(st, date=d, settings=s); env=Envelope.from_settings(s, r.subject,"
            " r.html, r.text); v=Links(s).values(1, 'reader0@example.com', d);"
            "sys.stdout.buffer.write(MimeBuilder(env).build(Recipient('reader0@example.com',"
            " 'Reader 0', v)))")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          check=True).stdout


def bench_smtp(subscribers: int, workers: int, runs: int = 5) -> None:
    """Median of `runs` pairs (baseline, then ours on the next day's edition): this
    machine is noisy, one pair says little."""
    sink, port = start_sink("smtp")
    try:
        env = world(subscribers, {"NEWSLETTER_TRANSPORT": "smtp",
                                  "NEWSLETTER_SMTP_HOST": "127.0.0.1",
                                  "NEWSLETTER_SMTP_PORT": str(port)})
        message = one_message(env)
        pairs = []
        for run in range(runs):
            start = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as client:
                for _ in range(subscribers):
                    client.sendmail("news@example.org", ["reader0@example.com"], message)
            base = subscribers / (time.perf_counter() - start)
            seconds, rss = send_day(env, f"2026-12-{run + 1:02}", workers)
            pairs.append((subscribers / seconds / base, base, subscribers / seconds, rss))
    finally:
        sink.kill()
    ratio, base, ours, rss = sorted(pairs)[len(pairs) // 2]
    print(f"smtp, {subscribers:,} messages of {len(message) / 1024:.0f} KB, median of {runs} "
          "runs:")
    print(f"  baseline, one smtplib connection, pre-built message: {base:,.0f} msg/s")
    print(f"  newsletter send --workers {workers} (whole command):  {ours:,.0f} msg/s "
          f"(peak {rss:.0f} MB)")
    print(f"  ratio: {ratio:.2f}x (target >= 2.5x); all runs: "
          + ", ".join(f"{p[0]:.2f}x" for p in pairs))


def world_through_sendgrid(subscribers: int, port: int, backend: str | None = None) -> dict:
    return world(subscribers, {"NEWSLETTER_TRANSPORT": "sendgrid",
                               "NEWSLETTER_ESP_API_KEY": "bench-key",
                               "NEWSLETTER_ESP_API_URL": f"http://127.0.0.1:{port}"}, backend)


def send_day(env: dict, day: str, workers: int) -> tuple[float, float]:
    """(seconds, peak MB) of one whole `send` of `day`'s edition."""
    if day != DAY:
        newsletter(env, "stories", "import", str(ROOT / "newsletter" / "samples"), "--date", day)
    seconds, rss, _ = newsletter(env, "send", "--date", day, "--workers", str(workers))
    return seconds, rss


def bench_esp(sizes: list[int], workers: int, only: str | None = None) -> None:
    """Each size on SQLite and PostgreSQL side by side: day 1 with one worker, day 2 (a
    ledger twice the size) with `workers`; the baseline is measured in the same run."""
    backends = [only] if only else ["sqlite"] + (["postgresql"] if POSTGRES else [])
    sink, port = start_sink("sendgrid")
    rows = []
    try:
        for size in sizes:
            for backend in backends:
                env = world_through_sendgrid(size, port, backend)
                rows.append((size, backend, send_day(env, DAY, 1),
                             send_day(env, DAY2, workers)))
        naive = _naive_rate(port, one_message(env))
    finally:
        sink.kill()
    print(f"esp (SendGrid stand-in), whole `newsletter send`; baseline: one API call per "
          f"recipient with the whole message, {naive:,.0f} recipients/s")
    print(f"  {'audience':>9} {'database':<10} | {'day 1, one worker':^36} | "
          f"{f'day 2, --workers {workers}':^36}")
    for size, backend, (s1, m1), (s2, m2) in rows:
        cells = [f"{t:6.1f} s {size / t:>7,.0f}/s {m:4.0f} MB {size / t / naive:5.1f}x base"
                 for t, m in ((s1, m1), (s2, m2))]
        print(f"  {size:>9,} {backend:<10} | {cells[0]} | {cells[1]}")
    print("  targets (PostgreSQL, one send process): 200k <= 16 s, 1M <= 80 s, peak <= 150 MB "
          "flat from 10k to 1M")


def _naive_rate(port: int, message: bytes, count: int = 2000) -> float:
    """The tutorial way: one API call per recipient carrying the whole personalised message."""
    body = json.dumps({"personalizations": [{"to": [{"email": "reader0@example.com"}]}],
                       "content": [{"type": "text/html",
                                    "value": message.decode("ascii", "replace")}]})
    start = time.perf_counter()
    with requests.Session() as session:
        for _ in range(count):
            session.post(f"http://127.0.0.1:{port}/v3/mail/send", data=body,
                         headers={"Content-Type": "application/json"})
    return count / (time.perf_counter() - start)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "esp"
    if what == "smtp":
        bench_smtp(int(sys.argv[2]) if len(sys.argv) > 2 else 20000,
                   int(sys.argv[3]) if len(sys.argv) > 3 else 2,
                   int(sys.argv[4]) if len(sys.argv) > 4 else 5)
    else:
        bench_esp([int(n) for n in (sys.argv[2] if len(sys.argv) > 2
                                    else "10000,200000").split(",")],
                  int(sys.argv[3]) if len(sys.argv) > 3 else 2,
                  sys.argv[4] if len(sys.argv) > 4 else None)
