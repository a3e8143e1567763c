"""Benchmark: how soon the TUI shows the first rows of a 50,000-file archive whose index is cached.

Not a test (pytest collects only ``test_*.py``); a script that prints figures.

    python tests/bench/bench_tui_open.py                   # 5 rounds, 50,000 entries
    python tests/bench/bench_tui_open.py --entries 20000 --rounds 3 --markdown

One archive whose index lists ``--entries`` well-formed files (padded over small real members,
see ``tests/bench/bench_data.py``) is served by the loopback Hub. An untimed child process fetches the
index into a huggingface_hub cache; then each round is a fresh child process that drives the real
app through ``App.run_test()`` and Pilot as a user would: the dataset opens on the archives screen,
its summaries load, the cursor goes to the archive and ``enter`` is pressed. Timed from the key
press to the first line the files table draws once it holds rows (taken inside the table's
``render_line``, so it is the paint itself, whatever the polling; the script waits for the app's
workers and for the screen to be idle: no sleeps). A second ``escape`` + ``enter`` in the
same app times a re-open. Also printed: when every row is in (a big index shows its first page,
the smallest offsets, while the rest are built off the event loop). Goal: first rows within 0.3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import HERE, ROOT, child_env, command_line, goal, mib, start_hub

REPO = "bench/tui"
SIZE = (100, 30)
GOAL_S = 0.3


async def _until(pilot, cond, what: str, timeout: float = 120.0) -> None:
    """Wait for ``cond()``: for the app's running workers, then for the screen to be idle."""
    from textual.worker import WorkerState

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        running = [w for w in pilot.app.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        if running:
            waits = [asyncio.ensure_future(w.wait()) for w in running]
            done, pending = await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                fut.cancel()
            for fut in done:
                fut.exception()  # a failed or cancelled worker is the app's business, not the bench's
        await pilot.pause()


async def _open(spec: dict) -> dict:
    from app.tui.app import make_app
    from app.tui.screens.archive import ArchiveScreen
    from app.tui.screens.browse import BrowseScreen
    from app.core.settings import AppSettings
    from app.tui.widgets.virtual_table import VirtualTable

    settings = AppSettings(repo=REPO, base_level=3, endpoint=spec["endpoint"], dst_dir=spec["dst"], workers=2)
    app = make_app(settings)
    out: dict = {}
    painted: list[tuple[float, float]] = []  # when the files table first drew a line holding rows
    whole: list[tuple[float, float]] = []  # ... and a line once every row is in

    render_line = VirtualTable.render_line

    def timed_render_line(table, y):  # the paint itself, not when our polling noticed it
        if not painted and table.id == "files" and table.row_count > 0 and isinstance(app.screen, ArchiveScreen):
            painted.append((time.perf_counter(), time.process_time()))
        if not whole and table.id == "files" and isinstance(app.screen, ArchiveScreen) and \
                app.screen.index is not None and table.total_count > 0:
            whole.append((time.perf_counter(), time.process_time()))
        return render_line(table, y)

    VirtualTable.render_line = timed_render_line

    def shown() -> bool:
        return bool(painted)

    async with app.run_test(size=SIZE) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, BrowseScreen) and app.screen.loading_done,
                     "the archives screen and its summaries")
        browse = app.screen
        for label in ("first", "again"):
            browse.query_one("#archives", VirtualTable).move_cursor_to_key(spec["archive"])
            t0 = time.perf_counter()
            c0 = time.process_time()
            painted.clear()
            whole.clear()
            await pilot.press("enter")
            await _until(pilot, shown, "the archive's first rows")
            out[label] = painted[0][0] - t0
            out[label + "_cpu"] = painted[0][1] - c0
            await _until(pilot, lambda: bool(whole), "every row of the archive")
            out[label + "_all"] = whole[0][0] - t0
            out["rows"] = app.screen.query_one("#files", VirtualTable).total_count
            await pilot.press("escape")
            await _until(pilot, lambda: app.screen is browse, "the archives screen again")
    return out


