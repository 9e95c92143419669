"""`newsletter serve` as a real process on loopback: a mailbox provider's one-click POST."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest

from newsletter.mail.links import Links
from newsletter.store.models import Subscriber, SubscriberStatus
from subscribers import service
from tests.webapp import outbox, sessions, text_part


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(env, settings):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--host", "127.0.0.1", "--port",
         str(port)], env={**os.environ, **env}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"serve did not start: {process.stdout.read().decode()}")
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def request(port: int, method: str, path: str, body: str | None = None) -> tuple[int, str]:
    # http.client never follows a redirect, so a 3xx would show here as itself.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.status, response.read().decode()
    connection.close()
    return answer


def test_one_click_unsubscribe_against_the_real_server(server, settings):
    with sessions(settings).begin() as session:
        reader = service.add(session, "reader@example.org", confirmed=True).id
    path = f"/unsubscribe/{Links(settings).unsubscribe_token(reader)}"

    assert request(server, "GET", path)[0] == 200  # a link scanner: changes nothing
    with sessions(settings)() as session:
        assert session.get(Subscriber, reader).status == SubscriberStatus.CONFIRMED

    status, page = request(server, "POST", path, "List-Unsubscribe=One-Click")
    assert status == 200 and "You are unsubscribed" in page
    with sessions(settings)() as session:
        assert session.get(Subscriber, reader).status == SubscriberStatus.UNSUBSCRIBED
    assert request(server, "POST", path[:-3] + "xyz", "List-Unsubscribe=One-Click")[0] == 400
    assert request(server, "GET", "/subscribe")[0] == 200


def test_serve_sends_queued_confirmations_from_its_own_thread(server, settings):
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    connection.request("GET", "/subscribe")
    page = connection.getresponse()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    connection.request("POST", "/subscribe", body=urlencode(
        {"email": "reader@example.org", "csrf_token": token}),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    answer = connection.getresponse()
    assert answer.status == 200 and "Check your inbox" in answer.read().decode()
    connection.close()
    deadline = time.monotonic() + 20
    while not outbox(settings) and time.monotonic() < deadline:
        time.sleep(0.2)
    [mail] = outbox(settings)
    assert "/confirm/" in text_part(mail)
