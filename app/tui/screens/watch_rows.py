"""The rows of the Downloads screen: jobs, workers (a bar and a colour per state), missing runs.

Plain functions of the downloads model and the app's clock, so a fixed clock draws the same rows
every time (snapshots feed them events directly).
"""

from __future__ import annotations

from typing import Callable

from app.core.downloads import DownloadsModel, JobView, WorkerView
from app.core.format import display_path, fmt_bytes, fmt_duration, fmt_progress_bytes, fmt_rate, fmt_short, plural
from app.tui.widgets.virtual_table import BarCell, Column, Row
from pools.text import shown

JOB_COLUMNS = [
    Column("job", "Job", 4, "right"),
    Column("state", "State", 9),
    Column("ids", "Ids", 11, "right"),
    Column("bytes", "Bytes", 9, "right"),
    Column("elapsed", "Elapsed", 7, "right", drop=1),
    Column("speed", "Speed", 10, "right", drop=2),
    Column("issues", "Miss/Fail", 9, "right"),
    Column("what", "Repo · ids → destination", None, min_width=24),  # too narrow: speeds go first
]
WORKER_COLUMNS = [
    Column("worker", "#", 2, "right"),
    Column("state", "State", 14),
    Column("job", "Job", 4, "right"),
    Column("item", "Archive › file", None, min_width=22),
    Column("bar", "Progress", None, min_width=8, drop=1),  # too narrow: the bytes say it too
    Column("bytes", "Bytes", 19, "right"),
    Column("speed", "Speed", 10, "right"),
]
CLUSTER_COLUMNS = [
    Column("worker", "Dask worker", 22),
    Column("state", "State", 12),
    Column("job", "Job", 4, "right"),
    Column("tasks", "Tasks run/done", 14, "right", drop=1),
    Column("files", "Files", 8, "right", drop=2),
    Column("bytes", "Bytes", 9, "right"),
    Column("speed", "Speed", 10, "right"),
]
CLUSTER_STYLE = {"busy": "primary", "rate-limited": "error", "idle": "dim", "lost": "warn"}
MISSING_COLUMNS = [Column("ids", "Ids in no archive", None), Column("count", "Count", 8, "right"),
                   Column("jobs", "Jobs", None, min_width=8)]

JOB_STYLE = {"queued": "dim", "running": "accent", "done": "ok", "cancelled": "warn",
             "failed": "error", "partial": "warn"}

# the engine's worker states, in the user's words, and their colour (a VirtualTable style)
WORKER_LABEL = {"idle": "idle", "index": "fetching index", "download": "downloading",
                "verify": "verifying", "retrying": "retrying", "rate-limited": "rate-limited"}
WORKER_STYLE = {"idle": "dim", "index": "secondary", "download": "primary", "verify": "ok",
                "retrying": "warn", "rate-limited": "error"}
WAITING = ("retrying", "rate-limited")


def job_elapsed(job: JobView, now: float) -> float | None:
    if job.started is None:
        return None
    return max(0.0, (job.finished if job.finished is not None else now) - job.started)


def job_row(job: JobView, now: float | None = None) -> Row:
    issues = f"{fmt_short(job.missing)}/{fmt_short(job.failed)}" if (job.missing or job.failed) else "–"
    what = f"{shown(job.repo)} · {job.ids_text} → {shown(display_path(job.dst_dir))}"
    if job.output:
        what += (f" · {plural(job.shards, 'shard')} ({shown(job.last_shard)})" if job.shards
                 else f" · {job.output.get('format', 'shards')} shards")
    if job.error:
        what = f"{shown(job.error)} · {what}"
    elapsed = job_elapsed(job, now if now is not None else (job.finished or job.started or 0.0))
    # average over the job's life; none in its first second (files already there count as
    # bytes at once, which would read as hundreds of MiB/s)
    speed = job.bytes_done / elapsed if elapsed and elapsed >= 1.0 else None
    return Row(
        job.job_id,
        (f"#{job.number}", job.outcome, f"{fmt_short(job.ids_done)}/{fmt_short(job.ids_total)}",
         fmt_bytes(job.bytes_done), fmt_duration(elapsed), fmt_rate(speed), issues, what),
        cell_styles={1: JOB_STYLE.get(job.outcome, ""), 6: "warn" if job.failed or job.missing else ""},
    )


