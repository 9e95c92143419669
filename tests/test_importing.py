"""The import's speed-ups change no answer: the address fast path agrees with the full
check, and rows are judged the same across chunk boundaries (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError

from newsletter.errors import SubscriberError
from newsletter.settings import check_address
from subscribers import importing
from subscribers.service import parse_address

ADDRESSES = [
    "Reader.One@Example.COM", "o'brien+tag@Example.Org", "a@xn--bcher-kva.example",
    "a@bücher.example", "é@example.com", '"quoted"@example.com', "x@localhost", "x@foo.test",
    "x@example.invalid", "a..b@example.com", ".a@example.com", "a.@example.com",
    "a@-ex.com", "a@ex_ample.com", "x@[1.2.3.4]", "a@b@example.com", "a@example.com.",
    "a" * 64 + "@example.com", "a" * 65 + "@example.com", "x@" + "a" * 250 + ".com",
]


def full(value: str) -> str | None:
    try:
        return check_address(value)
    except EmailNotValidError:
        return None


def fast(value: str) -> str | None:
    try:
        return parse_address(value).email
    except SubscriberError:
        return None


@pytest.mark.parametrize("value", ADDRESSES)
def test_the_fast_path_agrees_with_the_full_check(value):
    assert fast(value) == full(value)


def test_rows_are_judged_the_same_across_chunks(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK", 3)
    assert cli("subscribers", "add", "p4@example.com", "--confirmed").exit_code == 0
    people = tmp_path / "people.csv"
    people.write_text("email,name\n" + "".join(f"p{n}@example.com,P {n}\n" for n in range(10))
                      + "P2@example.com,again\nnot-an-address,x\n")
    result = cli("subscribers", "import", str(people), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "imported 9, refused 3" in result.stdout
    assert result.stderr.splitlines() == [
        f"{people}: row 6: 'p4@example.com': already a subscriber (confirmed)",
        f"{people}: row 12: 'P2@example.com': duplicate of row 4",
        f"{people}: row 13: 'not-an-address': 'not-an-address' is not a valid email "
        "address: An email address must have an @-sign.",
    ]
