"""Settings: environment over .env, every bad value named at start-up."""

import datetime as dt

import pytest

from newsletter.errors import ConfigError
from newsletter.settings import load_settings


def test_defaults_match_the_contract(env, monkeypatch):
    for key in env:
        monkeypatch.delenv(key)
    s = load_settings()
    assert s.database_url == "sqlite:///newsletter.db"
    assert s.transport == "outbox" and s.smtp_port == 25 and s.smtp_security == "none"
    assert s.sender == "The Daily Spin <news@localhost>"
    assert s.send_time == dt.time(6, 0) and s.timezone == "UTC"
    assert s.size_budget_kb == 100 and s.rate_limit == 0


def test_environment_wins_over_dotenv(env, tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("NEWSLETTER_SMTP_PORT=2525\nNEWSLETTER_TIMEZONE=Europe/Paris\n"
                                   "NEWSLETTER_TEST_RECIPIENTS= a@example.com, B@example.org\n")
    monkeypatch.setenv("NEWSLETTER_SMTP_PORT", "587")
    s = load_settings()
    assert s.smtp_port == 587 and s.timezone == "Europe/Paris"
    assert s.test_recipient_list == ["a@example.com", "B@example.org"]


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("NEWSLETTER_SMTP_PORT", "abc", "NEWSLETTER_SMTP_PORT"),
    ("NEWSLETTER_TRANSPORT", "pigeon", "NEWSLETTER_TRANSPORT"),
    ("NEWSLETTER_SEND_TIME", "25:99", "NEWSLETTER_SEND_TIME: expected a 24-hour time"),
    ("NEWSLETTER_TIMEZONE", "Mars/Olympus", "NEWSLETTER_TIMEZONE: expected an IANA"),
    ("NEWSLETTER_BASE_URL", "ftp://x", "NEWSLETTER_BASE_URL: expected an http"),
    ("NEWSLETTER_FROM", "nobody", "NEWSLETTER_FROM"),
    ("NEWSLETTER_TEST_RECIPIENTS", "a@example.com,oops", "NEWSLETTER_TEST_RECIPIENTS"),
    ("NEWSLETTER_RATE_LIMIT", "-1", "NEWSLETTER_RATE_LIMIT"),
    ("NEWSLETTER_BOUNCE_ADDRESS", "bounces+x@example.org", "NEWSLETTER_BOUNCE_ADDRESS: "
                                                           "expected a plain address"),
    ("NEWSLETTER_BOUNCE_IMAP_URL", "pop3://u:p@host/", "NEWSLETTER_BOUNCE_IMAP_URL: expected"),
    ("NEWSLETTER_BOUNCE_FETCH_MINUTES", "5", "needs NEWSLETTER_BOUNCE_IMAP_URL"),
    ("NEWSLETTER_SOFT_BOUNCE_LIMIT", "0", "NEWSLETTER_SOFT_BOUNCE_LIMIT"),
    ("NEWSLETTER_SIGNUP_RATE_LIMIT", "lots", "NEWSLETTER_SIGNUP_RATE_LIMIT: expected a rate"),
])
def test_bad_values_name_the_variable(env, monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=expected):
        load_settings()


def test_the_default_rate_limit_left_unparsed_is_one_flask_limiter_accepts():
    from limits import parse_many

    from newsletter.settings import Settings

    assert parse_many(Settings.model_fields["signup_rate_limit"].default)


def test_secrets_are_not_echoed(env, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_BOUNCE_IMAP_URL", "https://user:hunter2@host/")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    monkeypatch.delenv("NEWSLETTER_BOUNCE_IMAP_URL")
    monkeypatch.setenv("NEWSLETTER_DKIM_DOMAIN", "example.org")
    with pytest.raises(ConfigError, match="go together"):
        load_settings()


def test_unknown_setting_in_dotenv_is_named(env, tmp_path):
    (tmp_path / ".env").write_text("NEWSLETTER_SMTP_HOTS=mail\n")
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_HOTS: unknown setting"):
        load_settings()


def test_a_bad_setting_stops_the_cli_with_one_line(cli, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SMTP_PORT", "seventy")
    result = cli("stories", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: bad setting: NEWSLETTER_SMTP_PORT")
    assert "Traceback" not in result.output


def test_env_example_lists_every_setting_and_loads(env, tmp_path):
    from pathlib import Path

    from newsletter.settings import PREFIX, Settings

    example = (Path(__file__).parent.parent / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias or PREFIX + name.upper()
        assert variable in example, f"{variable} missing from .env.example"
    (tmp_path / ".env").write_text(example)
    load_settings()  # the example itself is valid
