"""``cheesechaser-tui query`` and ``download --where`` over real HTTP against the loopback Hub, with
the table found in the repo, named by ``--metadata hf://...`` (another repo, a revision) or a local
file; captions for every downloaded image; one-line errors."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from app.hub.dataset import build_repo

ROOT = Path(__file__).resolve().parents[3]

# id -> (rating, score, general tags, artist); ids >= 900 are in the table but in no archive
POSTS = {
    101: ("g", 12, "cat_ears solo 1girl", "artist_a"),
    102: ("s", 40, "cat_ears comic", "artist_b"),
    103: ("e", 90, "cat_ears solo", "artist_a"),
    104: ("g", 3, "dog solo", "artist_c"),
    205: ("g", 55, "cat_ears solo hat", "artist_b"),
    306: ("q", 11, "ribbon", "artist_a"),
    901: ("g", 70, "cat_ears solo", "artist_a"),
    902: ("s", 20, "cat_ears", "artist_c"),
}
HELD = [rid for rid in POSTS if rid < 900]


def _parquet(path: Path, posts=POSTS) -> bytes:
    con = duckdb.connect()
    con.execute("CREATE TABLE posts (id BIGINT, rating VARCHAR, score INTEGER, image_width INTEGER, "
                "image_height INTEGER, file_ext VARCHAR, tag_string_general VARCHAR, tag_string_artist VARCHAR)")
    for rid, (rating, score, tags, artist) in posts.items():
        con.execute("INSERT INTO posts VALUES (?, ?, ?, ?, ?, 'bin', ?, ?)",
                    [rid, rating, score, 1000 + rid, 800, tags, artist])
    con.execute(f"COPY posts TO '{path}'")
    return path.read_bytes()


def _resources(ids):
    return {rid: {f"{rid}.bin": random.Random(rid).randbytes(1500)} for rid in ids}


@pytest.fixture
def repo(hub, hub_root, tmp_path):
    """``t/tagged``: archives of HELD at base level 2, ``metadata.parquet`` at its root."""
    table = _parquet(tmp_path / "posts.parquet")
    return build_repo(hub_root, "t/tagged", _resources(HELD), base_level=2,
                      repo_files={"metadata.parquet": table})


def _env(tmp_path, hub):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(ROOT))
    return env


def _cli(args, tmp_path, hub):
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, text=True, env=_env(tmp_path, hub),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


def _one_line_error(out, code=2):
    assert out.returncode == code, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_query_finds_the_repo_table(repo, hub, tmp_path):
    out = _cli(["query", "t/tagged", "cat_ears solo -rating:e"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["101", "205", "901"]
    assert "3 posts match" in out.stderr
    count = _cli(["query", "t/tagged", "cat_ears", "--count"], tmp_path, hub)
    assert count.stdout.strip() == "6"
    gets = hub.data_gets("metadata.parquet")  # the GETs that carried its bytes (the 302 to the CDN left out)
    assert len(gets) == 1  # fetched once into the cache; the second run read it from there


def test_query_formats_limit_order_sample(repo, hub, tmp_path):
    csv_out = _cli(["query", "t/tagged", "solo", "--format", "csv"], tmp_path, hub)
    lines = csv_out.stdout.splitlines()
    assert lines[0] == "id,rating,score,width,height,ext,date,tags"
    assert lines[1] == "101,g,12,1101,800,bin,,cat_ears solo 1girl artist_a"
    assert len(lines) == 1 + 5
    top = _cli(["query", "t/tagged", "cat_ears", "--format", "jsonl", "--limit", "2", "--order", "score:desc"],
               tmp_path, hub)
    records = [json.loads(line) for line in top.stdout.splitlines()]
    assert [r["id"] for r in records] == [103, 901]
    assert records[0]["tags"] == ["cat_ears", "solo", "artist_a"]
    a = _cli(["query", "t/tagged", "", "--sample", "3", "--seed", "7"], tmp_path, hub).stdout.split()
    b = _cli(["query", "t/tagged", "", "--sample", "3", "--seed", "7"], tmp_path, hub).stdout.split()
    assert a == b and len(a) == 3 and set(a) <= {str(r) for r in POSTS}
    sql = _cli(["query", "t/tagged", "cat_ears", "--sql", "score >= 40 AND rating <> 'e'"], tmp_path, hub)
    assert sql.stdout.split() == ["102", "205", "901"]


def test_query_with_a_table_in_another_repo_at_a_revision(hub, hub_root, tmp_path):
    build_repo(hub_root, "t/plain", _resources(HELD), base_level=2)
    other = {rid: p for rid, p in POSTS.items() if rid != 205}
    build_repo(hub_root, "t/meta", {}, repo_files={"tables/posts.parquet": _parquet(tmp_path / "o.parquet", other)})
    url = "hf://datasets/t/meta/tables/posts.parquet@main"
    out = _cli(["query", "t/plain", "cat_ears solo", "--metadata", url], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["101", "103", "901"]
    glob = _cli(["query", "t/plain", "cat_ears solo", "--metadata", "hf://datasets/t/meta/tables/*.parquet"],
                tmp_path, hub)
    assert glob.stdout.split() == ["101", "103", "901"]
    none = _cli(["query", "t/plain", "cat_ears"], tmp_path, hub)
    assert "no metadata table found in t/plain" in _one_line_error(none)
    missing = _cli(["query", "t/plain", "x", "--metadata", "hf://datasets/t/meta/nope.parquet"], tmp_path, hub)
    assert "nope.parquet" in _one_line_error(missing)


def test_download_where_with_captions(repo, hub, tmp_path):
    dst = tmp_path / "out"
    out = _cli(["download", "t/tagged", "--where", "cat_ears -comic", "--base-level", "2", "-o", str(dst),
                "--captions", "txt", "--workers", "3"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    matched = [101, 103, 205, 901, 902]
    held = [rid for rid in matched if rid in HELD]
    assert sorted(p.name for p in dst.iterdir()) == sorted([f"{r}.bin" for r in held] + [f"{r}.txt" for r in held])
    for rid in held:
        rating, score, tags, artist = POSTS[rid]
        assert (dst / f"{rid}.txt").read_text() == ", ".join([artist, *tags.split()]) + "\n"
        assert (dst / f"{rid}.bin").read_bytes() == random.Random(rid).randbytes(1500)
    assert "5 posts match" in out.stderr
    assert "missing (in no archive): 901-902" in out.stderr
    assert f"{len(held)} captions written" in out.stderr
    # a rerun: nothing fetched again, captions still there (rewritten from the table)
    again = _cli(["download", "t/tagged", "--where", "cat_ears -comic", "--base-level", "2", "-o", str(dst),
                  "--captions", "json"], tmp_path, hub)
    assert "0 downloaded, 3 already present" in again.stderr
    record = json.loads((dst / "205.tags.json").read_text())
    assert record["id"] == 205 and record["tags"]["general"] == ["cat_ears", "solo", "hat"]
    assert record["caption"] == "artist_b, cat_ears, solo, hat"


def test_download_where_and_ids_is_the_intersection(repo, hub, tmp_path):
    dst = tmp_path / "out"
    out = _cli(["download", "t/tagged", "100-199", "--where", "solo", "--base-level", "2", "-o", str(dst)],
               tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in dst.iterdir()) == ["101.bin", "103.bin", "104.bin"]


def test_download_with_a_local_table_limit_and_sample(repo, hub, tmp_path):
    local = tmp_path / "mine.parquet"
    _parquet(local, {rid: ("g", 1, "x", "a") for rid in (101, 102, 104, 306)})
    dst = tmp_path / "out"
    out = _cli(["download", "t/tagged", "--where", "x", "--metadata", str(local), "--limit", "3",
                "--base-level", "2", "-o", str(dst)], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in dst.iterdir()) == ["101.bin", "102.bin", "104.bin"]
    sampled = tmp_path / "sampled"
    out = _cli(["download", "t/tagged", "--where", "x", "--metadata", str(local), "--sample", "2", "--seed", "3",
                "--base-level", "2", "-o", str(sampled)], tmp_path, hub)
    assert out.returncode == 0 and len(list(sampled.iterdir())) == 2


@pytest.mark.parametrize("args,message", [
    (["--where", "score:>=abc"], "at 'score:>=abc' (column 1)"),
    (["--where", "cat", "--sql", "1=1; DROP TABLE posts"], "';' is not allowed"),
    (["--where", "cat", "--sql", "id IN (SELECT 1)"], "subquery"),
    (["--where", "cat", "--metadata", "/nonexistent/x.parquet"], "no such table file"),
    (["--where", "cat", "--metadata", "hf://models/a/b/x.parquet"], "only dataset repos"),
    (["--where", "cat", "--columns", "width"], "FIELD=COLUMN"),
    (["--where", "cat", "--limit", "-1"], "must not be negative"),
    (["--where", "cat", "--order", "score:sideways", "--limit", "1"], "COLUMN:desc"),
    ([], "give IDS, --ids-from FILE, or --where"),
])
def test_download_usage_errors_are_one_line(repo, hub, tmp_path, args, message):
    dst = tmp_path / "out"
    out = _cli(["download", "t/tagged", *args, "--base-level", "2", "-o", str(dst)], tmp_path, hub)
    assert message in _one_line_error(out)
    assert not any(p.suffix == ".bin" for p in dst.glob("*")) if dst.exists() else True


def test_remote_strings_are_escaped_in_csv(hub, hub_root, tmp_path):
    evil = {7: ("g", 1, "a \x1b[31mred\x1b[0m \u202egnp.exe", "x")}
    build_repo(hub_root, "t/evil", _resources([7]), base_level=2,
               repo_files={"metadata.parquet": _parquet(tmp_path / "e.parquet", evil)})
    out = _cli(["query", "t/evil", "a", "--format", "csv"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\u202e" not in out.stdout
    assert "\\x1b[31mred" in out.stdout and "\\u202e" in out.stdout
    jsonl = _cli(["query", "t/evil", "a", "--format", "jsonl"], tmp_path, hub)
    assert "\x1b" not in jsonl.stdout and json.loads(jsonl.stdout)["tags"][1] == "\x1b[31mred\x1b[0m"


def test_query_from_the_tables_copy_gives_the_same_answers(repo, hub, tmp_path):
    env = dict(_env(tmp_path, hub), CHEESECHASER_TABLE_COPY="always", XDG_CACHE_HOME=str(tmp_path / "xdg"))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, text=True, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    out = run("query", "t/tagged", "cat_ears solo -rating:e")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["101", "205", "901"]
    copies = list((tmp_path / "xdg" / "cheesechaser-tui" / "tables").iterdir())
    assert [p.suffix for p in copies] == [".duckdb"]
    again = run("query", "t/tagged", "cat_* artist:artist_a", "--format", "csv")
    assert again.stdout.splitlines()[1:] == ["101,g,12,1101,800,bin,,cat_ears solo 1girl artist_a",
                                             "103,e,90,1103,800,bin,,cat_ears solo artist_a",
                                             "901,g,70,1901,800,bin,,cat_ears solo artist_a"]
    assert list((tmp_path / "xdg" / "cheesechaser-tui" / "tables").iterdir()) == copies  # reused


def test_csv_quotes_tag_text_and_never_writes_control_characters(hub, hub_root, tmp_path):
    import csv
    import io
    tricky = {8: ("g", 1, 'a b,c say_"hi" line\nbreak =cmd|x\r', "y")}
    build_repo(hub_root, "t/tricky", _resources([8]), base_level=2,
               repo_files={"metadata.parquet": _parquet(tmp_path / "t.parquet", tricky)})
    out = _cli(["query", "t/tricky", "a", "--format", "csv"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert not any(ch in out.stdout for ch in "\r\x00") and out.stdout.count("\n") == 2  # header + one row
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert len(rows) == 2 and len(rows[1]) == 8
    assert rows[1][7] == 'a b,c say_"hi" line\\x0abreak =cmd|x\\x0d y'


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_as_text(hub, hub_root, tmp_path):
    import csv
    import io
    evil = {9: ("g", -3, '=HYPERLINK("http://x.invalid","click") solo', "z"),
            10: ("g", 5, "@SUM(1+1) +cmd|calc -2+3", "z"), 11: ("s", 1, "solo =not_first", "z")}
    build_repo(hub_root, "t/formula", _resources([9, 10, 11]), base_level=2,
               repo_files={"metadata.parquet": _parquet(tmp_path / "f.parquet", evil)})
    out = _cli(["query", "t/formula", "id:9..11", "--format", "csv"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    rows = {int(r[0]): r for r in list(csv.reader(io.StringIO(out.stdout)))[1:]}
    assert rows[9][7] == '\'=HYPERLINK("http://x.invalid","click") solo z'
    assert rows[10][7] == "'@SUM(1+1) +cmd|calc -2+3 z"
    assert rows[11][7] == "solo =not_first z"  # only a cell's first character makes a formula
    assert rows[9][2] == "-3"  # numbers stay numbers


def test_sample_and_limit_pick_among_the_matches_an_archive_holds(repo, hub, tmp_path):
    """A table lists posts no archive holds (a partial mirror): ``--sample 3`` / ``--limit 3`` still
    bring 3 files, and say how many matches were in no archive (they brought fewer before)."""
    local = tmp_path / "mine.parquet"
    held, absent = [101, 102, 104], [150, 160, 170, 180, 190, 195]
    _parquet(local, {rid: ("g", 1, "x", "a") for rid in held + absent})
    for how in (["--sample", "3", "--seed", "5"], ["--limit", "3", "--order", "id:desc"]):
        dst = tmp_path / "-".join(how)
        out = _cli(["download", "t/tagged", "--where", "x", "--metadata", str(local), *how,
                    "--base-level", "2", "-o", str(dst)], tmp_path, hub)
        assert out.returncode == 0, out.stderr
        assert sorted(p.name for p in dst.iterdir()) == ["101.bin", "102.bin", "104.bin"], how
        assert "3 picked of 9 matching posts" in out.stderr and "in no archive" in out.stderr


def test_query_by_a_preset_or_class_name_reads_that_datasets_repo(hub, hub_root, tmp_path):
    """``--dataset rule34`` and ``--dataset Rule34DataPool`` stand for deepghs/rule34_full: the one
    positional is then the query."""
    table = _parquet(tmp_path / "posts.parquet")
    build_repo(hub_root, "deepghs/rule34_full", _resources(HELD), repo_files={"metadata.parquet": table})
    for name in ("rule34", "Rule34DataPool"):
        out = _cli(["query", "--dataset", name, "cat_ears solo -rating:e"], tmp_path, hub)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["101", "205", "901"]
    both = _cli(["query", "deepghs/rule34_full", "solo", "--dataset", "rule34", "--count"], tmp_path, hub)
    assert both.returncode == 0 and both.stdout.strip() == "5"
    assert "rule34_full" in _one_line_error(_cli(["query", "t/other", "solo", "--dataset", "rule34"], tmp_path, hub))
    assert "more than one repo" in _one_line_error(
        _cli(["query", "--dataset", "DanbooruNewestDataPool", "solo"], tmp_path, hub))
    assert "no preset" in _one_line_error(_cli(["query", "--dataset", "nope", "solo"], tmp_path, hub))
    assert "REPO" in _one_line_error(_cli(["query"], tmp_path, hub))


def test_a_query_may_start_with_a_negated_term_and_follow_the_options(repo, hub, tmp_path):
    """``-rating:g`` is a query term, not an option (argparse took it for one)."""
    out = _cli(["query", "t/tagged", "-rating:g"], tmp_path, hub)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["102", "103", "306", "902"]
    after = _cli(["query", "t/tagged", "--count", "-rating:g", "cat_ears"], tmp_path, hub)
    assert after.returncode == 0 and after.stdout.strip() == "3", after.stderr  # 102, 103, 902
    where = _cli(["download", "t/tagged", "--where", "-comic", "--limit", "2", "--base-level", "2", "-o", str(tmp_path / "o")],
                 tmp_path, hub)
    assert where.returncode == 0, where.stderr
    assert sorted(p.name for p in (tmp_path / "o").glob("*.bin")) == ["101.bin", "103.bin"]
    typo = _cli(["query", "t/tagged", "--cuont"], tmp_path, hub)
    assert typo.returncode == 2 and "--cuont" in typo.stderr  # a mistyped option is still an error


def test_a_metadata_table_past_the_cap_is_refused_without_retries(hub, hub_root, tmp_path):
    """A hostile repo's 1.5 GB table was fetched 6 times over: now the size is checked before (the
    listing) or as it comes (Content-Length), and never retried."""
    con = duckdb.connect()
    path = tmp_path / "big.parquet"
    con.execute(f"COPY (SELECT i AS id, md5(CAST(i AS VARCHAR)) AS tag_string_general FROM range(200000) t(i)) "
                f"TO '{path}' (COMPRESSION uncompressed)")
    table = path.read_bytes()
    assert len(table) > 2 * 1024 * 1024
    build_repo(hub_root, "t/bigtable", _resources([1]), base_level=2,
               repo_files={"metadata.parquet": table, "meta/part-0.parquet": table})
    for extra in ([], ["--metadata", "hf://datasets/t/bigtable/meta/*.parquet"]):
        hub.clear_log()
        out = _cli(["query", "t/bigtable", "x", "--max-table-gb", "0.001", *extra], tmp_path, hub)
        line = _one_line_error(out, code=2)
        assert "more than the 1,073,741 allowed" in line or "past the 1,073,741 bytes" in line, line
        assert len([r for r in hub.request_log if r.path.endswith(".parquet") and r.method == "GET"]) <= 2