def child(spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text())
    if spec["mode"] == "warm":
        from pools import IncrementIDDataPool

        pool = IncrementIDDataPool(REPO, base_level=3, endpoint=spec["endpoint"])
        index = pool.get_index(spec["archive"])
        print(json.dumps({"files": index.n_files if index is not None else 0}))
        return 0
    out = asyncio.run(_open(spec))
    from bench_clients import peak_rss_kb

    out["rss_kb"] = peak_rss_kb()
    print(json.dumps(out))
    return 0


def run_child(spec: dict, work: Path, home: Path, endpoint: str) -> dict:
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    out = subprocess.run([sys.executable, str(HERE / "bench_tui_open.py"), "--child", str(spec_file)],
                         check=False, cwd=ROOT, env=child_env(home, endpoint, ours=True), capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=50_000, help="files the archive's index lists")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--latency-ms", type=float, default=0.0, help="per-request latency of the Hub")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)

    from bench_data import build_padded

    work = Path(tempfile.mkdtemp(prefix="cheesechaser-bench-tui-"))
    try:
        root = work / "hub"
        t0 = time.perf_counter()
        ds = build_padded(root, REPO, archives=1, entries=args.entries)
        archive = ds.tasks(ds.ids["sparse"])[0][0]
        print(f"archive {archive}: index of {args.entries:,} entries, {ds.index_bytes / 1e6:.1f} MB "
              f"(built in {time.perf_counter() - t0:.1f} s)", flush=True)
        home = work / "hf-home"
        with start_hub(root, args.latency_ms) as hub:
            spec = {"endpoint": hub.url, "archive": archive, "dst": str(work / "dst")}
            warm = run_child(dict(spec, mode="warm"), work, home, hub.url)
            if warm["files"] != args.entries:
                raise SystemExit(f"the engine read {warm['files']} files in the index, not {args.entries}")
            runs = []
            for rnd in range(args.rounds):
                hub.clear_log()
                res = run_child(dict(spec, mode="open"), work, home, hub.url)
                res["index_gets"] = sum(1 for r in hub.request_log if r.method == "GET" and r.path.endswith(".json"))
                runs.append(res)
                print(f"  round {rnd + 1}: first rows after {res['first']:.3f} s ({res['first_cpu']:.3f} s CPU), "
                      f"every row after {res['first_all']:.3f} s, "
                      f"re-open {res['again']:.3f} s, {res['rows']:,} rows, {res['index_gets']} index GETs, "
                      f"{res['rss_kb'] / 1024:.0f} MiB RSS", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(key):
        return statistics.median(r[key] for r in runs)

    first = med("first")
    rows = [("first rows of the archive screen", f"{med('first'):.3f} s",
             f"{min(r['first'] for r in runs):.3f}-{max(r['first'] for r in runs):.3f} s"),
            ("the same, CPU of the process", f"{med('first_cpu'):.3f} s", ""),
            ("every row in (sorted, filterable)", f"{med('first_all'):.3f} s",
             f"{min(r['first_all'] for r in runs):.3f}-{max(r['first_all'] for r in runs):.3f} s"),
            ("re-open (escape, enter)", f"{med('again'):.3f} s",
             f"{min(r['again'] for r in runs):.3f}-{max(r['again'] for r in runs):.3f} s"),
            ("peak RSS", mib(med("rss_kb")), "")]
    print()
    if args.markdown:
        print(f"`{command_line('bench_tui_open.py', argv)}` ({os.cpu_count()} CPUs; median of {args.rounds} runs)\n")
        print(f"| {args.entries:,}-file archive, index cached | median | range |\n|---|---:|---:|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} |")
    else:
        for r in rows:
            print(f"{r[0]:36} {r[1]:>10}  {r[2]}")
    print("\n" + goal(first <= GOAL_S, f"first rows within {GOAL_S} s of opening ({first:.3f} s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
