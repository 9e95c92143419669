"""`newsletter stories import/list/export` on SQLite and PostgreSQL: exact round trip, all or
nothing."""

import json

from newsletter.store.db import make_engine, session_factory
from newsletter.stories.imports import load_day
from newsletter.stories.parse import parse_file
from tests.conftest import SAMPLES, SEED
from tests.test_story_parser import FIVE

DAY = "2026-11-25"


def stored(env, day=DAY):
    import datetime as dt

    engine = make_engine(env["NEWSLETTER_DATABASE_URL"])
    try:
        with session_factory(engine)() as session:
            return load_day(session, dt.date.fromisoformat(day))
    finally:
        engine.dispose()


def test_import_and_list_keep_every_character(cli, env, tmp_path):
    awkward = FIVE.replace("A bridge at last.", "<b>&amp;</b> {{ x }} {% y %} %recipient.n% "
                           "*|UNSUB|* مرحبا שלום 😀").replace("\n", "\r\n")
    (tmp_path / "awkward.txt").write_bytes(b"\xef\xbb\xbf" + awkward.encode())
    result = cli("stories", "import", str(SEED), str(tmp_path / "awkward.txt"), "--date", DAY)
    assert result.exit_code == 0, result.output
    assert "added" in result.output
    stories = stored(env)
    assert stories[0] == parse_file("x", SEED.read_bytes())[0]
    assert stories[1].narratives[0].text.startswith("<b>&amp;</b> {{ x }} {% y %}")
    assert "😀" in stories[1].narratives[0].text
    listing = cli("stories", "list", "--date", DAY, "--full").output
    assert listing.index("Israel-Turkey") < listing.index("Five Views")
    assert "*|UNSUB|* مرحبا שלום 😀" in listing


def test_a_bad_file_stops_the_whole_import(cli, env, tmp_path):
    (tmp_path / "a_good.txt").write_text(FIVE)
    (tmp_path / "b_bad.txt").write_text("Title\n\nThe Facts\n\n- fact\n\nThe Spin\n")
    result = cli("stories", "import", str(tmp_path), "--date", DAY)
    assert result.exit_code == 1
    assert "b_bad.txt:8: expected at least one narrative" in result.stderr
    assert "Traceback" not in result.output
    assert stored(env) == []


def test_folders_import_recursively_in_name_order(cli, env, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "2.txt").write_text(FIVE.replace("Five Views", "Second"))
    (tmp_path / "1.txt").write_text(FIVE.replace("Five Views", "First"))
    (tmp_path / "notes.md").write_text("not a story")
    assert cli("stories", "import", str(tmp_path), "--date", DAY).exit_code == 0
    assert [s.title for s in stored(env)] == ["Fictional: First of a Bridge",
                                              "Fictional: Second of a Bridge"]


def test_reimport_replaces_in_place(cli, env, tmp_path):
    assert cli("stories", "import", str(SAMPLES), "--date", DAY).exit_code == 0
    before = [s.title for s in stored(env)]
    fixed = tmp_path / "fix.txt"
    fixed.write_bytes(SEED.read_bytes().replace(b"Narrative B", b"Narrative Bee"))
    result = cli("stories", "import", str(fixed), "--date", DAY)
    assert "replaced" in result.output
    after = stored(env)
    assert [s.title for s in after] == before
    assert after[0].narratives[1].label == "Narrative Bee"


def test_missing_path_and_empty_day(cli):
    result = cli("stories", "import", "/no/such/file.txt")
    assert result.exit_code == 1 and "no such file or folder" in result.stderr
    assert "no stories for 2001-01-01" in cli("stories", "list", "--date", "2001-01-01").output
    assert cli("stories", "list", "--date", "2001-13-01").exit_code == 2


def test_export_writes_files_that_import_reads_back_unchanged(cli, env, tmp_path):
    odd = {"title": "From JSON", "facts": ["one\n- not a second fact"],
           "narratives": [{"label": "Ends like a sentence.", "text": "t"}]}
    (tmp_path / "odd.json").write_text(json.dumps(odd), encoding="utf-8")
    awkward = FIVE.replace("A bridge at last.", "{{ x }} %recipient.n% *|UNSUB|* مرحبا שלום 😀")
    (tmp_path / "awkward.txt").write_text(awkward, encoding="utf-8")
    assert cli("stories", "import", str(SAMPLES), str(tmp_path / "awkward.txt"),
               str(tmp_path / "odd.json"), "--date", DAY).exit_code == 0
    out = tmp_path / "export" / "day"
    result = cli("stories", "export", "--date", DAY, str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names[0] == "01_israel-turkey-relaunch-defense-security-ties.txt"
    assert names[-1] == "10_from-json.json"  # the text format cannot hold it exactly
    assert len(names) == 10 and result.output.count("wrote ") == 10
    assert cli("stories", "import", str(out), "--date", "2026-11-26").exit_code == 0
    assert stored(env, "2026-11-26") == stored(env)


def test_export_refuses_a_folder_with_story_files_and_a_day_without_stories(cli, env,
                                                                            tmp_path):
    assert cli("stories", "import", str(SEED), "--date", DAY).exit_code == 0
    (tmp_path / "old.txt").write_text("an older export")
    result = cli("stories", "export", "--date", DAY, str(tmp_path))
    assert result.exit_code == 1 and "already holds story files (old.txt" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]
    result = cli("stories", "export", "--date", "2001-01-01", str(tmp_path / "new"))
    assert result.exit_code == 1 and "no stories for 2001-01-01" in result.stderr


def test_an_output_path_that_cannot_be_made_is_one_line_not_a_traceback(cli, tmp_path):
    assert cli("stories", "import", str(SEED), "--date", "2026-11-25").exit_code == 0
    (tmp_path / "afile").write_text("")
    result = cli("stories", "export", "--date", "2026-11-25", str(tmp_path / "afile" / "sub"))
    assert result.exit_code == 1 and "Not a directory" in result.stderr
    assert "Traceback" not in result.output
    result = cli("render", "--date", "2026-11-25", "--out", str(tmp_path / "afile" / "x"))
    assert result.exit_code == 1 and "afile" in result.stderr
