"""Write SVG screenshots of the main screens into ``screenshots/``, from the real app on the demo.

    python tests/support/make_screenshots.py [--out screenshots] [--size 100x30] [--demo-root DIR]
    python tests/support/make_screenshots.py --size 80x24     # the same pictures, named <name>-80x24.svg

The app runs headless with ``--demo`` (the demo dataset written once into its cache folder, the
loopback Hub started inside the app), exactly as ``cheesechaser-tui --demo`` does; downloads go
to a temporary folder and huggingface_hub's cache is a temporary one, so nothing of the user's is
touched. The "running" picture slows the Hub down so the workers are caught mid-transfer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SIZE = (100, 30)
"""Pictures at this size are ``<name>.svg``; any other size adds ``-WxH`` to the name."""


async def _settle(pilot, condition, what: str, rounds: int = 600) -> None:
    for _ in range(rounds):
        if condition():
            return
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    raise SystemExit(f"gave up waiting for {what}")


async def _quiet(pilot) -> None:
    from textual.widgets import Input

    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause()


async def shoot(out: Path, size: tuple[int, int], demo_root: Path | None, dest: Path) -> list[Path]:
    from app.tui.app import make_app
    from app.hub.faults import FaultConfig
    from app.tui.screens.archive import ArchiveScreen
    from app.tui.screens.browse import BrowseScreen
    from app.tui.dialogs.queue import QueueScreen
    from app.core.settings import AppSettings
    from app.tui.widgets.image_preview import ImagePreview

    written: list[Path] = []
    # its own session store beside the scratch downloads: never the user's history or destination
    app = make_app(AppSettings(demo=True, demo_root=demo_root, dst_dir=str(dest), workers=6,
                               endpoint_label="demo hub (loopback)", data_dir=dest.parent / "data"))

    suffix = "" if size == DEFAULT_SIZE else f"-{size[0]}x{size[1]}"

    def save(name: str) -> None:
        path = out / f"{name}{suffix}.svg"
        path.write_text(app.export_screenshot(title=f"cheesechaser-tui · {name}"))
        written.append(path)

    async with app.run_test(size=size) as pilot:
        # the dataset picker sits under the demo: show it first, then the demo's archives
        await _settle(pilot, lambda: isinstance(app.screen, BrowseScreen), "the archives screen")
        browse = app.screen
        await _settle(pilot, lambda: browse.loading_done, "the index summaries")
        app.pop_screen()
        await pilot.press("down", "down", "down", "down")
        await _quiet(pilot)
        save("picker")
        await pilot.press("up", "up", "up", "up", "enter")
        await _settle(pilot, lambda: isinstance(app.screen, BrowseScreen)
                      and app.screen.loading_done, "the archives again")
        await pilot.press("down", "down", "down")
        await _quiet(pilot)
        save("archives")

        await pilot.press("enter")
        await _settle(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.index,
                      "the archive's index")
        if not app.screen.query_one("#preview-pane").display:
            await pilot.press("p")  # under 100 columns the preview waits for `p`
        await pilot.press("down", "space", "down", "space")
        await _settle(pilot, lambda: app.screen.query_one("#preview", ImagePreview).has_image,
                      "the preview")
        await _quiet(pilot)
        save("archive")

        await pilot.press("escape", "q", *"1-1500, 3000-3100")
        await _settle(pilot, lambda: isinstance(app.screen, QueueScreen)
                      and "archives" in app.screen.preview_text, "the queue preview")
        await _quiet(pilot)
        save("queue")

        # slow the Hub down so the workers are caught mid-transfer
        app._demo_server.faults = FaultConfig(latency_ms=900, paths="*.tar")
        await pilot.press("enter")
        views = list(app.model.jobs.values())

        def busy() -> bool:
            app.flush_engine_events()
            working = sum(w.state != "idle" for w in app.model.workers.values())
            return views[0].job.done or (views[0].downloaded > 100 and working >= 3)

        await _settle(pilot, busy, "the workers to be busy", rounds=3000)
        app.flush_engine_events()
        if not views[0].job.done:
            await _quiet(pilot)
            save("downloads-running")
        else:  # the engine reports a worker only while bytes stream: none caught busy
            print("note: no worker caught mid-transfer; downloads-running.svg not written",
                  file=sys.stderr)

        app._demo_server.faults = None
        for view in views:
            await asyncio.to_thread(view.job.wait, 300)
        app.flush_engine_events()
        await pilot.press("m")
        await _quiet(pilot)
        save("downloads")

        await pilot.press("f1")
        await _quiet(pilot)
        save("help")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--size", default="100x30", help="terminal size, WIDTHxHEIGHT")
    parser.add_argument("--demo-root", type=Path, default=None,
                        help="where the demo dataset lives (default: the app's demo cache)")
    args = parser.parse_args(argv)
    width, height = (int(x) for x in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="cheesechaser-shots-") as tmp:
        # before huggingface_hub is imported: its cache goes to the temporary folder
        os.environ["HF_HOME"] = str(Path(tmp) / "hf-home")
        os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
        os.environ.pop("HF_ENDPOINT", None)
        sys.path.insert(0, str(ROOT))
        args.out.mkdir(parents=True, exist_ok=True)
        written = asyncio.run(shoot(args.out, (width, height), args.demo_root, Path(tmp) / "dl"))
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
