"""The ESP adapters against a local HTTP server answering as each provider documents:
the exact request each receives, and every answer turned into results or one error."""

from __future__ import annotations

import base64
import json
import time

import pytest
from werkzeug import Request, Response

from newsletter.errors import AuthRefused, NewsletterError, TransportError
from newsletter.mail.failures import Cause
from newsletter.providers.mailgun import MailgunTransport
from newsletter.providers.postmark import PostmarkTransport
from newsletter.providers.sendgrid import SendGridTransport
from tests.smtp_sink import free_port
from tests.test_transports import (
    ENVELOPE,
    ESP,
    esp_settings,
    recipient,
)

CLASSES = {"sendgrid": SendGridTransport, "mailgun": MailgunTransport,
           "postmark": PostmarkTransport}


@pytest.fixture
def esp(make_settings, httpserver):
    """make(name, **settings) -> a transport with tiny backoff that records its sleeps."""
    def make(name: str, **overrides):
        transport = CLASSES[name](esp_settings(make_settings, httpserver, name, **overrides),
                                  backoff_base=0.01, backoff_cap=0.04, max_attempts=3,
                                  sleep=sleeps.append)
        transport.open()
        return transport
    sleeps: list[float] = []
    make.sleeps = sleeps
    return make


def answer(*responses: Response):
    """A handler giving these responses in turn (the last one repeats)."""
    queue = list(responses)

    def handler(request: Request) -> Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]
    return handler


def requests_made(httpserver) -> list[Request]:
    return [request for request, _ in httpserver.log]


# --- the exact requests ------------------------------------------------------------------

