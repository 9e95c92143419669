"""Delivery safety end to end, from the command line, on SQLite and PostgreSQL: a relay or
a provider that refuses everyone stops the run and suppresses nobody; transient trouble
waits; ambiguous answers are never guessed; the operator sees and undoes."""

from __future__ import annotations

import email
import json
import logging
import re
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug import Response

from newsletter.delivery import ledger
from newsletter.delivery.safety import Breaker
from newsletter.mail.failures import Cause
from newsletter.mail.message import Result
from newsletter.providers.smtp import SmtpTransport
from newsletter.store.models import Delivery, Subscriber, Suppression, SuppressionChange
from newsletter.store.suppression import suppress
from tests.conftest import DAY
from tests.test_sending import people, status
from tests.test_transports import recipient

PEOPLE = [f"reader{n}@example.com" for n in range(30)]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(ledger, "RETRY_BASE_SECONDS", 0.02)
    monkeypatch.setattr(ledger, "RETRY_CAP_SECONDS", 0.1)


def suppressed(db) -> int:
    with Session(db) as session:
        return session.scalar(select(func.count()).select_from(Suppression))


def assert_each_once(smtp_fake, addresses) -> None:
    received = smtp_fake.recipients()
    assert sorted(received) == sorted(addresses) and len(set(received)) == len(received)


@pytest.mark.parametrize(("command", "reply"), [
    ("RCPT", "550 5.7.1 Relaying denied"),
    ("DATA", "552 5.3.4 Message size exceeds fixed maximum message size"),
    ("MAIL", "530 5.7.0 Authentication required"),
    ("DATA", "554 Transaction failed"),
])
def test_a_relay_refusing_everyone_stops_the_run_and_suppresses_nobody(cli, day, smtp, db,
                                                                       command, reply):
    people(cli, *PEOPLE)
    smtp.refuse[command] = reply
    result = cli("send", "--date", DAY)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert reply in result.stderr and "nobody was suppressed" in result.stderr
    counts = status(cli)
    assert (counts["pending"], counts["failed"], counts["sent"]) == (30, 0, 0)
    assert suppressed(db) == 0
    with Session(db) as session:  # nobody's status changed either
        assert set(session.scalars(select(Subscriber.status))) == {"confirmed"}

    del smtp.refuse[command]  # the operator fixes the relay
    again = cli("send", "--date", DAY)
    assert again.exit_code == 0, again.output
    assert_each_once(smtp, PEOPLE)
    assert status(cli)["edition"] == "complete"


def test_the_breaker_stops_a_relay_that_calls_everyone_unknown(cli, day, smtp, db):
    many = [f"many{n}@example.com" for n in range(120)]  # batches of 100 > the window of 50
    people(cli, *many)
    smtp.refuse["RCPT"] = "550 5.1.1 User unknown"  # a relay that thinks it is the destination
    result = cli("send", "--date", DAY)
    assert result.exit_code == 1
    assert "circuit breaker" in result.stderr and "550 5.1.1 User unknown" in result.stderr
    counts = status(cli)
    assert (counts["failed"], counts["pending"]) == (0, 120) and suppressed(db) == 0

    del smtp.refuse["RCPT"]
    assert cli("send", "--date", DAY).exit_code == 0
    assert_each_once(smtp, many)


def refusals(*causes):
    return [Result(recipient(n), "sent") if c is None else
            Result(recipient(n), "failed", error=f"550 #{n}", cause=c)
            for n, c in enumerate(causes)]


def test_the_breaker_judges_each_attempt_not_each_batch():
    breaker = Breaker(window=50, percent=20)
    assert breaker.judge(refusals(*[Cause.ADDRESS] * 100)) == []  # one batch, all refused
    assert breaker.tripped and "5 of the last 5" in breaker.tripped
    assert len(breaker.unjudged()) == 100  # every one of them goes back to pending


