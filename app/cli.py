"""The ``cheesechaser-tui`` command: the TUI by default, headless subcommands for scripts.

Subcommands import what they need lazily: ``serve`` and ``download`` never load Textual.
"""

from __future__ import annotations

import argparse
import sys

SUBCOMMANDS = ("serve", "demo-data", "download", "query", "tui")


def _parser_for(command: str) -> argparse.ArgumentParser:
    prog = "cheesechaser-tui" if command == "tui" else f"cheesechaser-tui {command}"
    if command == "serve":
        from app.hub.server import add_serve_arguments
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Serve every dataset repo under ROOT/datasets/<owner>/<name>/ as a Hugging Face "
            "Hub-compatible endpoint on loopback; prints the base URL first."))
        add_serve_arguments(parser)
    elif command == "demo-data":
        from app.hub.demo import add_demo_arguments
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Write the demo dataset repo (real small images in indexed tars) under ROOT/datasets/."))
        add_demo_arguments(parser)
    elif command == "download":
        from app.download import DOWNLOAD_EXAMPLES, add_download_arguments
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Download a range of resource ids from an indexed-tar dataset into a folder; "
            "rerunning resumes."), epilog=DOWNLOAD_EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        add_download_arguments(parser)
    elif command == "query":
        from app.query_cli import add_query_arguments
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Query a dataset's metadata table with booru syntax (cat_ears -comic rating:g,s score:>=10) "
            "and print the matching ids or rows."))
        add_query_arguments(parser)
    else:
        from app.settings import add_tui_arguments
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Browse an indexed-tar image dataset on the Hugging Face Hub, mark id ranges and "
            "download them. Subcommands: serve, demo-data, download, query (see 'COMMAND --help')."))
        add_tui_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "tui"
    rest = argv[1:] if argv and argv[0] == command else argv
    parser = _parser_for(command)
    args = parser.parse_args(rest)
    try:
        if command == "serve":
            from app.hub.server import run_serve
            return run_serve(args)
        if command == "demo-data":
            from app.hub.demo import run_demo_data
            return run_demo_data(args)
        if command == "download":
            from app.download import run_download
            return run_download(args)
        if command == "query":
            from app.query_cli import run_query
            return run_query(args)
        from app.settings import run_tui
        return run_tui(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
