"""`newsletter render`: the day's edition as files, on SQLite and PostgreSQL."""

from __future__ import annotations

import struct

import pytest

from tests.conftest import SEED

DAY = "2026-11-25"


def imported(cli, *paths) -> None:
    result = cli("stories", "import", *map(str, paths), "--date", DAY)
    assert result.exit_code == 0, result.output


def test_render_writes_both_parts_with_sample_links(cli, tmp_path):
    imported(cli, SEED)
    out = tmp_path / "out"
    result = cli("render", "--date", DAY, "--out", str(out))
    assert result.exit_code == 0, result.output
    html = (out / "edition.html").read_text(encoding="utf-8")
    text = (out / "edition.txt").read_text(encoding="utf-8")
    assert "Israel-Turkey Relaunch Defense, Security Ties" in html
    assert "Israel-Turkey Relaunch Defense, Security Ties" in text
    assert 'href="https://news.example.org/unsubscribe/SAMPLE"' in html
    assert "Unsubscribe:\nhttps://news.example.org/unsubscribe/SAMPLE" in text
    assert "1 Test Street, Testville" in html and "1 Test Street, Testville" in text
    assert f"{len(html.encode()):,} bytes" in result.output
    assert f"{len(text.encode()):,} bytes" in result.output
    assert "every story in full" in result.output


def test_render_says_when_stories_were_shrunk(cli, tmp_path, monkeypatch):
    imported(cli, SEED)
    monkeypatch.setenv("NEWSLETTER_SIZE_BUDGET_KB", "10")  # one story is ~12 KB
    result = cli("render", "--date", DAY, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert ("the last story was shrunk to title, facts and a link to the web version"
            in result.output)


def test_render_without_stories_is_a_clear_error(cli, tmp_path):
    result = cli("render", "--date", "2026-11-26", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert ("no stories for 2026-11-26; import some with `newsletter stories import PATH"
            in result.output)
    assert not (tmp_path / "out").exists()


@pytest.mark.browser
def test_render_takes_desktop_and_phone_screenshots(cli, tmp_path, chromium_path):
    imported(cli, SEED)
    result = cli("render", "--date", DAY, "--out", str(tmp_path), "--screenshots")
    assert result.exit_code == 0, result.output
    widths = {}
    for name in ("desktop", "phone"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        widths[name], height = struct.unpack(">II", data[16:24])  # the IHDR chunk
        assert height > 800  # the whole page, not one screen
        assert f"{name}.png" in result.output
    assert widths == {"desktop": 1000, "phone": 375}


WARNING = "WARNING newsletter.cli: NEWSLETTER_POSTAL_ADDRESS is not set"


@pytest.mark.parametrize("command", ["render", "send"])
def test_render_and_send_warn_once_without_a_postal_address(cli, tmp_path, monkeypatch,
                                                            command):
    imported(cli, SEED)
    args = ["--out", str(tmp_path / "out")] if command == "render" else []
    with_address = cli(command, "--date", DAY, *args)
    assert with_address.exit_code == 0 and WARNING not in with_address.stderr
    monkeypatch.delenv("NEWSLETTER_POSTAL_ADDRESS")
    result = cli(command, "--date", DAY, *args)
    assert result.exit_code == 0, result.output
    assert result.stderr.count(WARNING) == 1 and "CAN-SPAM" in result.stderr
    assert WARNING not in result.stdout