def test_a_steady_few_refusals_never_trip_and_are_judged_as_they_leave():
    breaker = Breaker(window=50, percent=20)
    causes = [Cause.ADDRESS if n % 50 == 7 else None for n in range(1000)]  # 2%
    judged = breaker.judge(refusals(*causes[:600])) + breaker.judge(refusals(*causes[600:]))
    assert not breaker.tripped
    assert len(judged) + len(breaker.unjudged()) == 20
    # Deferrals and ambiguous answers are not refusals: the retry window handles them.
    assert breaker.judge(refusals(*[Cause.TRANSIENT] * 50, *[Cause.AMBIGUOUS] * 50)) == []
    assert not breaker.tripped


def test_a_few_dead_addresses_are_suppressed_and_the_rest_goes(cli, day, smtp, db):
    people(cli, *PEOPLE)
    for dead in PEOPLE[3:5]:
        smtp.rcpt_script[dead] = ["550 5.1.1 <x>: Recipient address rejected: User unknown"]
    result = cli("send", "--date", DAY)
    assert result.exit_code == 0, result.output
    assert (status(cli)["sent"], status(cli)["failed"]) == (28, 2)
    with Session(db) as session:
        rows = session.execute(select(Suppression.email_key, Suppression.detail)).all()
    assert sorted(k for k, _ in rows) == PEOPLE[3:5]
    assert all("5.1.1" in detail for _, detail in rows)  # the server's answer as reason


def test_a_relay_deferring_everything_is_waited_for(cli, day, smtp, db, monkeypatch):
    people(cli, *PEOPLE[:10])
    smtp.refuse["RCPT"] = "451 4.3.0 Temporary local problem, try again later"
    threading.Timer(1.5, lambda: smtp.refuse.pop("RCPT")).start()
    result = cli("send", "--date", DAY)
    assert result.exit_code == 0, result.output
    assert_each_once(smtp, PEOPLE[:10])
    assert suppressed(db) == 0


def test_transient_trouble_past_the_retry_window_stops_with_copies_pending(cli, day, smtp,
                                                                          monkeypatch):
    monkeypatch.setenv("NEWSLETTER_RETRY_WINDOW", "1")
    people(cli, *PEOPLE[:5])
    smtp.refuse["RCPT"] = "450 4.2.0 Mailbox busy"
    result = cli("send", "--date", DAY)
    assert result.exit_code == 1
    assert "NEWSLETTER_RETRY_WINDOW" in result.stderr and "450 4.2.0" in result.stderr
    assert status(cli)["pending"] == 5


def test_failures_are_listed_grouped_by_answer(cli, day, smtp):
    people(cli, *PEOPLE[:6])
    for dead in PEOPLE[:2]:
        smtp.rcpt_script[dead] = ["550 5.1.1 User unknown"]
    smtp.rcpt_script[PEOPLE[2]] = ["552 5.2.2 Mailbox full"]
    assert cli("send", "--date", DAY).exit_code == 0
    text = cli("status", "--date", DAY, "--failures").stdout
    assert "2 x 550 5.1.1 User unknown" in text and "1 x 552 5.2.2 Mailbox full" in text
    assert f"{PEOPLE[0]}  failed (address)" in text and f"{PEOPLE[2]}  failed (recipient)" in text
    listed = json.loads(cli("status", "--date", DAY, "--failures", "--json").stdout)
    groups = {g["answer"]: g for g in listed["failures"]}
    assert groups["550 5.1.1 User unknown"]["count"] == 2
    assert {d["email"] for d in groups["550 5.1.1 User unknown"]["deliveries"]} == set(PEOPLE[:2])
    assert groups["552 5.2.2 Mailbox full"]["deliveries"][0]["cause"] == "recipient"


def test_unsuppress_and_retry_failed_undo_a_wrong_bounce(cli, day, smtp, db):
    people(cli, *PEOPLE[:3])
    smtp.rcpt_script[PEOPLE[0]] = ["550 5.1.1 User unknown"]  # a mailbox that came back
    assert cli("send", "--date", DAY).exit_code == 0
    assert suppressed(db) == 1
    lifted = cli("subscribers", "unsuppress", PEOPLE[0].upper())
    assert lifted.exit_code == 0 and "lifted the bounced suppression" in lifted.stdout
    with Session(db) as session:
        change = session.scalars(select(SuppressionChange)).one()
        assert (change.email_key, change.reason) == (PEOPLE[0], "bounced")
        assert change.by.startswith("cli:") and change.at is not None
    again = cli("send", "--date", DAY, "--retry-failed")
    assert again.exit_code == 0, again.output
    assert status(cli)["sent"] == 3
    assert sorted(smtp.recipients()) == sorted(PEOPLE[:3])


