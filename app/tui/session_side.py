"""The app's side of sessions: record every job in the store, offer to resume, ask before quitting.

A mixin of :class:`app.tui.app.CheesechaserApp` (kept apart so the App module stays about the
screens): the app calls ``_session_job_added`` when it queues a job and ``_session_sync`` after
each fold of engine events; everything else (resume, retry, quit, the last destination) lives here.
"""

from __future__ import annotations

from typing import Any

from app.core.datasets import DatasetSpec
from app.core.format import plural
from app.core.sessions import ACTIVE, JobRecord, SessionStore, remaining_ids
from app.core.settings import default_token
from app.tui.dialogs.ids import ExportIdsScreen, ImportIdsScreen
from app.tui.dialogs.queue import QueueScreen
from app.tui.dialogs.sessions import ConfirmQuitScreen, ResumeScreen
from app.tui.messages import DownloadsChanged
from app.tui.screens.history import JobsScreen
from pools import IdRanges, parse_ids

LAST_DEST = "last_destination"


class SessionsMixin:
    """Needs the app's ``settings``, ``model``, ``queue_job``, ``notify`` and ``open_demo``."""

    sessions: SessionStore | None = None
    _sessions_opened = False
    _quitting = False
    _pending_resume: list[JobRecord] | None = None
    _saved: dict[int, tuple] | None = None
    sessions_error: str | None = None
    """Why the store is not used (shown once as a warning), or None."""

    @property
    def _claimed(self) -> set[int]:
        """Jobs this app just claimed for a resume (compare-and-swap), about to be queued."""
        return self.__dict__.setdefault("_claimed_ids", set())

    # ---- the store ------------------------------------------------------------------------

    def open_sessions(self) -> SessionStore | None:
        """The store (opened once); None, with a warning, when the data dir cannot be used."""
        if not self._sessions_opened:
            self._sessions_opened = True
            self._saved = {}
            try:
                self.sessions = SessionStore(getattr(self.settings, "data_dir", None))
            except Exception as exc:  # noqa: BLE001 - a broken disk must not stop the app
                self.sessions = None
                self.sessions_error = f"{type(exc).__name__}: {exc}"
                self.notify(f"Jobs will not be remembered: {type(exc).__name__}: {exc}",
                            title="No session store", severity="warning", timeout=8)
        return self.sessions

    @property
    def last_destination(self) -> str:
        """The destination last queued into, then the configured default."""
        store = self.open_sessions()
        last = store.get_value(LAST_DEST) if store is not None else None
        return last or self.settings.dst_dir

    def remembered(self, key: str) -> str | None:
        """A small value kept across sessions (the last preset, ...); None when there is none."""
        store = self.open_sessions()
        try:
            return store.get_value(key) if store is not None else None
        except Exception:  # noqa: BLE001
            return None

    def remember(self, key: str, value: str) -> None:
        store = self.open_sessions()
        if store is not None:
            try:
                store.set_value(key, value)
            except Exception as exc:  # noqa: BLE001
                self._store_failed(exc)

    def _session_job_added(self, view, pool, ids, workers: int, retry_of: int | None,
                           session_id: int | None) -> None:
        store = self.open_sessions()
        if store is None:
            return
        try:
            if session_id is None:
                spec = DatasetSpec.of_pool(pool).record(getattr(self, "demo_endpoint", None))
                if view.output:
                    spec["output"] = view.output  # resumed and retried as shards, not as files
                session_id = store.add_job(
                    name=view.name, repo=view.repo, spec=spec,
                    ids=str(ids), n_ids=len(ids), dst_dir=view.dst_dir, workers=workers,
                    retry_of=retry_of)
            elif session_id in self._claimed:
                self._claimed.discard(session_id)  # resume_jobs has just claimed it, compare-and-swap
            else:
                store.claim(session_id)
            view.session_id = session_id
            store.set_value(LAST_DEST, view.dst_dir)
        except Exception as exc:  # noqa: BLE001 - the download goes on, unrecorded
            self._store_failed(exc)

    def _store_failed(self, exc: BaseException) -> None:
        self.sessions_error = f"{type(exc).__name__}: {exc}"
        self.notify(f"The session store failed: {type(exc).__name__}: {exc}",
                    title="Jobs not remembered", severity="warning", timeout=8)
        self.sessions = None

    def _session_sync(self) -> None:
        """Write every job whose state or counters changed since the last write."""
        store = self.sessions
        if store is None or self._quitting:
            return
        try:
            for view in self.model.jobs.values():
                sid = getattr(view, "session_id", None)
                if sid is None:
                    continue
                sig = (view.state, view.ids_done, view.files_done, view.bytes_done, view.downloaded,
                       view.skipped, view.missing, view.failed, view.unrecognized, view.error)
                if self._saved.get(sid) == sig:
                    continue
                self._saved[sid] = sig
                values: dict[str, Any] = dict(
                    state=view.state, error=view.error, ids_done=view.ids_done,
                    files=view.files_done, bytes=view.bytes_done, downloaded=view.downloaded,
                    skipped=view.skipped, missing=view.missing, failed=view.failed,
                    unrecognized=view.unrecognized)
                if view.wall_started is not None:
                    values["started"] = view.wall_started
                if not view.active:
                    report = view.job.report
                    values.update(finished=view.wall_finished, not_reached=report.not_reached,
                                  resolves=getattr(report, "resolves", None))
                    store.update_job(sid, **values)
                    store.save_report(sid, {**report.to_dict(), "resolves": values["resolves"],
                                            "ids": view.ids_text})
                else:
                    store.update_job(sid, **values)
        except Exception as exc:  # noqa: BLE001
            self._store_failed(exc)

    # ---- resume ---------------------------------------------------------------------------

    def offer_resume(self) -> None:
        if getattr(self, "_demo_starting", False):
            # the demo's archives screen is about to replace the stack: offer on top of it
            self._offer_after_demo = True
            return
        store = self.open_sessions()
        if store is None:
            return
        try:
            unfinished = store.unfinished()
        except Exception as exc:  # noqa: BLE001
            self._store_failed(exc)
            return
        if not unfinished:
            return

        def answered(choice: str | None) -> None:
            if choice == "resume":
                self.resume_jobs(unfinished)
            elif choice == "forget":
                store.forget_unfinished([r.id for r in unfinished])
                self.notify(f"{plural(len(unfinished), 'job')} left as cancelled in the history.",
                            timeout=4)

        self.push_screen(ResumeScreen(unfinished), answered)

    def resume_jobs(self, records: list[JobRecord]) -> list:
        """Queue each record again under its own history row; returns the new job views."""

        if any(r.pool_spec.get("demo") for r in records) and getattr(self, "demo_endpoint", None) is None:
            self._pending_resume = list(records)  # resumed once the demo Hub is up
            self.open_demo()
            return []
        views = []
        for record in records:
            try:
                pool = self.pool_from_spec(record.pool_spec)
                ids = parse_ids(record.ids)
            except Exception as exc:  # noqa: BLE001 - a record that no longer makes a pool
                self.notify(f"Job {record.name} cannot be resumed: {exc}", severity="error")
                continue
            output = record.pool_spec.get("output")
            if output and output.get("captions"):
                self.notify(f"Job {record.name} wrote shards with captions from a query: queue it again from "
                            "the Query screen to go on (its complete shards are kept).", timeout=8)
                continue
            store = self.open_sessions()
            if store is not None:
                if not store.claim(record.id, seen=record):  # another window took it first
                    self.notify(f"Job {record.name} is already resumed by another window.", timeout=5)
                    continue
                self._claimed.add(record.id)
            view = self.queue_job(pool, ids, record.dst_dir, record.workers, name=record.name,
                                  session_id=record.id, output=output)
            if view is not None:
                views.append(view)
        return views

    def _resume_pending(self) -> None:
        """After the demo Hub is up: make the offer that waited for it, or resume what did."""
        if getattr(self, "_offer_after_demo", False):
            self._offer_after_demo = False
            self.offer_resume()
        pending, self._pending_resume = self._pending_resume, None
        if pending:
            self.resume_jobs(pending)

    def pool_from_spec(self, spec: dict[str, Any]):
        """The pool of a recorded job (its demo on this run's demo Hub, with no token)."""
        token = self.settings.token if self.settings.token is not None else default_token()
        return DatasetSpec.from_record(spec, demo_endpoint=getattr(self, "demo_endpoint", None), token=token,
                                       retry=self.settings.retry).make_pool()

    # ---- retry ----------------------------------------------------------------------------

    def retry_unfinished(self, job_id: int | None = None) -> list:
        """Queue again what a finished job did not finish (failed and not reached), one new job
        per original job: of ``job_id``, or of every finished job with something left."""

        views = []
        targets = [self.model.jobs[job_id]] if job_id in self.model.jobs else (
            [] if job_id is not None else list(self.model.jobs.values()))
        for old in targets:
            if old.active or old.job is None:
                continue
            left = remaining_ids(old.job.ids, old.job.report.to_dict())
            if not left:
                continue
            if old.output:  # shards go on after the last complete one: the whole job again
                if old.output.get("captions"):
                    self.notify("Shards with captions: queue them again from the Query screen.", timeout=5)
                    continue
                left = old.job.ids
            view = self.queue_job(old.pool, left, old.dst_dir, name=f"retry of #{old.number}: {left}"[:80],
                                  retry_of=getattr(old, "session_id", None), output=old.output)
            if view is not None:  # the old job's failures stay listed: its row still counts them
                views.append(view)
        if not views:
            what = f"Job #{self.model.number(job_id)} has" if job_id is not None else "No job has"
            self.notify(f"{what} nothing left to retry: every id is done or missing.", timeout=3)
        self.post_message(DownloadsChanged())
        return views

    # ---- the history ----------------------------------------------------------------------

    def action_job_history(self) -> None:

        if not isinstance(self.screen, JobsScreen):
            self.push_screen(JobsScreen())

    # ---- export and import ids -------------------------------------------------------------

    def export_sets(self, missing=None) -> dict:
        """The id sets worth saving now: marked in an archive, missing, failed, not finished.
        ``missing``: the Missing pane's union (``app.core.missing``) when the caller has it."""

        sets: dict = {}
        basket = getattr(self, "basket", None)  # the App's (app.tui.basket_side)
        if basket is not None and basket.ids:
            sets["marked"] = basket.ranges()
        sets["missing"] = IdRanges((missing or self.model.missing.union()).ranges())
        sets["failed"] = IdRanges.of(self.model.failed_ids())
        unfinished: list[tuple[int, int]] = []
        for view in self.model.jobs.values():
            if not view.active and view.job is not None:
                unfinished.extend(remaining_ids(view.job.ids, view.job.report.to_dict()).ranges)
        sets["unfinished"] = IdRanges(unfinished)
        return sets

    def action_export_ids(self) -> None:

        notes = {}
        union = self.model.missing.union()
        if not union.complete:
            total = sum(self.model.missing.counts.values())
            notes["missing"] = (f"the pane lists {union.ids:,} of them ({total:,} found by the jobs, overlaps "
                                "counted again): each job's report in History has every one")
        self.push_screen(ExportIdsScreen(self.export_sets(union), folder=self.last_destination,  # beside the downloads
                                         notes=notes))

    def action_import_ids(self) -> None:
        """Read ids from a file, then queue them from the current dataset (the queue dialog)."""

        if self.current_pool is None:
            self.notify("Open a dataset first: imported ids are queued from it.", timeout=3)
            return

        def loaded(ids) -> None:
            if ids:
                self.push_screen(QueueScreen(self.current_pool, self.current_settings or self.settings,
                                             ids_text=str(ids)))

        self.push_screen(ImportIdsScreen(), loaded)

    # ---- quit -----------------------------------------------------------------------------

    async def action_quit(self) -> None:
        active = [v for v in self.model.jobs.values() if v.active]
        if not active:
            self.exit()
            return

        if isinstance(self.screen, ConfirmQuitScreen):  # ctrl+q twice: yes, quit
            self.quit_keeping_jobs()
            return

        def answered(quit_now: bool | None) -> None:
            if quit_now:
                self.quit_keeping_jobs()

        if not isinstance(self.screen, ConfirmQuitScreen):
            self.push_screen(ConfirmQuitScreen(len(active)), answered)

    def quit_keeping_jobs(self) -> None:
        """Quit now; running and queued jobs stay unfinished in the store, to resume next time."""
        ids = [v.session_id for v in self.model.jobs.values()
               if v.active and getattr(v, "session_id", None) is not None]
        self._session_sync()
        self._quitting = True
        if self.sessions is not None and ids:
            try:
                self.sessions.mark_interrupted(ids)
            except Exception:  # noqa: BLE001 - quitting anyway
                pass
        self.exit()


__all__ = ["SessionsMixin", "ACTIVE"]
