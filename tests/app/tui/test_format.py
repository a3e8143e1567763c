"""Numbers that once disagreed on the Downloads screen now agree (Pilot, model fed with events)."""

from __future__ import annotations

from app.tui.app import make_app
from app.core.downloads import DownloadsModel
from app.tui.screens.watch_rows import job_row, worker_row
from app.core.settings import AppSettings
from pools import events as ev


class _Job:
    """The few attributes the model reads of an engine job."""

    def __init__(self, job_id: int):
        self.id = job_id
        self.name = f"job {job_id}"
        self.state = "queued"

    def cancel(self):  # the app may cancel on quit
        self.state = "cancelled"


class _Pool:
    data_repo_id = "t/format"


def _feed_two_jobs(model: DownloadsModel) -> None:
    model.add_job(_Job(1), _Pool(), "0-4799", 4800, "out")
    model.add_job(_Job(2), _Pool(), "5000-5099", 100, "out")
    model.apply([
        ev.JobState(1, "running"), ev.JobProgress(1, 4800, 4800, 4000, 10_000_000, 10_000_000, 5, 0),
        ev.ResourcesMissing(1, tuple(range(4000, 4049))), ev.JobState(1, "done"),
        ev.JobState(2, "running"), ev.JobProgress(2, 100, 29, 29, 50_000, 100_000, 1, 0),
    ])


def test_overall_counts_ids_files_and_bytes_over_the_same_jobs():
    """While a job runs, the bar is its progress (a finished job once made a new one read "100%");
    ids, files and bytes always count the same jobs."""
    model = DownloadsModel(clock=lambda: 0.0)
    _feed_two_jobs(model)
    o = model.overall()
    assert (o.ids_done, o.ids_total) == (29, 100)
    assert o.files == 29 and o.nbytes == 50_000
    model.apply([ev.JobProgress(2, 100, 60, 60, 90_000, 100_000, 2, 0), ev.JobState(2, "cancelled")])
    idle = model.overall()  # the session: the cancelled job counts the ids it settled, not the 40 never reached
    assert (idle.ids_done, idle.ids_total) == (4860, 4860)
    assert idle.files == 4060 and idle.nbytes == 10_090_000


def test_a_worker_at_zero_bytes_shows_no_speed():
    model = DownloadsModel(clock=lambda: 0.0)
    model.set_worker_count(1)
    w = model.workers[0]
    w.state, w.job_id, w.archive, w.filename, w.done, w.total, w.speed = (
        "download", 1, "images/0.tar", "1.png", 0, 27238, 50_000.0)
    cells = worker_row(w, 0.0).cells
    assert cells[5] == "0 B / 26.6 KiB" and cells[6] == "–"
    w.done = 1024
    assert worker_row(w, 0.0).cells[6] == "48.8 KiB/s"


async def test_missing_tab_agrees_with_the_job_row_while_jobs_run():
    """"Missing (43)" in the tab once lagged "49" in the job row: the panes' rows are rebuilt at
    most twice a second, but the tab counts follow every refresh."""
    from app.tui.screens.watch import WatchScreen
    from app.tui.widgets.virtual_table import VirtualTable

    app = make_app(AppSettings(workers=1, clock=lambda: 0.0))
    async with app.run_test(size=(100, 30)) as pilot:
        app.model.add_job(_Job(1), _Pool(), "0-99", 100, "out")
        app.model.apply([ev.JobState(1, "running"), ev.ResourcesMissing(1, tuple(range(43)))])
        app.action_downloads()
        await pilot.pause()
        watch = app.screen
        assert isinstance(watch, WatchScreen)
        # six more missing ids straight after the panes were rebuilt: within the half second
        app.model.apply([ev.ResourcesMissing(1, tuple(range(43, 49)))])
        watch.refresh_view()
        await pilot.pause()
        row = watch.query_one("#jobs", VirtualTable).rows[0]
        assert row.cells[6].startswith("49/")
        assert str(watch.query_one("#panes").get_tab("pane-missing").label) == "Missing (49)"
        text = str(watch.query_one("#overall").render())
        assert "0 files" in text and "0 B" in text and "ids 49/100" in text  # settled: in no archive
        assert watch.query_one("#overall-bar").label.startswith("49%")


def test_a_job_whose_every_id_failed_is_not_green_done():
    model = DownloadsModel(clock=lambda: 0.0)
    model.add_job(_Job(1), _Pool(), "1-3", 3, "out")
    model.add_job(_Job(2), _Pool(), "4-6", 3, "out")
    model.apply([ev.JobState(1, "running"), *(ev.ResourceFailed(1, r, "HTTP 500") for r in (1, 2, 3)),
                 ev.JobState(1, "done"), ev.JobState(2, "running"), ev.ResourceDone(2, 4, "downloaded", ("4.png",), 9),
                 ev.ResourceFailed(2, 5, "HTTP 500"), ev.JobState(2, "done")])
    assert model.jobs[1].outcome == "failed" and model.jobs[2].outcome == "partial"
    assert job_row(model.jobs[1]).cells[1] == "failed"


def test_the_same_unrecognized_file_met_by_two_jobs_is_listed_once():
    model = DownloadsModel(clock=lambda: 0.0)
    model.add_job(_Job(1), _Pool(), "1-3", 3, "out")
    model.add_job(_Job(2), _Pool(), "1-3", 3, "out")
    model.apply([ev.FileUnrecognized(j, "images/000.tar", "README.txt", "no id") for j in (1, 2)])
    assert len(model.unrecognized) == 1 and model.jobs[1].unrecognized == model.jobs[2].unrecognized == 1


async def test_the_export_says_when_the_missing_pane_holds_only_part_of_a_jobs_missing_ids(tmp_path, monkeypatch):
    from app.core import missing as missing_mod
    from app.tui.dialogs.ids import ExportIdsScreen
    from pools.ranges import IdList

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(missing_mod, "RUNS_KEEP", 100)
    app = make_app(AppSettings(clock=lambda: 0.0))
    async with app.run_test(size=(100, 30)) as pilot:
        app.model.add_job(_Job(1), _Pool(), "1-4000000000000000000", 4_000_000_000_000_000_000, "out")
        listed = IdList(range(1, 51))
        scattered = IdList(i * i for i in range(1000, 2000))  # ids at random: one run each two
        app.model.apply([ev.JobState(1, "running"), ev.ResourcesMissing(1, listed),
                         ev.ResourcesMissing(1, scattered), ev.JobState(1, "done")])
        app.model.jobs[1].job = None  # a job whose engine side is gone (a finished one of the session)
        app.action_export_ids()
        await pilot.pause()
        assert isinstance(app.screen, ExportIdsScreen)
        label = str(app.screen.query_one("#set-missing").label)
        assert "50 ids" in label and "the pane lists 50 of them" in label and "1,050 found" in label
