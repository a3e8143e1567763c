"""The queue and the job history, kept in SQLite under the user data dir, so nothing is lost.

Every state change of a job is written at once in its own small transaction (WAL journal): a
quit, a crash or a ``kill -9`` leaves each job as it last was. A job still ``queued`` or
``running`` whose process is gone, or one ``interrupted`` by a quit, is *unfinished*: the next
start offers to resume it (the engine skips every verified file, so nothing is fetched twice).

Where: ``$CHEESECHASER_DATA_DIR`` or the app's ``data_dir`` setting, else
``platformdirs.user_data_dir("cheesechaser-tui")``. Reports go beside the database as JSON files.
Tokens are never stored. No Textual import: the CLI could use it too.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pools import IdRanges, parse_ids
from pools.files import pid_alive, write_atomic

APP_NAME = "cheesechaser-tui"
DATA_DIR_ENV = "CHEESECHASER_DATA_DIR"
DB_NAME = "sessions.sqlite3"
ACTIVE = ("queued", "running")
UNFINISHED = ("queued", "running", "interrupted")
FINAL = ("done", "cancelled", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL, updated REAL NOT NULL, owner INTEGER,
    name TEXT NOT NULL, repo TEXT NOT NULL, spec TEXT NOT NULL, ids TEXT NOT NULL,
    n_ids INTEGER NOT NULL, dst_dir TEXT NOT NULL, workers INTEGER NOT NULL,
    state TEXT NOT NULL, error TEXT, started REAL, finished REAL,
    ids_done INTEGER NOT NULL DEFAULT 0, files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0, downloaded INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0, missing INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0, unrecognized INTEGER NOT NULL DEFAULT 0,
    not_reached INTEGER NOT NULL DEFAULT 0, resolves INTEGER, runs INTEGER NOT NULL DEFAULT 1,
    retry_of INTEGER, report TEXT
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass
class JobRecord:
    """One job of the history, as stored."""

    id: int
    created: float
    updated: float
    owner: int | None
    name: str
    repo: str
    spec: str
    ids: str
    n_ids: int
    dst_dir: str
    workers: int
    state: str
    error: str | None
    started: float | None
    finished: float | None
    ids_done: int
    files: int
    bytes: int
    downloaded: int
    skipped: int
    missing: int
    failed: int
    unrecognized: int
    not_reached: int
    resolves: int | None
    runs: int
    retry_of: int | None
    report: str | None

    @property
    def pool_spec(self) -> dict[str, Any]:
        return json.loads(self.spec)

    @property
    def elapsed(self) -> float | None:
        """Seconds from the start of its last run to its end (or to its last update)."""
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else self.updated
        return max(0.0, end - self.started)

    @property
    def average_speed(self) -> float | None:
        """Bytes per second over the last run; None before it has run."""
        elapsed = self.elapsed
        if not elapsed:
            return None
        return self.bytes / elapsed

    @property
    def finished_ok(self) -> bool:
        return self.state in FINAL


_COLUMNS = [f.name for f in fields(JobRecord)]
_UPDATABLE = set(_COLUMNS) - {"id", "created"}


class SessionStore:
    """The SQLite store of one data dir. Thread-safe; every write is its own transaction."""

    def __init__(self, data_dir: str | os.PathLike | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DB_NAME
        self.reports_dir = self.data_dir / "reports"
        self._lock = threading.Lock()
        # autocommit (isolation_level=None): each statement below is one small transaction
        self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses no commit
        self._db.executescript(_SCHEMA)
        self.pid = os.getpid()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- jobs -----------------------------------------------------------------------------

    def add_job(self, *, name: str, repo: str, spec: dict[str, Any], ids: str, n_ids: int,
                dst_dir: str, workers: int, retry_of: int | None = None) -> int:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO jobs (created, updated, owner, name, repo, spec, ids, n_ids, dst_dir,"
                " workers, state, retry_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (now, now, self.pid, name, repo, json.dumps(spec, sort_keys=True), ids, n_ids,
                 str(dst_dir), workers, retry_of))
            return int(cur.lastrowid)

    def update_job(self, job_id: int, **values: Any) -> None:
        bad = set(values) - _UPDATABLE
        if bad:
            raise KeyError(f"not a job column: {sorted(bad)}")
        values["updated"] = time.time()
        names = ", ".join(f"{k} = ?" for k in values)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {names} WHERE id = ?", (*values.values(), job_id))

    def claim(self, job_id: int, *, seen: JobRecord | None = None) -> bool:
        """This process runs the job again (a resume): queued, counters of the new run at zero.
        ``seen``: the record as this process read it; the claim is then a compare-and-swap on its
        run count, taken only if nobody claimed the job since (two apps started together never
        both resume it).
        Whether the job is now this process's."""
        sql = ("UPDATE jobs SET owner = ?, state = 'queued', error = NULL, started = NULL, "
               "finished = NULL, ids_done = 0, files = 0, bytes = 0, downloaded = 0, skipped = 0, "
               "missing = 0, failed = 0, unrecognized = 0, not_reached = 0, resolves = NULL, "
               "runs = runs + 1, updated = ? WHERE id = ?")
        params: list = [self.pid, time.time(), job_id]
        if seen is not None:  # every claim counts a run: a run counted since, and another took it
            sql += " AND runs = ?"
            params.append(seen.runs)
        with self._lock:
            return self._db.execute(sql, params).rowcount == 1

    def mark_interrupted(self, job_ids) -> None:
        """Jobs stopped by a quit: unfinished, offered for resuming next time."""
        with self._lock:
            self._db.executemany(
                "UPDATE jobs SET state = 'interrupted', owner = NULL, updated = ? WHERE id = ? "
                "AND state IN ('queued', 'running')", [(time.time(), j) for j in job_ids])

    def forget_unfinished(self, job_ids) -> None:
        """The user declined to resume: the jobs stay in the history as cancelled."""
        with self._lock:
            self._db.executemany(
                "UPDATE jobs SET state = 'cancelled', owner = NULL, updated = ?, "
                "error = coalesce(error, 'not resumed') WHERE id = ?",
                [(time.time(), j) for j in job_ids])

    def job(self, job_id: int) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?",
                                   (job_id,)).fetchone()
        return JobRecord(*row) if row else None

    def jobs(self, limit: int = 1000) -> list[JobRecord]:
        """The history, newest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [JobRecord(*row) for row in rows]

    def unfinished(self) -> list[JobRecord]:
        """Jobs a previous process left unfinished (its owner is gone, or it was interrupted)."""
        out = []
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE state IN ('queued', 'running', "
                "'interrupted') ORDER BY id").fetchall()
        for row in rows:
            record = JobRecord(*row)
            if record.state == "interrupted" or record.owner is None or (
                    record.owner != self.pid and not pid_alive(record.owner)):
                out.append(record)
        return out

    # ---- reports --------------------------------------------------------------------------

    def save_report(self, job_id: int, report: dict[str, Any]) -> str:
        """Write a finished run's report beside the database; returns its path."""
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        path = self.reports_dir / f"job-{job_id}.json"
        write_atomic(str(path), json.dumps(report, indent=1).encode("utf-8"),
                     tmp_dir=str(self.reports_dir), prefix=f".job-{job_id}.", suffix=".part")
        self.update_job(job_id, report=str(path))
        return str(path)

    def load_report(self, job_id: int) -> dict[str, Any] | None:
        record = self.job(job_id)
        if record is None or not record.report:
            return None
        try:
            with open(record.report, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    # ---- small values (the last destination, the last preset) -----------------------------

    def get_value(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_value(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                             "SET value = excluded.value", (key, value))


def report_ids(value) -> "IdRanges":
    """Ids as a report lists them: ints, or range strings (``"48-99"``, as ``missing`` is written)."""

    ranges: list[tuple[int, int]] = []
    singles: list[int] = []
    for item in value or ():
        if isinstance(item, str):
            ranges.extend(parse_ids(item).ranges)
        else:
            singles.append(int(item))
    return IdRanges(ranges + list(IdRanges.of(singles).ranges))


def remaining_ids(ids, report: dict[str, Any]):
    """The ids of a finished run that were neither done nor missing: failed and not reached."""

    settled = IdRanges([*report_ids(report.get("downloaded")).ranges,
                        *report_ids(report.get("skipped")).ranges,
                        *report_ids(report.get("missing")).ranges])
    return ids.minus(settled.ranges)
