"""POST /webhooks/<esp> through the real app: verified events suppress, others change nothing."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select

from newsletter.store.models import Subscriber, SubscriberStatus, Suppression
from subscribers import service
from subscribers.web import create_app
from tests.test_webhooks import mailgun_signature, now, sendgrid_keys, sendgrid_sign
from tests.webapp import sessions

PRIVATE, PUBLIC = sendgrid_keys()
CONFIGURED = {"sendgrid_webhook_public_key": PUBLIC, "mailgun_webhook_signing_key": "mg-key",
              "postmark_webhook_username": "hook", "postmark_webhook_password": "s3cret"}


@pytest.fixture
def client(settings):
    with sessions(settings).begin() as session:
        service.add(session, "Reader@example.org", confirmed=True)
    return create_app(settings.model_copy(update=CONFIGURED)).test_client(use_cookies=False)


def state(settings) -> tuple[SubscriberStatus, str | None]:
    with sessions(settings)() as session:
        person = session.scalar(select(Subscriber))
        return person.status, session.scalar(select(Suppression.reason))


def sendgrid(client, events: list, *, good: bool = True):
    body, stamp = json.dumps(events).encode(), now()
    signature = sendgrid_sign(PRIVATE, stamp, body if good else body + b"x")
    return client.post("/webhooks/sendgrid", data=body, content_type="application/json",
                       headers={"X-Twilio-Email-Event-Webhook-Signature": signature,
                                "X-Twilio-Email-Event-Webhook-Timestamp": stamp})


def test_sendgrid_signed_bounce_suppresses(client, settings):
    answer = sendgrid(client, [{"email": "reader@EXAMPLE.org", "event": "bounce",
                                "type": "bounce", "reason": "550 no such user"}])
    assert answer.status_code == 200 and answer.json == {"suppressed": 1}
    assert state(settings) == (SubscriberStatus.BOUNCED, "bounced")


def test_sendgrid_bad_signature_changes_nothing(client, settings):
    answer = sendgrid(client, [{"email": "reader@example.org", "event": "spamreport"}],
                      good=False)
    assert answer.status_code == 401
    assert state(settings) == (SubscriberStatus.CONFIRMED, None)


def test_mailgun_complaint_suppresses_and_a_wrong_key_is_refused(client, settings):
    event = {"event": "complained", "recipient": "reader@example.org"}
    forged = {"signature": mailgun_signature("not-the-key"), "event-data": event}
    assert client.post("/webhooks/mailgun", json=forged).status_code == 401
    assert state(settings) == (SubscriberStatus.CONFIRMED, None)
    signed = {"signature": mailgun_signature("mg-key"), "event-data": event}
    assert client.post("/webhooks/mailgun", json=signed).status_code == 200
    assert state(settings) == (SubscriberStatus.COMPLAINED, "complained")


def test_postmark_basic_auth(client, settings):
    bounce = {"RecordType": "Bounce", "Type": "HardBounce", "Email": "reader@example.org"}
    wrong = "Basic " + base64.b64encode(b"hook:guess").decode()
    assert client.post("/webhooks/postmark", json=bounce,
                       headers={"Authorization": wrong}).status_code == 401
    assert state(settings) == (SubscriberStatus.CONFIRMED, None)
    right = "Basic " + base64.b64encode(b"hook:s3cret").decode()
    assert client.post("/webhooks/postmark", json=bounce,
                       headers={"Authorization": right}).status_code == 200
    assert state(settings) == (SubscriberStatus.BOUNCED, "bounced")


def test_an_unknown_address_is_suppressed_all_the_same(client, settings):
    sendgrid(client, [{"email": "stranger@example.org", "event": "dropped"}])
    with sessions(settings)() as session:
        assert session.scalar(select(Suppression.email_key)) == "stranger@example.org"


def test_unconfigured_webhooks_answer_403_and_say_which_setting(settings):
    client = create_app(settings).test_client()
    answer = client.post("/webhooks/mailgun", json={"event-data": {}})
    assert answer.status_code == 403
    assert "NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY" in answer.json["error"]
    assert client.post("/webhooks/unknown", json=[]).status_code == 404


def test_mailgun_odd_bodies_get_a_clear_answer(client, settings):
    unconfigured = create_app(settings).test_client(use_cookies=False)
    answer = unconfigured.post("/webhooks/mailgun", data=b"[1, 2]",
                               content_type="application/json")
    assert answer.status_code == 403 and "MAILGUN_WEBHOOK_SIGNING_KEY" in answer.json["error"]
    event = {"event": "failed", "severity": "permanent", "recipient": "reader@example.org",
             "delivery-status": "gone"}
    signed = {"signature": mailgun_signature("mg-key"), "event-data": event}
    assert client.post("/webhooks/mailgun", json=signed).status_code == 200
    assert state(settings) == (SubscriberStatus.BOUNCED, "bounced")


def test_a_mailgun_post_cannot_be_replayed_with_other_event_data(client, settings):
    signature = mailgun_signature("mg-key")
    first = {"signature": signature,
             "event-data": {"event": "delivered", "recipient": "reader@example.org"}}
    assert client.post("/webhooks/mailgun", json=first).status_code == 200
    replay = {"signature": signature,
              "event-data": {"event": "complained", "recipient": "reader@example.org"}}
    assert client.post("/webhooks/mailgun", json=replay).status_code == 401
    assert state(settings) == (SubscriberStatus.CONFIRMED, None)


def test_a_bounce_naming_its_delivery_marks_that_copy_failed(client, settings, cli):
    from newsletter.store.models import Delivery
    from tests.conftest import DAY, SAMPLES

    assert cli("stories", "import", str(SAMPLES), "--date", DAY).exit_code == 0
    cli("subscribers", "add", "other@example.org", "--confirmed")
    assert cli("send", "--date", DAY).exit_code == 0
    with sessions(settings)() as session:
        ids = dict(session.execute(select(Subscriber.email_key, Delivery.id)
                                   .join(Delivery)).all())
    right = "Basic " + base64.b64encode(b"hook:s3cret").decode()

    def bounce(email: str, delivery: int) -> None:
        event = {"RecordType": "Bounce", "Type": "HardBounce", "Email": email,
                 "Description": "The server was unable to deliver your message",
                 "Metadata": {"delivery_id": str(delivery)}}
        assert client.post("/webhooks/postmark", json=event,
                           headers={"Authorization": right}).status_code == 200

    # A delivery id that is not this address's changes no delivery (only the address).
    bounce("reader@example.org", ids["other@example.org"])
    bounce("reader@example.org", ids["reader@example.org"])
    with sessions(settings)() as session:
        rows = dict(session.execute(select(Delivery.id, Delivery.state)).all())
    assert rows == {ids["reader@example.org"]: "failed", ids["other@example.org"]: "sent"}
    listed = cli("status", "--date", DAY, "--failures").stdout
    assert "postmark HardBounce" in listed and "Reader@example.org  failed (address)" in listed