def wait_left(w: WorkerView, now: float) -> float | None:
    if w.wait is None:
        return None
    return max(0.0, w.wait - (now - w.wait_at))


def worker_row(w: WorkerView, now: float | None = None, number: Callable[[int], int] = int) -> Row:
    """``now`` (the app's clock) counts a wait down; without it, the wait as last reported.
    ``number``: the ``#N`` people read for an engine job id (``DownloadsModel.number``)."""
    now = w.wait_at if now is None else now
    if w.state == "idle":
        return Row(w.worker, (str(w.worker), "idle", "", "", "", "", ""), style="dim")
    item = shown(w.archive)
    if w.filename:
        item = f"{item} › {shown(w.filename)}" if w.archive else shown(w.filename)
    style = WORKER_STYLE.get(w.state, "")
    label = WORKER_LABEL.get(w.state, shown(w.state, 14))
    if w.state in WAITING:
        # never "4.3 KiB / 4.3 KiB" here: the file is not done, the worker waits to try again
        left = wait_left(w, now)
        note = f"resumes in {fmt_duration(left)}" if left is not None else "waiting"
        if w.reason:
            item = f"{shown(w.reason, 120)} · {item}" if item else shown(w.reason, 120)
        fraction = (1 - left / w.wait) if left is not None and w.wait else None
        return Row(w.worker, (str(w.worker), label, f"#{number(w.job_id)}", item, BarCell(fraction),
                              note, ""),
                   cell_styles={1: style, 4: style, 5: style})
    fraction = w.done / w.total if w.total else None
    if w.state == "verify":
        fraction = 1.0
    progress = fmt_progress_bytes(w.done, w.total)
    # a speed beside "0 B / …" would contradict it: a file that has not moved yet shows none
    speed = fmt_rate(w.speed) if w.done > 0 or w.state != "download" else fmt_rate(None)
    return Row(w.worker, (str(w.worker), label, f"#{number(w.job_id)}", item, BarCell(fraction), progress,
                          speed),
               cell_styles={1: style, 4: style})


def cluster_rows(model: DownloadsModel) -> list[Row]:
    """One row per Dask worker of each cluster job, the running jobs' first."""
    rows = []
    for (job_id, worker), w in sorted(model.cluster_workers.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        name = shown(worker.removeprefix("tcp://"), 22)
        style = CLUSTER_STYLE.get(w.state, "")
        rows.append(Row((job_id, worker), (name, shown(w.state, 12), f"#{model.number(job_id)}",
                                           f"{w.tasks_running:,}/{w.tasks_done:,}", f"{w.files:,}",
                                           fmt_bytes(w.nbytes), fmt_rate(w.speed if w.state == "busy" else None)),
                        cell_styles={1: style}, style="dim" if w.state in ("idle", "lost") else ""))
    return rows


def missing_rows(model: DownloadsModel) -> tuple[list[Row], int, bool]:
    """Runs of missing ids over every job, each with the jobs that missed it; the distinct ids
    listed; and whether that is all of them (``app.core.missing``).

    Two jobs that both miss 1-50 give one row ``1-50 · 50 · #1, #2``, not two.
    """
    union = model.missing.union()
    rows = []
    for lo, hi, jobs in union.runs:
        text = f"{lo}" if lo == hi else f"{lo}-{hi}"
        rows.append(Row(lo, (text, f"{hi - lo + 1:,}", ", ".join(f"#{model.number(j)}" for j in jobs)),
                        (lo, hi - lo + 1, jobs)))
    if not union.complete:
        cut = model.missing.cut_jobs()
        more = sum(model.missing.counts[j] - model.missing.stored(j) for j in cut)
        text = f"… {more:,} more not listed" if more else "… more not listed"
        rows.append(Row(("more",), (text, "", ", ".join(f"#{model.number(j)}" for j in cut)), (None, 0, tuple(cut)), style="dim"))
    return rows, union.ids, union.complete
