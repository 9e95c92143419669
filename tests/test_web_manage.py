"""Unsubscribe (RFC 8058 one-click) and preferences, through the real app."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from newsletter.mail.links import TEST_SUBSCRIBER_ID, Links
from newsletter.store.models import Subscriber, SubscriberStatus, Suppression
from subscribers import service
from subscribers.web import create_app
from tests.webapp import csrf_token, sessions

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def client(settings):
    return create_app(settings).test_client()


@pytest.fixture
def reader(settings) -> int:
    with sessions(settings).begin() as session:
        return service.add(session, "reader@example.org", '<script>alert("x")</script>',
                           confirmed=True).id


@pytest.fixture
def token(settings, reader) -> str:
    """The unsubscribe link's token (never expires)."""
    return Links(settings).unsubscribe_token(reader)


@pytest.fixture
def prefs(settings, reader) -> str:
    """The preferences link's token (expires: tests/test_tokens.py)."""
    return Links(settings).manage_token(reader)


def status(settings, reader) -> tuple[SubscriberStatus, bool]:
    with sessions(settings)() as session:
        person = session.get(Subscriber, reader)
        return person.status, session.scalar(select(Suppression)) is not None


def test_get_shows_one_button_and_changes_nothing(client, settings, reader, token):
    for _ in range(3):  # a link scanner prefetching, more than once
        assert client.head(f"/unsubscribe/{token}").status_code == 200
        page = client.get(f"/unsubscribe/{token}")
        assert page.status_code == 200
    assert page.text.count("<button") == 1 and f'action="/unsubscribe/{token}"' in page.text
    assert status(settings, reader) == (SubscriberStatus.CONFIRMED, False)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_with_200_and_a_repeat_is_harmless(
        settings, reader, token, encoding):
    client = create_app(settings).test_client(use_cookies=False)  # mailbox providers send none
    kwargs = ({"data": ONE_CLICK} if encoding == "urlencoded"
              else {"data": ONE_CLICK, "content_type": "multipart/form-data"})
    for _ in range(2):
        answer = client.post(f"/unsubscribe/{token}", **kwargs)
        assert answer.status_code == 200 and "Location" not in answer.headers
    assert status(settings, reader) == (SubscriberStatus.UNSUBSCRIBED, True)


@pytest.mark.parametrize("forged", ["{token}x", "{other_key}", "abc", "{confirm}"])
def test_forged_or_tampered_tokens_are_refused_and_change_nothing(
        client, settings, reader, token, forged):
    links = Links(settings)
    other = Links(settings.model_copy(update={"secret_key": "someone-else"}))
    bad = forged.format(token=token[:-1], other_key=other.unsubscribe_token(reader),
                        confirm=links.confirm_token(reader))
    assert client.post(f"/unsubscribe/{bad}", data=ONE_CLICK).status_code == 400
    assert client.get(f"/preferences/{bad}").status_code == 400
    # Each kind opens only its own door: an unsubscribe token is no preferences token.
    assert client.get(f"/preferences/{token}").status_code == 400
    assert client.post(f"/unsubscribe/{links.manage_token(reader)}",
                       data=ONE_CLICK).status_code == 400
    assert status(settings, reader) == (SubscriberStatus.CONFIRMED, False)


def test_preferences_change_name_pause_and_unsubscribe(client, settings, reader, prefs):
    page = client.get(f"/preferences/{prefs}")
    assert '<script>alert' not in page.text and "&lt;script&gt;alert" in page.text
    url = f"/preferences/{prefs}"
    csrf = csrf_token(client, url)
    for change in ({"action": "name", "name": "Ada"}, {"action": "pause", "weeks": "2"}):
        assert client.post(url, data={**change, "csrf_token": csrf}).status_code == 200
    with sessions(settings)() as session:
        person = session.get(Subscriber, reader)
        assert person.name == "Ada"
        assert person.paused_until == settings.today() + dt.timedelta(weeks=2)
    client.post(url, data={"action": "unsubscribe", "csrf_token": csrf})
    assert status(settings, reader) == (SubscriberStatus.UNSUBSCRIBED, True)


def test_preferences_form_needs_its_csrf_token(client, settings, reader, prefs):
    answer = client.post(f"/preferences/{prefs}", data={"action": "unsubscribe"})
    assert answer.status_code == 400
    assert status(settings, reader) == (SubscriberStatus.CONFIRMED, False)


def test_a_person_can_erase_everything(client, settings, reader, prefs):
    url = f"/preferences/{prefs}"
    answer = client.post(url, data={"action": "erase", "csrf_token": csrf_token(client, url)})
    assert answer.status_code == 200 and "erased" in answer.text
    with sessions(settings)() as session:
        assert session.get(Subscriber, reader) is None
        assert session.scalar(select(Suppression.reason)) == "removed"


def test_a_person_can_download_what_we_hold(client, reader, prefs):
    answer = client.get(f"/preferences/{prefs}/data.json")
    assert answer.status_code == 200 and "attachment" in answer.headers["Content-Disposition"]
    data = json.loads(answer.data)
    assert data["subscriber"]["email"] == "reader@example.org"
    assert data["subscriber"]["status"] == "confirmed" and data["deliveries"] == []


def test_pages_carry_security_headers(client, token):
    headers = client.get(f"/unsubscribe/{token}").headers
    assert headers["Referrer-Policy"] == "no-referrer"  # the token is in the URL
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_links_from_a_test_send_change_nothing(client, settings, reader):
    links = Links(settings)
    token, prefs = links.unsubscribe_token(TEST_SUBSCRIBER_ID), links.manage_token(
        TEST_SUBSCRIBER_ID)
    for answer in (client.get(f"/unsubscribe/{token}"), client.post(f"/unsubscribe/{token}"),
                   client.get(f"/preferences/{prefs}")):
        assert answer.status_code == 200 and "test email" in answer.text
    assert status(settings, reader) == (SubscriberStatus.CONFIRMED, False)


def test_an_erased_persons_link_never_reaches_the_next_subscriber(client, settings, reader,
                                                                  prefs):
    with sessions(settings).begin() as session:
        service.remove(session, "reader@example.org")
        newcomer = service.add(session, "newcomer@example.org", confirmed=True)
        assert newcomer.id != reader
    assert client.get(f"/preferences/{prefs}").status_code == 404
