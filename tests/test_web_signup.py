"""Sign-up through the real app: form -> confirmation email in the outbox -> confirm."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from newsletter.store.models import Subscriber, SubscriberStatus, Suppression
from subscribers.web import create_app
from tests.webapp import csrf_token, link, outbox, sessions, text_part


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


def subscribe(client, email: str, name: str = "") -> object:
    token = csrf_token(client, "/subscribe")
    return client.post("/subscribe", data={"email": email, "name": name, "csrf_token": token})


def person(settings, email: str) -> Subscriber | None:
    with sessions(settings)() as session:
        return session.scalar(select(Subscriber).where(Subscriber.email_key == email.lower()))


def test_sign_up_sends_a_confirmation_and_the_link_confirms(client, settings):
    answer = subscribe(client, "Reader@Example.org", "Ada <b>")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert person(settings, "reader@example.org").status == SubscriberStatus.PENDING

    [mail] = outbox(settings)
    assert mail["To"].addresses[0].addr_spec == "Reader@example.org"
    assert "confirm" in mail["Subject"].lower()
    html = mail.get_body(preferencelist=("html",)).get_content()
    path = link(mail, settings, "confirm")
    assert path in html and "Reader@example.org" in text_part(mail)

    page = client.get(path)
    assert page.status_code == 200 and "You are subscribed" in page.text
    assert person(settings, "reader@example.org").status == SubscriberStatus.CONFIRMED


def test_the_answer_is_the_same_for_a_known_address(client, settings):
    subscribe(client, "known@example.org")
    client.get(link(outbox(settings)[0], settings, "confirm"))
    first = subscribe(client, "new@example.org")
    again = subscribe(client, "known@example.org")
    assert again.status_code == first.status_code == 200
    assert again.text.replace("known", "new") == first.text
    assert len(outbox(settings)) == 2  # no second email to the confirmed address


def test_a_form_without_its_csrf_token_is_refused(client, settings):
    answer = client.post("/subscribe", data={"email": "x@example.org"})
    assert answer.status_code == 400
    assert person(settings, "x@example.org") is None and outbox(settings) == []


def test_a_bad_address_says_why_and_stores_nothing(client, settings):
    answer = subscribe(client, "not-an-address")
    assert answer.status_code == 400 and "not a valid email address" in answer.text


def test_forged_or_tampered_confirm_tokens_are_refused(client, settings):
    subscribe(client, "reader@example.org")
    path = link(outbox(settings)[0], settings, "confirm")
    for forged in (path[:-2] + ("AA" if not path.endswith("AA") else "BB"), "/confirm/1.abc"):
        assert client.get(forged).status_code == 400
    assert person(settings, "reader@example.org").status == SubscriberStatus.PENDING


def test_sign_ups_are_rate_limited_per_client_address(client, settings):
    limiter = client.application.extensions["newsletter"].signups_per_client
    for i in range(limiter.limit):
        assert subscribe(client, f"r{i}@example.org").status_code == 200
    assert subscribe(client, "one-more@example.org").status_code == 429
    assert person(settings, "one-more@example.org") is None
    other = client.application.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    assert subscribe(other, "one-more@example.org").status_code == 200


def test_a_suppressed_address_comes_back_only_by_confirming_again(client, settings):
    subscribe(client, "back@example.org")
    first = outbox(settings)[0]
    client.get(link(first, settings, "confirm"))
    assert client.post(link(first, settings, "unsubscribe")).status_code == 200
    old_confirm = link(first, settings, "confirm")
    assert client.get(old_confirm).status_code == 400  # an old link does not bring them back

    subscribe(client, "back@example.org", name="Someone Else")
    unchanged = person(settings, "back@example.org")  # until the owner follows the new link
    assert (unchanged.status, unchanged.name) == (SubscriberStatus.UNSUBSCRIBED, None)
    with sessions(settings)() as session:
        assert session.scalar(select(Suppression.reason)) == "unsubscribed"
    client.get(link(outbox(settings)[-1], settings, "confirm"))
    assert person(settings, "back@example.org").status == SubscriberStatus.CONFIRMED
    with sessions(settings)() as session:
        assert session.scalar(select(Suppression)) is None


def test_missing_secret_key_is_a_clear_error(settings):
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        create_app(settings.model_copy(update={"secret_key": None}))
