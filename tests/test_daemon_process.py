"""`newsletter schedule` as operators run it: real processes, a real SMTP server, SIGTERM.

Started after the send time it catches up the day's edition; a restart sends nothing more;
a day without stories sends nothing; two daemons at once send each copy once; each one
stops cleanly on SIGTERM with exit status 0.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import SEED
from tests.smtp_sink import running

PEOPLE = 20


class Daemon:
    def __init__(self, env: dict, log: Path):
        self.log_path = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "newsletter", "schedule", "--reconcile-every", "1"],
                env=env, stdout=out, stderr=out)

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str) -> None:
        wait_for(lambda: text in self.log(), f"{text!r} in the log:\n{self.log()}")

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(10)


def wait_for(predicate, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def daemons(tmp_path):
    """Start daemons; every one still running at the end is killed."""
    started: list[Daemon] = []

    def start(env: dict) -> Daemon:
        started.append(Daemon(env, tmp_path / f"daemon-{len(started)}.log"))
        return started[-1]

    yield start
    for daemon in started:
        daemon.process.kill()
        daemon.process.wait()


@pytest.fixture
def sink():
    with running() as server:
        yield server


def test_a_day_as_operators_see_it(env, cli, tmp_path, sink, daemons):
    send_time = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)  # down at the send time
    day = send_time.date().isoformat()  # the slot's date, even just after midnight
    env = {**os.environ, "NEWSLETTER_TRANSPORT": "smtp", "NEWSLETTER_SMTP_HOST": "127.0.0.1",
           "NEWSLETTER_SMTP_PORT": str(sink.port), "NEWSLETTER_SEND_TIME": f"{send_time:%H:%M}"}
    people = tmp_path / "people.csv"
    people.write_text("email\n" + "".join(f"p{n:03}@example.com\n" for n in range(PEOPLE)))
    assert cli("subscribers", "import", str(people), "--confirmed").exit_code == 0

    first = daemons(env)
    first.wait_for_log(f"WARNING jobs.reconcile: no stories for {day} yet: nothing sent")
    assert first.terminate() == 0
    assert sink.handler.messages == []

    assert cli("stories", "import", str(SEED), "--date", day).exit_code == 0
    pair = [daemons(env), daemons(env)]
    wait_for(lambda: len(sink.handler.messages) >= PEOPLE, "every copy at the SMTP server")
    for daemon in pair:  # each has made its first check: it sent, or found nothing to send
        wait_for(lambda d=daemon: "send finished" in d.log() or "is complete" in d.log(),
                 "a first check")
    assert [daemon.terminate() for daemon in pair] == [0, 0]
    assert Counter(sink.handler.recipients()) == {f"p{n:03}@example.com": 1 for n in range(PEOPLE)}
    assert "send finished: complete" in pair[0].log() + pair[1].log()

    restarted = daemons(env)
    restarted.wait_for_log(f"edition {day} is complete: nothing to send")
    time.sleep(1.5)  # another periodic check or two
    assert restarted.terminate() == 0
    assert len(sink.handler.messages) == PEOPLE
    assert "INFO jobs.daemon: stopped" in restarted.log()
