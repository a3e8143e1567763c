"""The job history: every job of every session, from the session store; re-run, resume, report.

Rows come from :class:`app.core.sessions.SessionStore` (newest first), so a job queued before a crash
or in an earlier session is here too. A job running in this app refreshes with the downloads.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header, Static

from app.core.format import display_path, fmt_bytes, fmt_counts, fmt_elapsed, fmt_rate, fmt_short, plural
from app.core.sessions import FINAL, JobRecord, remaining_ids, report_ids
from app.tui.dialogs.ids import ExportIdsScreen
from app.tui.dialogs.keys import QUIT
from app.tui.messages import DownloadsChanged
from app.tui.widgets.virtual_table import Column, Row, VirtualTable
from pools import IdRanges, parse_ids
from pools.text import shown

HISTORY_COLUMNS = [
    Column("job", "#", 4, "right"),
    Column("state", "State", 11),
    Column("ids", "Ids", 13, "right"),
    Column("files", "Files", 7, "right", drop=2),
    Column("bytes", "Bytes", 9, "right"),
    Column("elapsed", "Elapsed", 8, "right", drop=1),
    Column("speed", "Avg speed", 11, "right", drop=3),
    Column("resolves", "Resolves", 8, "right", drop=4),  # too narrow: what the job was stays
    Column("what", "Repo · ids → destination", None, min_width=28),
]
STATE_STYLE = {"queued": "dim", "running": "accent", "done": "ok", "cancelled": "warn",
               "failed": "error", "interrupted": "warn"}
FAILED_SHOWN = 50


def history_row(r: JobRecord) -> Row:
    finished = r.state in FINAL
    elapsed = r.elapsed if r.started is not None else None
    what = f"{shown(r.repo, 80)} · {shown(r.ids, 60)} → {shown(display_path(r.dst_dir), 60)}"
    if r.error:
        what = f"{shown(r.error, 120)} · {what}"
    return Row(
        r.id,
        (f"{r.id}", r.state, f"{fmt_short(r.ids_done)}/{fmt_short(r.n_ids)}", f"{r.files:,}",
         fmt_bytes(r.bytes), fmt_elapsed(elapsed),
         fmt_rate(r.average_speed) if finished else fmt_rate(None),
         "–" if r.resolves is None else f"{r.resolves:,}", what),
        (r.id, r.state, r.ids_done, r.files, r.bytes, elapsed or 0, r.average_speed or 0,
         r.resolves or 0, what),
        cell_styles={1: STATE_STYLE.get(r.state, "")},
    )


def report_text(record: JobRecord, report: dict | None) -> str:
    """A finished job's report as a few plain lines (all remote strings escaped)."""
    lines = [f"Job {record.id}: {shown(record.repo, 80)} · {shown(record.ids, 200)}",
             f"→ {shown(record.dst_dir, 200)}", f"state: {record.state}"
             + (f" ({shown(record.error, 300)})" if record.error else ""),
             f"run {record.runs} · {fmt_elapsed(record.elapsed)} · {fmt_bytes(record.bytes)} · "
             f"average {fmt_rate(record.average_speed)}"
             + ("" if record.resolves is None else f" · {plural(record.resolves, 'resolve')}")]
    if report is None:
        lines.append("No report: the job has not finished a run.")
        return "\n".join(lines)
    missing = report_ids(report.get("missing"))
    lines.append(fmt_counts(len(report.get("downloaded", ())), len(report.get("skipped", ())),
                            len(missing), len(report.get("failed", {})),
                            len(report.get("unrecognized", ()))))
    if report.get("not_reached"):
        lines.append(f"{plural(report['not_reached'], 'id')} not reached (t retries them)")
    if missing:
        lines.append(f"missing (in no archive): {shown(str(missing), 600)}")
    failed = report.get("failed") or {}
    for rid, reason in list(failed.items())[:FAILED_SHOWN]:
        lines.append(f"failed {shown(rid, 20)}: {shown(reason, 200)}")
    if len(failed) > FAILED_SHOWN:
        lines.append(f"… and {len(failed) - FAILED_SHOWN:,} more failed")
    for item in (report.get("unrecognized") or [])[:20]:
        lines.append(f"unrecognized {shown(item.get('archive'), 80)} › {shown(item.get('name'), 80)}: "
                     f"{shown(item.get('reason'), 80)}")
    if record.report:
        lines.append(f"full report: {shown(record.report, 300)}")
    return "\n".join(lines)