def test_sendgrid_request_and_queued_results(esp, httpserver):
    path, ok, _ = ESP["sendgrid"]
    httpserver.expect_request(path, method="POST").respond_with_handler(ok)
    recipients = [recipient(0, "Zoë"), recipient(1, email_="o'brien&co@example.com")]
    results = esp("sendgrid").send_batch(ENVELOPE, recipients)
    assert [(r.status, r.provider_id) for r in results] == [("queued", "sg-message-1")] * 2
    (request,) = requests_made(httpserver)
    assert request.headers["Authorization"] == "Bearer key-123"
    body = request.get_json()
    assert body["from"] == {"email": "news@example.org", "name": "The Daily Spin"}
    assert body["reply_to"] == {"email": "desk@example.org", "name": "Desk"}
    assert body["headers"] == {"List-Id": "The Daily Spin <daily.example.org>",
                               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    first, second = body["personalizations"]
    assert first["to"] == [{"email": "reader0@example.com", "name": "Zoë"}]
    assert second["to"] == [{"email": "o'brien&co@example.com"}]
    assert first["headers"] == {
        "List-Unsubscribe": "<https://news.example.org/unsubscribe/tok0.sig>"}
    tags = list(first["substitutions"])
    assert tags == list(second["substitutions"])
    # Random tags, present in the content, never a fixed word a story could hold.
    text, html = (c["value"] for c in body["content"])
    assert all(tag in text + html for tag in tags)
    assert {"o'brien&co@example.com", "o&#x27;brien&amp;co@example.com"} <= \
        set(second["substitutions"].values())  # text as it is, HTML escaped


def test_mailgun_request_and_queued_results(esp, httpserver):
    path, ok, _ = ESP["mailgun"]
    httpserver.expect_request(path, method="POST").respond_with_handler(ok)
    results = esp("mailgun").send_batch(ENVELOPE, [recipient(0, "Zoë"), recipient(1)])
    assert [(r.status, r.provider_id) for r in results] == [("queued",
                                                             "<mg-1@mg.example.org>")] * 2
    (request,) = requests_made(httpserver)
    assert request.path == "/v3/mg.example.org/messages"
    assert request.headers["Authorization"] == \
        "Basic " + base64.b64encode(b"api:key-123").decode()
    form = request.form
    assert form.getlist("to") == ["=?utf-8?b?Wm/Dqw==?= <reader0@example.com>",
                                  "reader1@example.com"]
    variables = json.loads(form["recipient-variables"])
    assert set(variables) == {"reader0@example.com", "reader1@example.com"}
    unsubscribe = form["h:List-Unsubscribe"]
    name = unsubscribe.removeprefix("<%recipient.").removesuffix("%>")
    assert variables["reader1@example.com"][name] == \
        "https://news.example.org/unsubscribe/tok1.sig"
    assert form["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "%recipient.x%" in form["text"]  # the story's own text, untouched


def test_postmark_request_and_mixed_per_message_results(esp, httpserver):
    def mixed(request: Request) -> Response:
        codes = [(0, "OK"), (406, "You tried to send to a recipient that has been marked as "
                                   "inactive."), (300, "Invalid 'To' address."), (0, "OK")]
        return Response(json.dumps([
            {"ErrorCode": code, "Message": message, **({"MessageID": f"pm-{i}"} if not code
                                                         else {})}
            for i, (code, message) in enumerate(codes)]), 200, content_type="application/json")

    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(mixed)
    results = esp("postmark").send_batch(ENVELOPE, [recipient(n) for n in range(4)])
    # 406: the reader's address is inactive (suppress them); 300: our request is invalid,
    # which is about us (the run stops and nobody is suppressed).
    assert [(r.status, r.provider_id, r.cause) for r in results] == [
        ("queued", "pm-0", None), ("failed", None, Cause.ADDRESS),
        ("failed", None, Cause.CONFIG), ("queued", "pm-3", None)]
    assert "inactive" in results[1].error
    (request,) = requests_made(httpserver)
    assert request.headers["X-Postmark-Server-Token"] == "key-123"
    messages = request.get_json()
    assert [m["To"] for m in messages] == [f"reader{n}@example.com" for n in range(4)]
    assert [m["Metadata"] for m in messages] == [{"delivery_id": str(n)} for n in range(4)]
    assert {"Name": "List-Unsubscribe", "Value": "<https://news.example.org/unsubscribe/"
            "tok2.sig>"} in messages[2]["Headers"]
    assert messages[0]["MessageStream"] == "broadcast"


def test_duplicate_addresses_go_in_separate_calls(esp, httpserver):
    path, ok, _ = ESP["sendgrid"]
    httpserver.expect_request(path, method="POST").respond_with_handler(ok)
    twice = recipient(0, email_="Reader0@Example.com")
    results = esp("sendgrid").send_batch(ENVELOPE, [recipient(0), recipient(1), twice])
    assert [r.status for r in results] == ["queued"] * 3
    calls = [len(r.get_json()["personalizations"]) for r in requests_made(httpserver)]
    assert calls == [2, 1]


def test_a_later_call_failing_keeps_the_results_of_earlier_ones(esp, httpserver):
    path, ok, _ = ESP["sendgrid"]
    httpserver.expect_request(path, method="POST").respond_with_handler(
        answer(ok(None), Response("busy", 503)))
    with pytest.raises(TransportError) as caught:
        esp("sendgrid").send_batch(ENVELOPE, [recipient(0), recipient(0)])
    assert caught.value.transient
    assert [r.status for r in caught.value.partial] == ["queued"]  # the caller retries the rest


# --- retries and refusals ----------------------------------------------------------------

@pytest.mark.parametrize("name", list(ESP))
def test_429_honours_retry_after(esp, httpserver, name):
    path, ok, _ = ESP[name]
    queue = [Response("slow down", 429, headers={"Retry-After": "2"})]
    httpserver.expect_request(path, method="POST").respond_with_handler(
        lambda request: queue.pop(0) if queue else ok(request))
    transport = esp(name)
    results = transport.send_batch(ENVELOPE, [recipient(0)])
    assert results[0].status == "queued"
    assert esp.sleeps == [2.0]
    assert len(requests_made(httpserver)) == 2


def test_sendgrid_429_waits_for_the_rate_limit_reset(esp, httpserver):
    path, ok, _ = ESP["sendgrid"]
    reset = str(int(time.time()) + 5)
    httpserver.expect_request(path, method="POST").respond_with_handler(
        answer(Response("", 429, headers={"X-RateLimit-Reset": reset}), ok(None)))
    assert esp("sendgrid").send_batch(ENVELOPE, [recipient(0)])[0].status == "queued"
    assert 3.0 < esp.sleeps[0] <= 5.0


@pytest.mark.parametrize("name", list(ESP))
def test_500_then_success_backs_off_once(esp, httpserver, name):
    path, ok, _ = ESP[name]
    queue = [Response("oops", 500)]
    httpserver.expect_request(path, method="POST").respond_with_handler(
        lambda request: queue.pop(0) if queue else ok(request))
    assert esp(name).send_batch(ENVELOPE, [recipient(0)])[0].status == "queued"
    assert len(esp.sleeps) == 1 and 0.005 <= esp.sleeps[0] <= 0.01


@pytest.mark.parametrize("name", list(ESP))
def test_503_every_time_gives_up_with_a_transient_error(esp, httpserver, name):
    httpserver.expect_request(ESP[name][0]).respond_with_data("down", status=503)
    with pytest.raises(TransportError) as caught:
        esp(name).send_batch(ENVELOPE, [recipient(0)])
    assert caught.value.transient and caught.value.status == 503 and caught.value.body == "down"
    assert len(requests_made(httpserver)) == 3
    assert esp.sleeps == sorted(esp.sleeps) and max(esp.sleeps) <= 0.04  # capped, growing


@pytest.mark.parametrize("name", list(ESP))
@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_is_ambiguous_and_never_repeated(esp, httpserver, name, status):
    # The API behind the gateway may have taken the batch: a retry could send it twice.
    httpserver.expect_request(ESP[name][0]).respond_with_data("<html>Bad Gateway</html>",
                                                              status=status)
    with pytest.raises(TransportError, match="may or may not") as caught:
        esp(name).send_batch(ENVELOPE, [recipient(0)])
    assert caught.value.ambiguous and not caught.value.transient
    assert len(requests_made(httpserver)) == 1 and esp.sleeps == []


@pytest.mark.parametrize("name", list(ESP))
def test_the_providers_own_500_is_retried_a_few_times_then_ambiguous(esp, httpserver, name):
    queue = [Response("oops", 500)]
    path, ok, _ = ESP[name]
    httpserver.expect_request(path).respond_with_handler(
        lambda request: queue.pop(0) if queue else ok(request))
    assert esp(name).send_batch(ENVELOPE, [recipient(0)])[0].status == "queued"
    httpserver.clear()
    httpserver.expect_request(path).respond_with_data("oops", status=500)
    with pytest.raises(TransportError, match="HTTP 500") as caught:
        esp(name).send_batch(ENVELOPE, [recipient(0)])
    assert caught.value.ambiguous
    assert len(requests_made(httpserver)) == 3  # MAX_500, then parked `unknown`


@pytest.mark.parametrize("name", list(ESP))
@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_stops_at_once(esp, httpserver, name, status):
    path, _, _ = ESP[name]
    httpserver.expect_request(path).respond_with_json({"ErrorCode": 10, "Message": "Bad key"},
                                                      status=status)
    with pytest.raises(AuthRefused, match=f"{name} refused the API key") as caught:
        esp(name).send_batch(ENVELOPE, [recipient(0)])
    assert "Bad key" in str(caught.value)
    assert len(requests_made(httpserver)) == 1 and esp.sleeps == []


@pytest.mark.parametrize("status", [400, 422])
def test_bad_requests_are_not_retried(esp, httpserver, status):
    httpserver.expect_request("/email/batch").respond_with_json(
        {"ErrorCode": 300, "Message": "Invalid 'From' address"}, status=status)
    with pytest.raises(TransportError, match="Invalid 'From' address") as caught:
        esp("postmark").send_batch(ENVELOPE, [recipient(0)])
    assert not caught.value.transient and caught.value.status == status
    assert len(requests_made(httpserver)) == 1


def test_mailgun_magnificent_api_means_a_wrong_url(esp, httpserver):
    httpserver.expect_request(ESP["mailgun"][0]).respond_with_data(
        "Mailgun Magnificent API", status=200)
    with pytest.raises(TransportError, match="NEWSLETTER_MAILGUN_DOMAIN"):
        esp("mailgun").send_batch(ENVELOPE, [recipient(0)])


@pytest.mark.parametrize(("name", "body"), [
    ("postmark", "<html>proxy error page</html>"), ("postmark", '{"not": "a list"}'),
    ("mailgun", '{"message": "no id"}'), ("mailgun", "[]"),
])
def test_odd_answers_become_one_error_not_a_traceback(esp, httpserver, name, body):
    httpserver.expect_request(ESP[name][0]).respond_with_data(body, status=200)
    with pytest.raises(NewsletterError, match=name):
        esp(name).send_batch(ENVELOPE, [recipient(0)])


def test_an_answer_that_never_comes_is_ambiguous_and_not_repeated(esp, httpserver):
    calls = []

    def slow(request: Request) -> Response:
        calls.append(request)
        time.sleep(1.0)
        return Response(status=202)

    httpserver.expect_request(ESP["sendgrid"][0]).respond_with_handler(slow)
    with pytest.raises(TransportError, match="may or may not have been accepted") as caught:
        esp("sendgrid", esp_timeout=0.3).send_batch(ENVELOPE, [recipient(0)])
    assert caught.value.ambiguous and not caught.value.transient
    assert len(calls) == 1


def test_no_server_is_retried_then_transient(make_settings):
    settings = make_settings(transport="postmark", esp_api_key="k",
                             esp_api_url=f"http://127.0.0.1:{free_port()}")
    sleeps: list[float] = []
    transport = PostmarkTransport(settings, backoff_base=0.01, backoff_cap=0.02,
                                  max_attempts=3, sleep=sleeps.append)
    with pytest.raises(TransportError, match="cannot connect") as caught, transport:
        transport.send_batch(ENVELOPE, [recipient(0)])
    assert caught.value.transient and not caught.value.ambiguous
    assert len(sleeps) == 2


def test_retry_waits_never_outlive_the_claims_lease(esp, httpserver):
    path, _ok, _ = ESP["sendgrid"]
    httpserver.expect_request(path, method="POST").respond_with_handler(
        answer(Response("slow down", 429, headers={"Retry-After": "100"})))
    with pytest.raises(TransportError, match="gave up after 1 attempts") as caught:
        esp("sendgrid", lease_seconds=60).send_batch(ENVELOPE, [recipient(0)])
    assert caught.value.transient and esp.sleeps == []  # 100 s > half the 60 s lease
