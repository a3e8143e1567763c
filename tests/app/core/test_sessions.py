"""The session store (SQLite), id files, id arithmetic, destinations and the layout diagnosis."""

from __future__ import annotations

import io
import os
import sqlite3

import pytest

from app.core.destination import destination_problem
from app.core.diagnose import describe_missing_layout, layout_of
from app.core.idlists import IdFileError, format_ids, parse_id_lines, read_ids, write_ids
from app.core.sessions import SessionStore, default_data_dir, remaining_ids, report_ids
from pools import IdRanges, IncrementIDDataPool, parse_ids


def _add(store, **kw):
    values = dict(name="job", repo="o/r", spec={"repo": "o/r", "base_level": 3}, ids="1-10",
                  n_ids=10, dst_dir="/tmp/x", workers=2)
    values.update(kw)
    return store.add_job(**values)


def test_the_store_lives_where_the_env_says(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEESECHASER_DATA_DIR", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    store = SessionStore()
    assert store.path == tmp_path / "d" / "sessions.sqlite3" and store.path.exists()
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_jobs_are_written_at_once_and_read_back_by_another_connection(tmp_path):
    store = SessionStore(tmp_path)
    jid = _add(store)
    store.update_job(jid, state="running", started=100.0, files=3, bytes=4096)
    # a second process sees every committed change (no transaction left open)
    other = SessionStore(tmp_path)
    record = other.job(jid)
    assert (record.state, record.files, record.bytes, record.owner) == ("running", 3, 4096, os.getpid())
    assert record.pool_spec == {"repo": "o/r", "base_level": 3}
    store.update_job(jid, state="done", finished=110.0, bytes=8192)
    record = other.job(jid)
    assert record.elapsed == 10.0 and record.average_speed == 819.2
    with pytest.raises(KeyError):
        store.update_job(jid, nonsense=1)


def test_unfinished_means_owner_gone_or_interrupted(tmp_path):
    store = SessionStore(tmp_path)
    mine = _add(store)
    gone = _add(store)
    done = _add(store)
    quit_ = _add(store)
    store.update_job(gone, owner=2**22 + 12345, state="running")  # no such pid
    store.update_job(done, owner=2**22 + 12345, state="done")
    store.update_job(quit_, state="running")
    store.mark_interrupted([quit_])
    assert [r.id for r in store.unfinished()] == [gone, quit_]
    assert mine not in [r.id for r in store.unfinished()]  # this process still runs it
    store.claim(gone)
    record = store.job(gone)
    assert record.state == "queued" and record.runs == 2 and record.owner == os.getpid()
    store.forget_unfinished([quit_])
    assert store.job(quit_).state == "cancelled" and store.unfinished() == []
    assert [r.id for r in store.jobs()] == [quit_, done, gone, mine]  # newest first


def test_reports_and_values(tmp_path):
    store = SessionStore(tmp_path)
    jid = _add(store)
    assert store.load_report(jid) is None
    path = store.save_report(jid, {"state": "done", "missing": [3]})
    assert store.load_report(jid) == {"state": "done", "missing": [3]} and path.endswith(f"job-{jid}.json")
    assert not [p for p in os.listdir(store.reports_dir) if p.endswith(".part")]
    assert store.get_value("last_destination") is None
    store.set_value("last_destination", "/data/a")
    store.set_value("last_destination", "/data/b")
    assert SessionStore(tmp_path).get_value("last_destination") == "/data/b"


def test_remaining_ids_are_failed_and_not_reached():
    ids = parse_ids("1-10, 100-200")
    report = {"downloaded": [1, 2, 3], "skipped": [4], "missing": [5, 6, 150], "failed": {"7": "x"}}
    assert str(remaining_ids(ids, report)) == "7-10, 100-149, 151-200"
    # reports write missing ids as ranges ("48-99"): the same ids either way
    assert remaining_ids(ids, {**report, "missing": ["5-6", "150"]}) == remaining_ids(ids, report)
    assert report_ids(["48-99", 3, "7"]) == parse_ids("3, 7, 48-99")
    # a job that failed before reaching any id: everything is left
    assert remaining_ids(ids, {"downloaded": [], "skipped": [], "missing": [], "failed": {}}) == ids
    assert remaining_ids(parse_ids("0-100000000"), {"downloaded": ["1-99999999"]}) == parse_ids("0, 100000000")
    assert not remaining_ids(parse_ids("5-9"), {"missing": ["0-20"]})


def test_id_files_round_trip(tmp_path):
    ids = parse_ids("1-500, 1000, 7000-7002")
    path = tmp_path / "ids.txt"
    assert write_ids(str(path), ids) == len(ids)
    assert path.read_text() == "1-500\n1000\n7000-7002\n"
    assert read_ids(str(path)) == ids
    assert format_ids(IdRanges.of([3, 1, 2]), one_per_line=True) == "1\n2\n3\n"
    assert read_ids("-", stdin=io.StringIO("5\n# x\n\n6, 8-9  # c\n")) == parse_ids("5-6, 8-9")
    with pytest.raises(IdFileError, match="line 3"):
        parse_id_lines(["1", "2", "3-x"], "f.txt")
    with pytest.raises(IdFileError, match="it is a folder"):
        read_ids(str(tmp_path))


def test_destination_problems(tmp_path):
    assert destination_problem(str(tmp_path / "new" / "deeper")) is None
    assert destination_problem("/etc/passwd") == "cannot write to /etc/passwd: it is not a folder"
    assert destination_problem("/etc/passwd/x/y") == "cannot write to /etc/passwd/x/y: /etc/passwd is not a folder"
    assert destination_problem("  ") == "give a destination folder"


def test_layout_of_archive_names():
    assert layout_of("images/0514.tar") == ("images", 3)
    assert layout_of("images/4/0514.tar") == ("images", 4)
    assert layout_of("images/000.tar") == ("images", 2)
    assert layout_of("0000.tar") == ("", 3)
    assert layout_of("original/data-0001.tar") is None and layout_of("images/514.tar") is None


def test_the_missing_layout_message():
    pool = IncrementIDDataPool("o/r", base_level=3, base_dir="images")
    needed = [f"images/0{i:03d}.tar" for i in range(10)]
    existing = [f"images/{i}/0{j:03d}.tar" for i in range(10) for j in range(1000)][:40]
    text = describe_missing_layout(pool, needed, existing)
    assert text == ("none of the 10 archives these ids map to exists under images/ at level 3; the "
                    "repo has images/0/0000.tar … images/0/0039.tar under images/ at level 4?")
    assert describe_missing_layout(pool, needed, needed[:1]) is None
    assert describe_missing_layout(pool, needed, []).endswith("the repo has no .tar archive at all")
    odd = describe_missing_layout(pool, needed, ["data/a.tar", "data/b.tar"])
    assert odd.endswith("the repo has data/a.tar … data/b.tar (2 archives in data)")
    # a remote name is escaped before it is quoted
    assert "\\x1b" in describe_missing_layout(pool, needed, ["x\x1b[31m.tar"])


def test_two_apps_resuming_the_same_job_never_both_take_it(tmp_path):
    """Two TUIs started together both resumed the same job: the claim is a compare-and-swap."""
    from app.core.sessions import SessionStore

    first = SessionStore(tmp_path / "data")
    job = first.add_job(name="j", repo="t/r", spec={}, ids="1-9", n_ids=9, dst_dir=str(tmp_path), workers=1)
    first.update_job(job, state="interrupted", owner=None)
    seen_a = first.unfinished()[0]
    second = SessionStore(tmp_path / "data")
    second.pid = first.pid + 1  # another process
    seen_b = second.unfinished()[0]
    assert first.claim(job, seen=seen_a) is True
    assert second.claim(job, seen=seen_b) is False  # the record changed since it was read
    assert second.job(job).owner == first.pid and second.job(job).runs == 2
