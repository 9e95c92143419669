"""The web app under real gunicorn with two workers, on a fresh PostgreSQL database, for
the tests that must see what several processes do (tests/test_web_gunicorn.py).

Its access log records the worker's pid with each request, so a test can show that both
workers served it."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.smtp_sink import free_port

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Server:
    url: str
    env: dict[str, str]
    access_log: Path
    error_log: Path

    def pids(self, method: str, path_start: str) -> set[str]:
        """The workers that answered `method` requests whose path starts so."""
        pids = set()
        for line in self.access_log.read_text().splitlines():
            pid, _status, line_method, path = line.split(" ", 3)
            if line_method == method and path.startswith(path_start):
                pids.add(pid)
        return pids

    def form(self, path: str) -> tuple[dict[str, str], str]:
        """The cookies and CSRF token of a fresh visit to the form at `path`."""
        page = requests.get(self.url + path, timeout=10)
        assert page.status_code == 200, page.text
        return dict(page.cookies), CSRF.search(page.text).group(1)

    def post(self, path: str, data: dict, cookies: dict | None = None,
             **kwargs) -> requests.Response:
        # A new connection each time, so the kernel may hand it to either worker.
        return requests.post(self.url + path, data=data, cookies=cookies, timeout=30,
                             headers={"Connection": "close", **kwargs.pop("headers", {})},
                             allow_redirects=False, **kwargs)


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word: a dead mail server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(tmp_path: Path, database_url: str, **settings: str) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update({"NEWSLETTER_DATABASE_URL": database_url,
                # A fresh key: the rate limits count under a prefix derived from it.
                "NEWSLETTER_SECRET_KEY": secrets.token_urlsafe(24),
                "NEWSLETTER_BASE_URL": f"http://127.0.0.1:{port}",
                "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"), **settings})
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    access.touch()
    with errors.open("wb") as error_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
             "--access-logfile", str(access), "--access-logformat", "%(p)s %(s)s %(m)s %(U)s",
             "--graceful-timeout", "5", "subscribers.web:create_app()"],
            env=env, cwd=tmp_path, stdout=error_file, stderr=subprocess.STDOUT)
        try:
            _wait_for_workers(process, port, errors)
            yield Server(f"http://127.0.0.1:{port}", env, access, errors)
        finally:
            process.terminate()
            process.wait(timeout=20)


def _wait_for_workers(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn stopped: {log.read_text()}")
        if log.read_text().count("Booting worker") >= 2:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/subscribe", timeout=5).ok:
                    return
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"gunicorn did not start: {log.read_text()}")
