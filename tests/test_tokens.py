"""Tokens that age and keys that rotate: unsubscribe links work for years, preferences
links expire (and offer a fresh one by email), old keys keep verifying while new tokens
use the current one."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from newsletter.mail.links import BadToken, ExpiredLink, Links
from subscribers import service
from subscribers.web import create_app
from tests.test_web_signup import drain
from tests.webapp import csrf_token, link, outbox, sessions

OLD, NEW = "old-secret-key-0123456789", "new-secret-key-9876543210"


def keys(settings, current: str, fallbacks: str = ""):
    return settings.model_copy(update={"secret_key": current, "secret_key_fallbacks": fallbacks})


def test_rotation_old_tokens_verify_new_ones_use_the_current_key(settings):
    before = Links(keys(settings, OLD))
    unsubscribe, manage = before.unsubscribe_token(7), before.manage_token(7)
    confirm = before.confirm_token(7, 3)

    rotated = Links(keys(settings, NEW, f" {OLD} , another-old-key"))
    assert rotated.read_unsubscribe(unsubscribe) == 7
    assert rotated.read_manage(manage) == 7
    assert rotated.read_confirm(confirm)[0::2] == (7, 3)

    fresh = rotated.unsubscribe_token(7)
    assert Links(keys(settings, NEW)).read_unsubscribe(fresh) == 7  # signed with NEW
    with pytest.raises(BadToken):
        Links(keys(settings, OLD)).read_unsubscribe(fresh)
    with pytest.raises(BadToken):  # the old key dropped from the fallbacks: its links die
        Links(keys(settings, NEW)).read_unsubscribe(unsubscribe)


@time_machine.travel(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), tick=False)
def test_tokens_are_the_ones_itsdangerous_makes_for_every_id_size(settings):
    # Links mints these itself, for speed: the bytes must stay the library's own, or
    # links already mailed would stop working.
    from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

    links = Links(settings)
    stock = URLSafeSerializer([settings.secret_key], salt="manage")
    timed = URLSafeTimedSerializer([settings.secret_key], salt="preferences")
    for subscriber_id in [0, 1, 9, 10, 99, 12345, 10**9 - 1, 10**9, 10**10, 10**12, 2**63 - 1]:
        assert links.unsubscribe_token(subscriber_id) == stock.dumps(subscriber_id)
        assert links.manage_token(subscriber_id) == timed.dumps(subscriber_id)
        assert links.read_unsubscribe(stock.dumps(subscriber_id)) == subscriber_id


def test_unsubscribe_links_outlive_a_year_and_preferences_links_expire(settings):
    links = Links(settings)
    start = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        unsubscribe, manage = links.unsubscribe_token(5), links.manage_token(5)
    with time_machine.travel(start + dt.timedelta(days=29, hours=23), tick=False):
        assert links.read_manage(manage) == 5
    with time_machine.travel(start + dt.timedelta(days=30, hours=1), tick=False):
        with pytest.raises(ExpiredLink, match="30 days"):
            links.read_manage(manage)
        assert links.read_for_renewal(manage) == 5
    with time_machine.travel(start + dt.timedelta(days=3 * 365), tick=False):
        assert links.read_unsubscribe(unsubscribe) == 5
    shorter = Links(settings.model_copy(update={"manage_token_days": 2}))
    with time_machine.travel(start + dt.timedelta(days=3), tick=False), \
            pytest.raises(ExpiredLink):
        shorter.read_manage(manage)


def test_an_expired_preferences_link_offers_a_fresh_one_by_email(settings):
    with sessions(settings).begin() as session:
        reader = service.add(session, "reader@example.org", confirmed=True).id
    client = create_app(settings).test_client()
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(days=31)):
        old = Links(settings).manage_token(reader)
    url = f"/preferences/{old}"
    page = client.get(url)
    assert page.status_code == 410 and "expired" in page.text
    assert client.get(f"{url}/data.json").status_code == 410  # no data from an old link
    assert outbox(settings) == []

    renew = f"{url}/renew"
    answer = client.post(renew, data={"csrf_token": csrf_token(client, "/subscribe")})
    assert answer.status_code == 200 and "fresh link" in answer.text
    assert outbox(settings) == []  # queued, not sent by the request
    assert drain(settings)["sent"] == 1
    [mail] = outbox(settings)
    assert mail["To"].addresses[0].addr_spec == "reader@example.org"
    fresh = link(mail, settings, "preferences")
    assert client.get(fresh).status_code == 200
    assert client.post("/preferences/forged/renew",
                       data={"csrf_token": csrf_token(client, "/subscribe")}).status_code == 400


def test_the_web_app_accepts_tokens_signed_with_a_fallback_key(settings):
    with sessions(settings).begin() as session:
        reader = service.add(session, "reader@example.org", confirmed=True).id
    old = Links(keys(settings, OLD))
    client = create_app(keys(settings, NEW, OLD)).test_client()
    assert client.get(f"/preferences/{old.manage_token(reader)}").status_code == 200
    assert client.get(f"/unsubscribe/{old.unsubscribe_token(reader)}").status_code == 200
    alone = create_app(keys(settings, NEW)).test_client()
    assert alone.get(f"/unsubscribe/{old.unsubscribe_token(reader)}").status_code == 400


def test_a_bad_fallback_or_limit_setting_names_the_variable(make_settings):
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="NEWSLETTER_SIGNUP_RATE_LIMIT"):
        make_settings(signup_rate_limit="lots")
    with pytest.raises(ConfigError, match="NEWSLETTER_MANAGE_TOKEN_DAYS"):
        make_settings(manage_token_days=0)
    with pytest.raises(ConfigError, match="NEWSLETTER_REDIS_URL"):
        make_settings(redis_url="http://127.0.0.1:6379")