def test_an_unsubscribe_cannot_be_lifted_by_an_operator(cli, db):
    people(cli, "left@example.com")
    with Session(db) as session, session.begin():
        from newsletter.store.models import SubscriberStatus
        from newsletter.store.suppression import leave
        person = session.scalars(select(Subscriber)).one()
        leave(session, person, SubscriberStatus.UNSUBSCRIBED)
    result = cli("subscribers", "unsuppress", "left@example.com")
    assert result.exit_code == 1 and "unsubscribed themselves" in result.stderr
    assert "not suppressed" in cli("subscribers", "unsuppress", "x@example.com").stderr
    assert suppressed(db) == 1


def test_message_ids_come_from_the_delivery_and_survive_retries(cli, day, smtp, db,
                                                                monkeypatch):
    monkeypatch.setenv("NEWSLETTER_FROM", "The Daily Spin <news@spin.example.org>")
    people(cli, *PEOPLE[:2])
    smtp.rcpt_script[PEOPLE[0]] = ["451 4.7.1 Greylisted"]
    assert cli("send", "--date", DAY).exit_code == 0
    with Session(db) as session:
        stored = dict(session.execute(select(Subscriber.email_key, Delivery.message_id)
                                      .join(Delivery)).all())
    for message in smtp.messages:
        parsed = email.message_from_bytes(message.content)
        assert parsed["Message-ID"] == stored[message.rcpt_tos[0]]
    assert all(re.fullmatch(r"<20261125\.\d+\.spin@spin\.example\.org>", m)
               for m in stored.values())
    assert len(set(stored.values())) == 2


def test_a_non_ascii_base_url_is_made_ascii_not_a_reason_to_fail(cli, day, smtp, db,
                                                                  monkeypatch):
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "https://nouvelles.exämple.org/lettre")
    people(cli, *PEOPLE[:2])
    assert cli("send", "--date", DAY).exit_code == 0
    raw = smtp.messages[0].content.decode()
    assert "List-Unsubscribe: <https://nouvelles.xn--exmple-cua.org/lettre/unsubscribe/" in raw
    assert suppressed(db) == 0


def test_a_bug_in_a_transport_releases_the_batch_and_says_so(cli, day, smtp, monkeypatch,
                                                             caplog):
    def broken(self, envelope, recipients):
        raise KeyError("unsubscribe_url")

    monkeypatch.setattr(SmtpTransport, "send_batch", broken)
    people(cli, *PEOPLE[:3])
    with caplog.at_level(logging.ERROR):
        result = cli("send", "--date", DAY)
    assert result.exit_code == 1 and "a bug in the smtp transport" in result.stderr
    assert "KeyError" in result.stderr and "Traceback" not in result.output
    assert any(r.exc_info for r in caplog.records)  # the traceback went to the log
    counts = status(cli)
    assert (counts["pending"], counts["sending"], counts["unknown"]) == (3, 0, 0)


def test_a_bug_mid_batch_keeps_what_went_out_and_never_resends_it(cli, day, smtp,
                                                                   monkeypatch, caplog):
    original = SmtpTransport._deliver
    calls = []

    def third_breaks(self, sender, recipient, address, data):
        result = original(self, sender, recipient, address, data)
        calls.append(recipient.email)
        if len(calls) == 3:  # the copy went out, then our code failed
            raise KeyError("oops")
        return result

    monkeypatch.setattr(SmtpTransport, "_deliver", third_breaks)
    people(cli, *PEOPLE[:6])
    with caplog.at_level(logging.ERROR):
        result = cli("send", "--date", DAY)
    assert result.exit_code == 1 and "a bug in the smtp transport (KeyError" in result.stderr
    assert any(r.exc_info for r in caplog.records)
    counts = status(cli)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (2, 1, 3)
    assert len(smtp.recipients()) == 3
    monkeypatch.setattr(SmtpTransport, "_deliver", original)
    assert cli("send", "--date", DAY).exit_code == 3  # the rest; the unknown one waits
    assert_each_once(smtp, PEOPLE[:6])


