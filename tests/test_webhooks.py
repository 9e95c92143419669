"""Webhook signatures and payloads, framework-free: real keys, real HMACs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.providers.mailgun import parse_mailgun, verify_mailgun
from newsletter.providers.postmark import parse_postmark, verify_postmark
from newsletter.providers.sendgrid import parse_sendgrid, verify_sendgrid
from newsletter.providers.webhooks import MAX_AGE_SECONDS, NotConfigured, WebhookRefused
from newsletter.store.models import SubscriberStatus


def sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode()


def sendgrid_sign(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def now() -> str:
    return str(int(time.time()))


def mailgun_signature(key: str, timestamp: str | None = None, token: str | None = None) -> dict:
    timestamp = timestamp or now()
    token = token or secrets.token_hex(25)  # Mailgun's tokens: 50 random characters
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


def test_sendgrid_signature_verifies_and_a_changed_body_does_not():
    private, public = sendgrid_keys()
    body = b'[{"email":"a@example.org","event":"bounce"}]'
    stamp = now()
    signature = sendgrid_sign(private, stamp, body)
    verify_sendgrid(public, signature, stamp, body)
    for args in ((signature, str(int(stamp) + 1), body), (signature, stamp, body + b" "),
                 ("bm90IGEgc2lnbmF0dXJl", stamp, body), (None, None, body)):
        with pytest.raises(WebhookRefused) as refused:
            verify_sendgrid(public, *args)
        assert refused.value.status == 401


def test_sendgrid_accepts_a_pem_key_too():
    private, _ = sendgrid_keys()
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    stamp = now()
    verify_sendgrid(pem.decode(), sendgrid_sign(private, stamp, b"[]"), stamp, b"[]")


@pytest.mark.parametrize("offset", [-MAX_AGE_SECONDS - 30, -3600, 60, 86400])
def test_signed_timestamps_older_than_five_minutes_or_in_the_future_are_refused(offset):
    """A captured post, signature and all, is worthless five minutes later."""
    private, public = sendgrid_keys()
    stamp, body = str(int(time.time()) + offset), b"[]"
    with pytest.raises(WebhookRefused, match="old|future"):
        verify_sendgrid(public, sendgrid_sign(private, stamp, body), stamp, body)
    with pytest.raises(WebhookRefused, match="old|future"):
        verify_mailgun("key", {"signature": mailgun_signature("key", stamp)})


def test_fresh_timestamps_pass_on_both():
    private, public = sendgrid_keys()
    stamp = str(int(time.time()) - MAX_AGE_SECONDS + 30)
    verify_sendgrid(public, sendgrid_sign(private, stamp, b"[]"), stamp, b"[]")
    signed = mailgun_signature("key", stamp, token="t" * 50)
    assert verify_mailgun("key", {"signature": signed}) == "t" * 50


def test_unconfigured_providers_are_refused_with_403_naming_the_setting():
    cases = [(lambda: verify_sendgrid(None, "s", "t", b"[]"), "SENDGRID_WEBHOOK_PUBLIC"),
             (lambda: verify_mailgun(None, {}), "MAILGUN_WEBHOOK_SIGNING_KEY"),
             (lambda: verify_postmark("u", None, "Basic x"), "POSTMARK_WEBHOOK_USERNAME")]
    for call, setting in cases:
        with pytest.raises(NotConfigured, match=setting) as refused:
            call()
        assert refused.value.status == 403


def test_mailgun_hmac_and_age():
    key = "key-123"
    verify_mailgun(key, {"signature": mailgun_signature(key)})
    wrong = {"signature": mailgun_signature("other-key")}
    stale = {"signature": mailgun_signature(key, str(int(time.time()) - 2 * 86400))}
    for payload in (wrong, stale, {"signature": "x"}, {}):
        with pytest.raises(WebhookRefused):
            verify_mailgun(key, payload)


def test_postmark_basic_auth():
    good = "Basic " + base64.b64encode(b"hook:s3cret").decode()
    verify_postmark("hook", "s3cret", good)
    for header in (None, "Basic " + base64.b64encode(b"hook:wrong").decode(), "Bearer x"):
        with pytest.raises(WebhookRefused):
            verify_postmark("hook", "s3cret", header)


def test_each_provider_payload_becomes_events():
    sendgrid = json.dumps([
        {"email": "b@example.org", "event": "bounce", "type": "bounce", "reason": "550"},
        {"email": "t@example.org", "event": "bounce", "type": "blocked"},  # temporary
        {"email": "d@example.org", "event": "dropped", "reason": "Bounced Address"},
        {"email": "s@example.org", "event": "spamreport"},
        {"email": "o@example.org", "event": "open"}]).encode()
    assert [(e.email, e.status) for e in parse_sendgrid(sendgrid)] == [
        ("b@example.org", SubscriberStatus.BOUNCED), ("d@example.org", SubscriberStatus.BOUNCED),
        ("s@example.org", SubscriberStatus.COMPLAINED)]
    mailgun = [{"event-data": {"event": "failed", "severity": "permanent",
                               "recipient": "m@example.org"}},
               {"event-data": {"event": "failed", "severity": "temporary",
                               "recipient": "x@example.org"}},
               {"event-data": {"event": "complained", "recipient": "c@example.org"}}]
    assert [e.status for p in mailgun for e in parse_mailgun(p)] == [
        SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED]
    postmark = [{"RecordType": "Bounce", "Type": "HardBounce", "Email": "p@example.org"},
                {"RecordType": "Bounce", "Type": "SoftBounce", "Email": "q@example.org"},
                {"RecordType": "SpamComplaint", "Email": "r@example.org"}]
    assert [e.email for p in postmark for e in parse_postmark(p)] == [
        "p@example.org", "r@example.org"]


def test_bodies_that_are_not_the_expected_json_are_refused():
    for body in (b"not json", b'{"a": 1}', b"[1, 2]"):
        with pytest.raises(WebhookRefused):
            list(parse_sendgrid(body))
