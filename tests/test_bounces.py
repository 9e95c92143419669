"""Bounces and complaints by mail: VERP tokens, real-shaped DSNs and ARF reports processed
from files, mboxes and maildirs, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import mailbox
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter.bounces.apply import verdict
from newsletter.bounces.read import Failure
from newsletter.mail.verp import TOKEN_LENGTH, ForgedToken, Verp
from newsletter.store.models import (
    Bounce,
    Delivery,
    DeliveryState,
    Edition,
    Subscriber,
    SubscriberStatus,
    Suppression,
    utcnow,
)

MAIL = Path(__file__).parent / "bounce_mail"
BOUNCES = "bounces@news.example.org"
SECRET = "test-secret-key-not-for-production"  # the env fixture's NEWSLETTER_SECRET_KEY
PERSON = "Gone.Reader@Example.net"


def message(name: str, verp: str, rcpt: str = PERSON, tag: str = "1") -> bytes:
    text = (MAIL / name).read_text()
    text = text.replace("{VERP}", verp).replace("{RCPT}", rcpt).replace("{ID}", tag)
    return text.replace("\n", "\r\n").encode()


def sent(sessions, email: str = PERSON, date: dt.date = dt.date(2026, 12, 1)) -> int:
    """A confirmed subscriber and one sent copy of the edition of `date`: its delivery id."""
    with sessions.begin() as session:
        person = session.scalar(select(Subscriber).where(Subscriber.email_key == email.lower()))
        if person is None:
            person = Subscriber(email=email, email_key=email.lower(),
                                status=SubscriberStatus.CONFIRMED)
            session.add(person)
        edition = session.scalar(select(Edition).where(Edition.date == date))
        if edition is None:
            edition = Edition(date=date, subject=f"The Daily Spin {date}", content={})
            session.add(edition)
        session.flush()
        delivery = Delivery(edition_id=edition.id, subscriber_id=person.id,
                            state=DeliveryState.SENT, attempts=1, sent_at=utcnow(),
                            updated_at=utcnow())
        session.add(delivery)
        session.flush()
        return delivery.id


def facts(sessions, email: str = PERSON) -> dict:
    with sessions() as session:
        person = session.scalar(select(Subscriber).where(Subscriber.email_key == email.lower()))
        suppressed = session.scalar(select(Suppression).where(
            Suppression.email_key == email.lower()))
        states = session.scalars(select(Delivery.state).where(
            Delivery.subscriber_id == person.id).order_by(Delivery.id)).all() if person else []
        return {"status": person.status.value if person else None,
                "suppressed": suppressed.reason.value if suppressed else None,
                "detail": suppressed.detail if suppressed else None,
                "deliveries": [s.value for s in states],
                "rows": session.scalar(select(func.count()).select_from(Bounce))}


@pytest.fixture
def bounce_env(env, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_BOUNCE_ADDRESS", BOUNCES)
    return Verp(BOUNCES, SECRET)


def process(cli, tmp_path: Path, *raws: bytes):
    paths = []
    for number, raw in enumerate(raws):
        path = tmp_path / f"in{len(list(tmp_path.glob('in*')))}_{number}.eml"
        path.write_bytes(raw)
        paths.append(str(path))
    return cli("bounces", "process", *paths)


# VERP tokens


def test_a_token_names_the_delivery_is_short_lower_case_and_signed():
    verp = Verp("Bounces@News.Example.org", SECRET)
    address = verp.return_path(123456789)
    local, _, domain = address.partition("@")
    token = local.removeprefix("bounces+")
    assert domain == "news.example.org" and len(token) == TOKEN_LENGTH == 16
    assert token == token.lower() and token.isalnum()
    assert verp.delivery_id(address) == 123456789
    assert verp.delivery_id(address.upper()) == 123456789  # a server that folds case
    assert verp.delivery_id(f"<{address}>") == 123456789
    assert verp.delivery_id("someone@example.net") is None
    assert verp.delivery_id(BOUNCES) is None
    assert verp.return_path(None) == BOUNCES  # a test send names nobody
    other = Verp(BOUNCES, "another secret").return_path(123456789)
    tampered = address.replace(token, token[:-1] + ("a" if token[-1] != "a" else "b"))
    for forged in (other, tampered, "bounces+short@news.example.org"):
        with pytest.raises(ForgedToken):
            verp.delivery_id(forged)


# Real-shaped messages, one verdict each

CASES = [
    # file, what it is, delivery state after, subscriber status after, suppression
    ("postfix_user_unknown.eml", "hard", "failed", "bounced", "bounced"),
    ("gmail_no_such_account.eml", "hard", "failed", "bounced", "bounced"),
    ("m365_recipient_not_found.eml", "hard", "failed", "bounced", "bounced"),
    ("qmail_no_mailbox.eml", "hard", "failed", "bounced", "bounced"),
    ("exim_mailbox_full.eml", "soft", "sent", "confirmed", None),
    ("postfix_delayed.eml", "soft", "sent", "confirmed", None),
    ("m365_blocked_by_policy.eml", "refused", "sent", "confirmed", None),
    ("arf_abuse.eml", "complaint", "sent", "complained", "complained"),
    ("outlook_out_of_office.eml", "auto-reply", "sent", "confirmed", None),
]


@pytest.mark.parametrize(("name", "kind", "state", "status", "suppressed"), CASES,
                         ids=[c[0].removesuffix(".eml") for c in CASES])
def test_each_kind_of_message_does_what_it_should(cli, sessions, bounce_env, tmp_path,
                                                   name, kind, state, status, suppressed):
    delivery = sent(sessions)
    result = process(cli, tmp_path, message(name, bounce_env.return_path(delivery)))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"1 {kind}"
    after = facts(sessions)
    assert (after["deliveries"], after["status"], after["suppressed"]) == \
        ([state], status, suppressed)
    if suppressed == "bounced":
        assert "5." in after["detail"] or "permanent" in after["detail"]


def test_the_same_message_twice_changes_nothing_the_second_time(cli, sessions, bounce_env,
                                                                tmp_path):
    raw = message("postfix_user_unknown.eml", bounce_env.return_path(sent(sessions)))
    assert process(cli, tmp_path, raw).output.strip() == "1 hard"
    before = facts(sessions)
    assert process(cli, tmp_path, raw, raw).output.strip() == "2 duplicate"
    assert facts(sessions) == before


def test_a_forged_token_is_ignored_whatever_the_report_says(cli, sessions, bounce_env,
                                                            tmp_path):
    delivery = sent(sessions)
    someone_else = Verp(BOUNCES, "guessed secret").return_path(delivery)
    result = process(cli, tmp_path,
                     message("postfix_user_unknown.eml", someone_else, tag="a"),
                     message("arf_abuse.eml", someone_else, tag="b"))
    assert result.output.strip() == "2 forged"
    after = facts(sessions)
    assert (after["deliveries"], after["status"], after["suppressed"]) == \
        (["sent"], "confirmed", None)


def test_soft_bounces_suppress_only_past_the_limit_within_30_days(cli, sessions, bounce_env,
                                                                  tmp_path):
    # Two notices about one copy (delayed, then failed) count once.
    first = sent(sessions, date=dt.date(2026, 12, 1))
    raws = [message("postfix_delayed.eml", bounce_env.return_path(first), tag="d1"),
            message("exim_mailbox_full.eml", bounce_env.return_path(first), tag="f1")]
    for number, day in enumerate((2, 3), 2):
        delivery = sent(sessions, date=dt.date(2026, 12, day))
        raws.append(message("exim_mailbox_full.eml", bounce_env.return_path(delivery),
                            tag=f"f{number}"))
    assert process(cli, tmp_path, *raws[:3]).output.strip() == "3 soft"
    assert facts(sessions)["suppressed"] is None  # two copies so far
    assert process(cli, tmp_path, raws[3]).output.strip() == "1 soft"
    after = facts(sessions)
    assert (after["status"], after["suppressed"]) == ("bounced", "bounced")
    assert after["detail"].startswith("3 soft bounces within 30 days")


def test_old_soft_bounces_do_not_count(cli, sessions, bounce_env, tmp_path, monkeypatch):
    raws = []
    for day in (1, 2, 3):
        delivery = sent(sessions, date=dt.date(2026, 12, day))
        raws.append(message("exim_mailbox_full.eml", bounce_env.return_path(delivery),
                            tag=f"o{day}"))
    process(cli, tmp_path, *raws[:2])
    with sessions.begin() as session:
        for row in session.scalars(select(Bounce)):
            row.received_at = utcnow() - dt.timedelta(days=31)
    process(cli, tmp_path, raws[2])
    assert facts(sessions)["suppressed"] is None


def test_without_a_token_the_address_must_match_a_recent_delivery(cli, sessions, bounce_env,
                                                                  tmp_path):
    sent(sessions)
    # Relays that rewrite the return path: the bounce reaches the plain address.
    known = message("qmail_no_mailbox.eml", BOUNCES, tag="k")
    stranger = message("qmail_no_mailbox.eml", BOUNCES, rcpt="never.mailed@example.net",
                       tag="s")
    result = process(cli, tmp_path, known, stranger)
    assert result.output.strip() == "1 hard, 1 unrecognised"
    assert facts(sessions)["suppressed"] == "bounced"
    assert facts(sessions, "never.mailed@example.net")["suppressed"] is None


def test_a_complaint_without_a_token_needs_a_recent_delivery_too(cli, sessions, bounce_env,
                                                                 tmp_path):
    sent(sessions)
    result = process(cli, tmp_path, message("arf_abuse.eml", BOUNCES, tag="c1"),
                     message("arf_abuse.eml", BOUNCES, rcpt="stranger@example.net", tag="c2"))
    assert result.output.strip() == "1 complaint, 1 unrecognised"
    assert facts(sessions)["status"] == "complained"


def test_mbox_maildir_and_folders(cli, sessions, bounce_env, tmp_path):
    one, two, three = (sent(sessions, f"r{n}@example.net") for n in (1, 2, 3))
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(message("postfix_user_unknown.eml", bounce_env.return_path(one),
                    rcpt="r1@example.net", tag="m1"))
    box.add(message("outlook_out_of_office.eml", bounce_env.return_path(one), tag="m2"))
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(message("gmail_no_such_account.eml", bounce_env.return_path(two),
                        rcpt="r2@example.net", tag="m3"))
    folder = tmp_path / "saved"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.eml").write_bytes(message(
        "arf_abuse.eml", bounce_env.return_path(three), rcpt="r3@example.net", tag="m4"))
    result = cli("bounces", "process", str(tmp_path / "bounces.mbox"), str(tmp_path / "Maildir"),
                 str(folder))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 hard, 1 complaint, 1 auto-reply"
    assert [facts(sessions, f"r{n}@example.net")["suppressed"] for n in (1, 2, 3)] == \
        ["bounced", "bounced", "complained"]


def test_nonsense_is_unrecognised_and_read_once(cli, sessions, bounce_env, tmp_path):
    junk = b"\x00\xff not a message at all \xe9\r\n\r\n--\r\n"
    bad_report = (b"Message-ID: <\xe9@x>\r\nContent-Type: multipart/report; "
                  b"report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
                  b"Content-Type: message/delivery-status\r\n\r\nnonsense\r\n--b--\r\n")
    assert process(cli, tmp_path, junk, bad_report).stdout.strip() == "2 unrecognised"
    assert process(cli, tmp_path, junk, bad_report).stdout.strip() == "2 duplicate"


def test_a_missing_path_fails_before_anything_is_read(cli, sessions, bounce_env, tmp_path):
    raw = message("postfix_user_unknown.eml", bounce_env.return_path(sent(sessions)))
    (tmp_path / "real.eml").write_bytes(raw)
    result = cli("bounces", "process", str(tmp_path / "real.eml"), str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'nope'}: no such file or folder"
    assert facts(sessions)["rows"] == 0


def test_tokens_are_read_only_when_a_bounce_address_is_set(cli, sessions, env, tmp_path):
    """Without NEWSLETTER_BOUNCE_ADDRESS the Final-Recipient fallback still works."""
    delivery = sent(sessions)
    raw = message("postfix_user_unknown.eml", Verp(BOUNCES, SECRET).return_path(delivery))
    assert process(cli, tmp_path, raw).output.strip() == "1 hard"


def test_status_shows_what_came_back_by_mail(cli, sessions, bounce_env, tmp_path):
    dead, full = sent(sessions), sent(sessions, "full@example.net")
    process(cli, tmp_path, message("postfix_user_unknown.eml", bounce_env.return_path(dead)),
            message("exim_mailbox_full.eml", bounce_env.return_path(full),
                    rcpt="full@example.net", tag="2"))
    result = cli("status", "--date", "2026-12-01")
    assert "  failed   1" in result.output
    assert "came back by mail: 1 hard, 1 soft" in result.output
    info = json.loads(cli("status", "--date", "2026-12-01", "--json").output)
    assert info["bounced_by_mail"] == {"hard": 1, "soft": 1}


def test_status_failures_lists_bounces_by_mail_beside_refusals_at_send_time(
        cli, sessions, bounce_env, tmp_path):
    dead, full = sent(sessions), sent(sessions, "full@example.net")
    blocked = sent(sessions, "blocked@example.net")
    process(cli, tmp_path, message("postfix_user_unknown.eml", bounce_env.return_path(dead)),
            message("exim_mailbox_full.eml", bounce_env.return_path(full),
                    rcpt="full@example.net", tag="2"),
            message("m365_blocked_by_policy.eml", bounce_env.return_path(blocked),
                    rcpt="blocked@example.net", tag="3"))
    text = cli("status", "--date", "2026-12-01", "--failures").output
    assert "1 x bounced by mail: 5.1.1 550 5.1.1" in text
    assert f"  {PERSON}  failed (address)" in text
    assert "2 came back by mail (soft, refused, complaints):" in text
    assert "  full@example.net  soft 5.2.2" in text
    assert "  blocked@example.net  refused 5.7.1" in text
    info = json.loads(cli("status", "--date", "2026-12-01", "--failures", "--json").output)
    assert [f["deliveries"][0]["email"] for f in info["failures"]] == [PERSON]
    assert [(b["email"], b["kind"], b["status"]) for b in info["by_mail"]] == [
        ("full@example.net", "soft", "5.2.2"), ("blocked@example.net", "refused", "5.7.1")]


@pytest.mark.parametrize(("failure", "kind"), [
    (Failure("a@x.org", True, "5.1.1", "550 5.1.1 user unknown"), "hard"),
    (Failure("a@x.org", True, "5.1.10", "550 5.1.10 RecipientNotFound"), "hard"),
    (Failure("a@x.org", True, "5.2.1", "550 5.2.1 mailbox disabled"), "hard"),
    (Failure("a@x.org", True, "5.2.2", "552 5.2.2 mailbox full"), "soft"),
    (Failure("a@x.org", False, "4.4.1", "connection timed out"), "soft"),
    (Failure("a@x.org", True, "5.7.1", "550 5.7.1 blocked using Spamhaus"), "refused"),
    (Failure("a@x.org", True, "5.7.26", "550 5.7.26 DMARC"), "refused"),
    (Failure("a@x.org", True, "5.1.8", "553 5.1.8 bad sender domain"), "refused"),
    # Exim's Status 5.0.0 with a remote answer without an enhanced code: the basic code
    (Failure("a@x.org", True, "5.0.0", "550 No such user here"), "hard"),
    (Failure("a@x.org", True, "5.0.0", "550 Relaying denied"), "refused"),
    (Failure("a@x.org", True, "", ""), "hard"),  # flufl.bounce's permanent verdict alone
])
def test_verdicts_read_the_answer_as_a_refusal_at_send_time_would_be(failure, kind):
    assert verdict(failure).value == kind