def test_suppressing_one_address_twice_at_once_is_harmless(engine):
    barrier, errors = threading.Barrier(4), []

    def twice() -> None:
        try:
            with Session(engine) as session, session.begin():
                barrier.wait()
                suppress(session, "Same@Example.org", "bounced", "from a webhook")
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=twice) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(engine) as session:
        assert session.scalars(select(Suppression.email_key)).all() == ["same@example.org"]


# --- the ESPs, refusing and failing -----------------------------------------------------

@pytest.fixture
def esp(monkeypatch, httpserver):
    def use(name: str) -> None:
        monkeypatch.setenv("NEWSLETTER_TRANSPORT", name)
        monkeypatch.setenv("NEWSLETTER_ESP_API_KEY", "test-key")
        monkeypatch.setenv("NEWSLETTER_MAILGUN_DOMAIN", "mg.example.org")
        monkeypatch.setenv("NEWSLETTER_ESP_API_URL", httpserver.url_for("/").rstrip("/"))
    return use


PATHS = {"sendgrid": "/v3/mail/send", "mailgun": "/v3/mg.example.org/messages",
         "postmark": "/email/batch"}


@pytest.mark.parametrize("name", list(PATHS))
@pytest.mark.parametrize("code", [502, 504])
def test_a_gateway_error_parks_the_batch_unknown_and_never_resends(cli, day, esp, httpserver,
                                                                    name, code):
    esp(name)
    people(cli, *PEOPLE[:4])
    httpserver.expect_request(PATHS[name]).respond_with_data("Bad Gateway", status=code)
    result = cli("send", "--date", DAY)
    assert result.exit_code == 3 and "--resend-unknown" in result.stderr
    counts = status(cli)
    assert (counts["unknown"], counts["pending"], counts["failed"]) == (4, 0, 0)
    assert len(httpserver.log) == 1  # one request: a retry could have sent it twice
    listed = cli("status", "--date", DAY, "--failures").stdout
    assert f"HTTP {code}" in listed and "unknown" in listed


@pytest.mark.parametrize("name", list(PATHS))
def test_a_providers_500_is_retried_a_few_times_then_unknown(cli, day, esp, httpserver, name):
    esp(name)
    people(cli, *PEOPLE[:2])
    httpserver.expect_request(PATHS[name]).respond_with_data("Internal error", status=500)
    result = cli("send", "--date", DAY)
    assert result.exit_code == 3
    assert status(cli)["unknown"] == 2 and len(httpserver.log) == 3


def test_postmark_refusing_every_message_as_invalid_suppresses_nobody(cli, day, esp,
                                                                      httpserver, db):
    esp("postmark")
    people(cli, *PEOPLE[:4])

    def invalid(request):
        return Response(json.dumps([{"ErrorCode": 300, "Message": "Invalid 'From' address."}
                                    for _ in request.get_json()]),
                        content_type="application/json")

    httpserver.expect_request(PATHS["postmark"]).respond_with_handler(invalid)
    result = cli("send", "--date", DAY)
    assert result.exit_code == 1 and "Invalid 'From' address" in result.stderr
    assert status(cli)["pending"] == 4 and suppressed(db) == 0


def test_postmark_inactive_recipients_are_suppressed(cli, day, esp, httpserver, db):
    esp("postmark")
    people(cli, *PEOPLE[:6])

    def some_inactive(request):
        return Response(json.dumps([
            {"ErrorCode": 406, "Message": "Inactive recipient"} if "reader1@" in m["To"]
            else {"ErrorCode": 0, "MessageID": f"pm-{i}"}
            for i, m in enumerate(request.get_json())]), content_type="application/json")

    httpserver.expect_request(PATHS["postmark"]).respond_with_handler(some_inactive)
    assert cli("send", "--date", DAY).exit_code == 0
    with Session(db) as session:
        assert session.scalars(select(Suppression.email_key)).all() == ["reader1@example.com"]
    (request, _), = httpserver.log
    ids = {m["Metadata"]["delivery_id"] for m in request.get_json()}
    assert len(ids) == 6  # each copy carries its delivery, for the webhooks
