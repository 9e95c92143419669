"""Sign-up through the real app: form -> queued confirmation -> drained to the outbox ->
the link's page -> its button (POST) confirms."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from newsletter.delivery.mail_drain import MailDrain
from newsletter.mail.links import Links
from newsletter.store.db import make_engine
from newsletter.store.models import (
    MailState,
    QueuedMail,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
)
from newsletter.store.suppression import leave_or_suppress, suppress
from subscribers import service
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


def confirm(client, path: str) -> object:
    """Press the button on the confirmation page (POST with the page's CSRF token)."""
    return client.post(path, data={"csrf_token": csrf_token(client, path)})


def drain(settings) -> dict[str, int]:
    engine = make_engine(settings.database_url)
    try:
        return MailDrain(settings, engine).drain().counts
    finally:
        engine.dispose()


def person(settings, email: str) -> Subscriber | None:
    with sessions(settings)() as session:
        return session.scalar(select(Subscriber).where(Subscriber.email_key == email.lower()))


def queue(settings) -> list[tuple[str, str | None]]:
    with sessions(settings)() as session:
        return [(str(state), error) for state, error in session.execute(
            select(QueuedMail.state, QueuedMail.error).order_by(QueuedMail.id))]


def test_sign_up_queues_the_confirmation_and_only_the_button_confirms(client, settings):
    answer = subscribe(client, "Reader@Example.org", "Ada <b>")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert person(settings, "reader@example.org").status == SubscriberStatus.PENDING
    assert outbox(settings) == [] and queue(settings) == [("queued", None)]

    assert drain(settings)["sent"] == 1
    [mail] = outbox(settings)
    assert mail["To"].addresses[0].addr_spec == "Reader@example.org"
    assert "confirm" in mail["Subject"].lower()
    html = mail.get_body(preferencelist=("html",)).get_content()
    path = link(mail, settings, "confirm")
    assert path in html and "Reader@example.org" in text_part(mail)

    for _ in range(3):  # a mail scanner or link previewer: GET and HEAD, again and again
        assert client.head(path).status_code == 200
        page = client.get(path)
        assert page.status_code == 200
    assert page.text.count("<button") == 1 and "Yes, send me The Daily Spin" in page.text
    assert f'action="{path}"' in page.text and "Reader@example.org" in page.text
    assert person(settings, "reader@example.org").status == SubscriberStatus.PENDING

    answer = confirm(client, path)
    assert answer.status_code == 200 and "You are subscribed" in answer.text
    assert person(settings, "reader@example.org").status == SubscriberStatus.CONFIRMED
    assert person(settings, "reader@example.org").name == "Ada <b>"
    assert "already confirmed" in client.get(path).text


def test_the_confirm_post_needs_the_pages_csrf_token(client, settings):
    subscribe(client, "reader@example.org")
    drain(settings)
    path = link(outbox(settings)[0], settings, "confirm")
    assert client.post(path).status_code == 400
    assert person(settings, "reader@example.org").status == SubscriberStatus.PENDING


def test_the_answer_is_the_same_whatever_the_address(client, settings):
    with sessions(settings).begin() as session:
        service.add(session, "pending@example.org")
        service.add(session, "confirmed@example.org", confirmed=True)
        leave_or_suppress(session, "gone@example.org", SubscriberStatus.UNSUBSCRIBED)
        suppress(session, "spam@example.org", SuppressionReason.COMPLAINED)
    pages = {email: subscribe(client, email) for email in (
        "new@example.org", "pending@example.org", "confirmed@example.org",
        "gone@example.org", "spam@example.org")}
    assert {a.status_code for a in pages.values()} == {200}
    assert len({a.text for a in pages.values()}) == 1
    assert len(queue(settings)) == 5  # the same work for each: one queued email

    drain(settings)
    sent_to = sorted(m["To"].addresses[0].addr_spec for m in outbox(settings))
    assert sent_to == ["gone@example.org", "new@example.org", "pending@example.org"]
    dropped = sorted(error for state, error in queue(settings) if state == "dropped")
    assert dropped == ["a complaint was reported for this address: it is never mailed again",
                       "already confirmed"]


def test_a_form_without_its_csrf_token_is_refused(client, settings):
    answer = client.post("/subscribe", data={"email": "x@example.org"})
    assert answer.status_code == 400
    assert person(settings, "x@example.org") is None and queue(settings) == []


def test_a_bad_address_says_why_and_stores_nothing(client, settings):
    answer = subscribe(client, "not-an-address")
    assert answer.status_code == 400 and "not a valid email address" in answer.text
    assert queue(settings) == []


@pytest.mark.parametrize("field", ["email", "name"])
def test_inputs_over_their_limits_get_a_short_error_and_are_not_echoed(client, settings, field):
    huge = "x" * 5000 + "@example.org" if field == "email" else "N" * 5000
    data = {"email": "reader@example.org", "name": "", field: huge}
    answer = client.post("/subscribe", data={**data, "csrf_token": csrf_token(client,
                                                                               "/subscribe")})
    assert answer.status_code == 400
    assert "longer than" in answer.text and "x" * 400 not in answer.text
    assert "N" * 300 not in answer.text and len(answer.text) < 4000
    assert person(settings, "reader@example.org") is None


def test_a_sign_up_for_a_pending_address_keeps_its_name_until_confirmed(client, settings):
    subscribe(client, "ada@example.org", "Ada")
    drain(settings)
    subscribe(client, "ada@example.org", "Someone Else")
    assert person(settings, "ada@example.org").name == "Ada"
    drain(settings)
    first, second = outbox(settings)
    assert "Someone Else" not in client.get(link(first, settings, "confirm")).text
    assert confirm(client, link(second, settings, "confirm")).status_code == 200
    confirmed = person(settings, "ada@example.org")  # the name of the request confirmed
    assert (confirmed.status, confirmed.name) == (SubscriberStatus.CONFIRMED, "Someone Else")


def test_forged_or_tampered_confirm_tokens_are_refused(client, settings):
    subscribe(client, "reader@example.org")
    drain(settings)
    path = link(outbox(settings)[0], settings, "confirm")
    for forged in (path[:-2] + ("AA" if not path.endswith("AA") else "BB"), "/confirm/1.abc"):
        assert client.get(forged).status_code == 400
        assert client.post(forged, data={"csrf_token": csrf_token(client, path)}).status_code \
            == 400
    assert person(settings, "reader@example.org").status == SubscriberStatus.PENDING


def test_sign_ups_are_rate_limited_per_client_address(settings):
    client = create_app(settings.model_copy(update={"signup_rate_limit": "3/hour"})).test_client()
    for i in range(3):
        assert subscribe(client, f"r{i}@example.org").status_code == 200
    refused = subscribe(client, "one-more@example.org")
    assert refused.status_code == 429 and "Too many sign-ups" in refused.text
    assert "Retry-After" in refused.headers
    assert person(settings, "one-more@example.org") is None
    other = client.application.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    assert subscribe(other, "one-more@example.org").status_code == 200


def test_someone_who_left_comes_back_only_by_the_button_of_a_new_link(client, settings):
    subscribe(client, "back@example.org")
    drain(settings)
    first = outbox(settings)[0]
    confirm(client, link(first, settings, "confirm"))
    assert client.post(link(first, settings, "unsubscribe")).status_code == 200
    old_confirm = link(first, settings, "confirm")
    assert client.get(old_confirm).status_code == 400  # an old link does not bring them back

    subscribe(client, "back@example.org", name="Someone Else")
    drain(settings)
    unchanged = person(settings, "back@example.org")  # until the owner presses the button
    assert (unchanged.status, unchanged.name) == (SubscriberStatus.UNSUBSCRIBED, None)
    new_link = link(outbox(settings)[-1], settings, "confirm")
    client.get(new_link)
    with sessions(settings)() as session:
        assert session.scalar(select(Suppression.reason)) == "unsubscribed"
    confirm(client, new_link)
    assert person(settings, "back@example.org").status == SubscriberStatus.CONFIRMED
    with sessions(settings)() as session:
        assert session.scalar(select(Suppression)) is None


def test_a_bounce_is_lifted_only_by_the_persons_post(client, settings):
    with sessions(settings).begin() as session:
        reader = service.add(session, "bounced@example.org", confirmed=True)
        leave_or_suppress(session, reader.email_key, SubscriberStatus.BOUNCED, "550 5.1.1")
    subscribe(client, "bounced@example.org")
    drain(settings)
    path = link(outbox(settings)[0], settings, "confirm")
    client.get(path)
    client.head(path)
    assert person(settings, "bounced@example.org").status == SubscriberStatus.BOUNCED
    assert confirm(client, path).status_code == 200
    assert person(settings, "bounced@example.org").status == SubscriberStatus.CONFIRMED
    with sessions(settings)() as session:
        assert session.scalar(select(Suppression)) is None


def test_confirming_never_lifts_a_complaint(client, settings):
    with sessions(settings).begin() as session:
        reader = service.add(session, "spam@example.org", confirmed=True)
        leave_or_suppress(session, reader.email_key, SubscriberStatus.COMPLAINED, "spam report")
        reader_id = reader.id
    subscribe(client, "spam@example.org")
    assert drain(settings)["dropped"] == 1 and outbox(settings) == []
    # Even a genuine link (say, from before the complaint) cannot lift it.
    path = f"/confirm/{Links(settings).confirm_token(reader_id)}"
    answer = confirm(client, path)
    assert answer.status_code == 409 and "complaint" in answer.text
    assert person(settings, "spam@example.org").status == SubscriberStatus.COMPLAINED
    with sessions(settings)() as session:
        assert session.scalar(select(Suppression.reason)) == "complained"


def test_at_most_three_emails_a_day_reach_one_address(client, settings):
    for _ in range(3):  # several at once: one email, from the latest request
        subscribe(client, "target@example.org")
    drain(settings)
    assert len(outbox(settings)) == 1
    for _ in range(4):  # one by one: three a day, then no more
        subscribe(client, "target@example.org")
        drain(settings)
    assert len(outbox(settings)) == 3
    assert [state for state, _ in queue(settings)].count(MailState.DROPPED.value) == 4


def test_missing_secret_key_is_a_clear_error(settings):
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        create_app(settings.model_copy(update={"secret_key": None}))
