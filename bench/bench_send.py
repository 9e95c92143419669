"""Whole `newsletter send` runs against loopback sinks, each beside a baseline measured in
the same run.

    .venv/bin/python bench/bench_send.py smtp [SUBSCRIBERS=20000] [WORKERS=2]
    .venv/bin/python bench/bench_send.py esp [SUBSCRIBERS=100000] [WORKERS=1]
    .venv/bin/python bench/bench_send.py memory [SIZES=10000,100000]

smtp:   our send rate vs one plain smtplib connection pushing the same pre-built message.
esp:    the whole send command through a SendGrid stand-in (target < 20 s, < 200 MB peak),
        vs the tutorial way: one API call per recipient with the whole message.
memory: peak RSS of the send command as the audience grows (keyset paging: flat).
Set BENCH_DATABASE_URL to measure on PostgreSQL instead of a fresh SQLite file.
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

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-11-25"


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


def world(subscribers: int, extra: dict) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-send-"))
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": "bench", "NEWSLETTER_BASE_URL":
           "https://news.example.org", "NEWSLETTER_OUTBOX_DIR": str(folder / "outbox"),
           "NEWSLETTER_DATABASE_URL": os.environ.get("BENCH_DATABASE_URL",
                                                     f"sqlite:///{folder / 'bench.db'}"),
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


def bench_smtp(subscribers: int, workers: int) -> None:
    sink, port = start_sink("smtp")
    try:
        env = world(subscribers, {"NEWSLETTER_TRANSPORT": "smtp",
                                  "NEWSLETTER_SMTP_HOST": "127.0.0.1",
                                  "NEWSLETTER_SMTP_PORT": str(port)})
        message = one_message(env)
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as client:
            for _ in range(subscribers):
                client.sendmail("news@example.org", ["reader0@example.com"], message)
        base = subscribers / (time.perf_counter() - start)
        seconds, rss, _ = newsletter(env, "send", "--date", DAY, "--workers", str(workers))
        ours = subscribers / seconds
    finally:
        sink.kill()
    print(f"smtp, {subscribers:,} messages of {len(message) / 1024:.0f} KB:")
    print(f"  baseline, one smtplib connection, pre-built message: {base:,.0f} msg/s")
    print(f"  newsletter send --workers {workers} (whole command):  {ours:,.0f} msg/s "
          f"({seconds:.1f} s, peak {rss:.0f} MB)")
    print(f"  ratio: {ours / base:.2f}x (target >= 1.5x)")


def send_through_sendgrid(subscribers: int, naive: bool = False, workers: int = 1):
    """(seconds, peak MB, naive recipients/s or None) of one whole send to the stand-in."""
    sink, port = start_sink("sendgrid")
    try:
        env = world(subscribers, {"NEWSLETTER_TRANSPORT": "sendgrid",
                                  "NEWSLETTER_ESP_API_KEY": "bench-key",
                                  "NEWSLETTER_ESP_API_URL": f"http://127.0.0.1:{port}"})
        seconds, rss, _ = newsletter(env, "send", "--date", DAY, "--workers", str(workers))
        return seconds, rss, _naive_rate(port, one_message(env)) if naive else None
    finally:
        sink.kill()


def bench_esp(subscribers: int, workers: int) -> None:
    seconds, rss, naive = send_through_sendgrid(subscribers, naive=True, workers=workers)
    print(f"esp (SendGrid stand-in), {subscribers:,} subscribers:")
    print(f"  newsletter send --workers {workers} (whole command): {seconds:.1f} s "
          "(target < 20 s), "
          f"peak {rss:.0f} MB (target < 200 MB), {subscribers / seconds:,.0f} recipients/s")
    print(f"  baseline, one API call per recipient with the whole message: {naive:,.0f} "
          "recipients/s")
    print(f"  ratio: {subscribers / seconds / naive:.1f}x")


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


def bench_memory(sizes: list[int]) -> None:
    print("peak memory of `newsletter send` (SendGrid stand-in) as the audience grows:")
    for size in sizes:
        seconds, rss, _ = send_through_sendgrid(size)
        print(f"  {size:>9,} subscribers: {seconds:6.1f} s, peak {rss:.0f} MB")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "esp"
    if what == "smtp":
        bench_smtp(int(sys.argv[2]) if len(sys.argv) > 2 else 20000,
                   int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    elif what == "esp":
        bench_esp(int(sys.argv[2]) if len(sys.argv) > 2 else 100000,
                  int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    else:
        bench_memory([int(n) for n in (sys.argv[2] if len(sys.argv) > 2
                                       else "10000,100000").split(",")])
