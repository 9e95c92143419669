"""Subscribers from the command line: CSV import with every refusal reported, safe export."""

import csv
import io

from newsletter.store.models import SubscriberStatus


def test_csv_imports_valid_people_and_reports_the_rest(cli, tmp_path):
    cli("subscribers", "add", "Known@Example.com", "--confirmed")
    cli("subscribers", "add", "gone@example.com", "--confirmed")
    cli("subscribers", "remove", "GONE@example.com")
    rows = [
        "email,name",
        "ada@example.com,Ada Lovelace",
        "not-an-address,Nobody",
        "ADA@example.com,Ada again",
        "known@example.com,Known",
        "gone@example.com,Back again",
        "  zoe@bücher.example  ,Zoë",
        'eve@example.com,"=HYPERLINK(""http://evil.example"")"',
        ",empty",
        "x@example.com,\"Line\r\nBreak\"",
        "jöhn@example.com,No SMTPUTF8",
    ]
    path = tmp_path / "people.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = cli("subscribers", "import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "imported 4, refused 6" in result.stdout
    errors = result.stderr
    assert "row 3: 'not-an-address'" in errors
    assert "row 4: 'ADA@example.com': duplicate of row 2" in errors
    assert "row 5: 'known@example.com': already a subscriber (confirmed)" in errors
    assert "row 6: 'gone@example.com': suppressed (removed)" in errors
    assert "row 9: '': the email address is empty" in errors
    assert "row 11: 'jöhn@example.com'" in errors and "before the @-sign" in errors

    export = cli("subscribers", "export").stdout
    table = list(csv.DictReader(io.StringIO(export)))
    by_email = {r["email"]: r for r in table}
    assert set(by_email) == {"Known@example.com", "ada@example.com", "zoe@bücher.example",
                             "eve@example.com", "x@example.com"}
    assert by_email["eve@example.com"]["name"].startswith("'=HYPERLINK")
    assert by_email["x@example.com"]["name"] == "Line Break"  # no control characters kept
    assert all(r["status"] == SubscriberStatus.CONFIRMED for r in table)


def test_add_twice_any_case_is_refused(cli):
    assert cli("subscribers", "add", "Mo@Example.com", "--name", "Mo").exit_code == 0
    result = cli("subscribers", "add", "mo@example.COM")
    assert result.exit_code == 1
    assert "already a subscriber (pending)" in result.stderr


def test_export_to_file_and_remove(cli, tmp_path):
    cli("subscribers", "add", "a@example.com", "--confirmed")
    out = tmp_path / "out.csv"
    assert cli("subscribers", "export", str(out)).exit_code == 0
    assert out.read_text().splitlines()[0].startswith("email,name,status")
    assert "removed a@example.com" in cli("subscribers", "remove", "A@example.com").output
    assert cli("subscribers", "remove", "a@example.com").exit_code == 1
    refused = cli("subscribers", "add", "a@example.com", "--confirmed")
    assert refused.exit_code == 1 and "suppressed" in refused.stderr


def test_not_utf8_csv_is_refused_whole(cli, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("email\nok@example.com\nzoë@example.com\n".encode("latin-1"))
    result = cli("subscribers", "import", str(path))
    assert result.exit_code == 1 and "line 3: not UTF-8" in result.stderr
    assert "ok@example.com" not in cli("subscribers", "export").stdout


def test_list_by_status(cli):
    cli("subscribers", "add", "yes@example.com", "--confirmed")
    cli("subscribers", "add", "maybe@example.com")
    listed = cli("subscribers", "list", "--status", "pending")
    assert listed.stdout == "maybe@example.com\tpending\t\n"
    assert "1 confirmed, 1 pending" in listed.stderr