class ReportScreen(ModalScreen):
    DEFAULT_CSS = """
    ReportScreen { align: center middle; }
    ReportScreen > VerticalScroll { width: 90%; height: 80%; border: thick $primary;
                                    background: $surface; padding: 1 2; }
    """
    BINDINGS = [QUIT, Binding("escape,enter", "close", "Close", id="close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.text, id="report-text", markup=False)
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)


class JobsScreen(Screen):
    """Every job the store remembers, newest first."""

    TITLE = "Job history"

    HELP_PLACE = "history"  # the help (f1) lists its keys first
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("enter", "report", "Report", id="report", show=True),
        Binding("r", "rerun", "Re-run", id="rerun"),
        Binding("s", "resume", "Resume", id="resume"),
        Binding("t", "retry", "Retry unfinished", id="retry"),
        Binding("e", "export", "Export ids", id="export"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="history-info", markup=False)
        yield VirtualTable(HISTORY_COLUMNS, id="history", empty_text="No job yet: queue ids with q.")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#history").focus()
        self.refresh_history()

    def on_screen_resume(self) -> None:
        self.refresh_history()

    def on_downloads_changed(self, message: DownloadsChanged) -> None:
        if self.is_current:
            self.refresh_history()

    @property
    def store(self):
        return self.app.open_sessions()

    def refresh_history(self) -> None:
        store = self.store
        info = self.query_one("#history-info", Static)
        table = self.query_one("#history", VirtualTable)
        if store is None:
            info.update("The session store is not available: no history.")
            table.set_rows([])
            return
        records = store.jobs()
        self.records = {r.id: r for r in records}
        table.set_rows(history_row(r) for r in records)
        info.update(f"{plural(len(records), 'job')} in {display_path(str(store.path))}")

    def _selected(self) -> JobRecord | None:
        key = self.query_one("#history", VirtualTable).cursor_key
        if key is None:
            self.notify("No job selected.", timeout=2)
            return None
        return self.store.job(key) if self.store is not None else None

    def _running_here(self, record: JobRecord) -> bool:
        return any(getattr(v, "session_id", None) == record.id and v.active
                   for v in self.app.model.jobs.values())

    # ---- actions --------------------------------------------------------------------------

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def action_report(self) -> None:
        record = self._selected()
        if record is not None:
            self.app.push_screen(ReportScreen(report_text(record, self.store.load_report(record.id))))

    def action_rerun(self) -> None:
        """The same ids again into the same folder, as a new job (verified files are skipped)."""
        record = self._selected()
        if record is None:
            return
        view = self._queue(record, parse_ids(record.ids), f"re-run of {record.id}")
        if view is not None:
            self.refresh_history()

    def action_resume(self) -> None:
        """An unfinished job continues under its own row."""
        record = self._selected()
        if record is None:
            return
        if record.state in FINAL or self._running_here(record):
            self.notify(f"Job {record.id} is {record.state}: r re-runs it, t retries what it did not finish.",
                        timeout=4)
            return
        self.app.resume_jobs([record])
        self.refresh_history()

    def action_retry(self) -> None:
        """Queue the failed and not reached ids of a finished job (from its report)."""
        record = self._selected()
        if record is None:
            return
        report = self.store.load_report(record.id)
        if record.state not in FINAL or report is None:
            self.notify(f"Job {record.id} has not finished a run: s resumes it.", timeout=3)
            return
        left = remaining_ids(parse_ids(record.ids), report)
        if not left:
            self.notify(f"Job {record.id} has nothing left to retry: every id is done or missing.",
                        timeout=3)
            return
        self._queue(record, left, f"retry of {record.id}: {left}"[:80], retry_of=record.id)
        self.refresh_history()

    def action_export(self) -> None:
        record = self._selected()
        if record is None:
            return

        report = self.store.load_report(record.id)
        ids = parse_ids(record.ids)
        sets = {"all": ids}
        if report is not None:
            sets["missing"] = report_ids(report.get("missing"))
            sets["failed"] = IdRanges.of(int(k) for k in (report.get("failed") or {}))
            sets["unfinished"] = remaining_ids(ids, report)
        self.app.push_screen(ExportIdsScreen(sets, default_name=f"job-{record.id}-ids.txt", folder=record.dst_dir))

    def _queue(self, record: JobRecord, ids, name: str, retry_of: int | None = None):
        try:
            pool = self.app.pool_from_spec(record.pool_spec)
        except Exception as exc:  # noqa: BLE001 - a layout that no longer makes a pool
            self.notify(f"Cannot rebuild the dataset of job {record.id}: {exc}", severity="error")
            return None
        if record.pool_spec.get("demo") and self.app.demo_endpoint is None:
            self.notify("Open the demo first (ctrl+e in the picker), then try again.", timeout=4)
            return None
        output = record.pool_spec.get("output")
        if output and output.get("captions"):
            self.notify("Shards with captions: queue them again from the Query screen.", timeout=5)
            return None
        if output:  # shards go on after the last complete one: the whole job again
            ids = parse_ids(record.ids)
        return self.app.queue_job(pool, ids, record.dst_dir, record.workers, name=name,
                                  retry_of=retry_of, output=output)

    @on(VirtualTable.Selected, "#history")
    def _row_selected(self) -> None:
        self.action_report()
