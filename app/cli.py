"""The ``cheesechaser-tui`` command: the subcommand table, and the TUI's launch with its options.

The TUI by default; headless subcommands for scripts. A subcommand's module is imported only when
it runs: ``serve``, ``download`` and ``query`` never load Textual, so they start fast.
"""

from __future__ import annotations

import argparse
import sys

from app.core.config import load_config
from app.core.settings import (
    DEFAULT_DEST,
    DEFAULT_WORKERS,
    AppSettings,
    check_repo_id,
    default_token,
    parse_base_level,
)
from pools.datapool.catalogue import dataset_class
from pools.text import shown

SUBCOMMANDS = ("serve", "demo-data", "download", "query", "tui")


def _parser_for(command: str) -> argparse.ArgumentParser:
    prog = "cheesechaser-tui" if command == "tui" else f"cheesechaser-tui {command}"
    if command == "serve":
        from app.hub.serve_cli import add_serve_arguments  # lazy: start-up time of each subcommand
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Serve every dataset repo under ROOT/datasets/<owner>/<name>/ as a Hugging Face "
            "Hub-compatible endpoint on loopback; prints the base URL first."))
        add_serve_arguments(parser)
    elif command == "demo-data":
        from app.hub.demo import add_demo_arguments  # lazy: start-up time of each subcommand
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Write the demo dataset repo (real small images in indexed tars) under ROOT/datasets/."))
        add_demo_arguments(parser)
    elif command == "download":
        from app.commands.download import DOWNLOAD_EXAMPLES, add_download_arguments  # lazy: start-up time
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Download a range of resource ids from an indexed-tar dataset into a folder; "
            "rerunning resumes."), epilog=DOWNLOAD_EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        add_download_arguments(parser)
    elif command == "query":
        from app.commands.query import add_query_arguments  # lazy: start-up time (DuckDB)
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Query a dataset's metadata table with booru syntax (cat_ears -comic rating:g,s score:>=10) "
            "and print the matching ids or rows."))
        add_query_arguments(parser)
    else:
        parser = argparse.ArgumentParser(prog=prog, description=(
            "Browse an indexed-tar image dataset on the Hugging Face Hub, mark id ranges and "
            "download them. Subcommands: serve, demo-data, download, query (see 'COMMAND --help')."))
        add_tui_arguments(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cheesechaser-tui")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "tui"
    rest = argv[1:] if argv and argv[0] == command else argv
    parser = _parser_for(command)
    if command in ("query", "download"):  # positionals may come after options: `query R --count 'solo'`
        args = parser.parse_intermixed_args(dash_terms(parser, rest))
    else:
        args = parser.parse_args(rest)
    try:
        if command == "serve":
            from app.hub.serve_cli import run_serve  # lazy: start-up time of each subcommand
            return run_serve(args)
        if command == "demo-data":
            from app.hub.demo import run_demo_data  # lazy: start-up time of each subcommand
            return run_demo_data(args)
        if command == "download":
            from app.commands.download import run_download  # lazy: start-up time of each subcommand
            return run_download(args)
        if command == "query":
            from app.commands.query import run_query  # lazy: start-up time (DuckDB)
            return run_query(args)
        return run_tui(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def dash_terms(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """A booru query's negated terms start with ``-`` (``-rating:g``, ``-comic``), which argparse
    takes for options: a single-dash word that is none of the parser's options is a query term
    (handed over as ``--dash-terms``, joined to QUERY), and a value-taking option followed by
    one is given it (``--where -comic`` -> ``--where=-comic``). Unknown ``--words`` stay errors."""
    actions = parser._option_string_actions  # noqa: SLF001 - argparse has no public view of them

    def known(token: str) -> bool:
        name = token.split("=", 1)[0]
        return name in actions or (name.startswith("--") and any(o.startswith(name) for o in actions))

    def term(token: str) -> bool:
        return (token.startswith("-") and not token.startswith("--") and len(token) > 1 and not known(token)
                and not token[1:].replace(".", "", 1).isdigit())

    out: list[str] = []
    terms: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out += argv[i:]
            break
        action = actions.get(token)
        takes_value = action is not None and action.nargs is None and action.option_strings and (
            type(action).__name__ in ("_StoreAction", "_AppendAction"))
        if takes_value and i + 1 < len(argv) and term(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        (terms if term(token) else out).append(token)
        i += 1
    if terms and "--dash-terms" in actions:  # the query's own hidden option: joined to QUERY
        out += [f"--dash-terms={t}" for t in terms]
    else:
        out += terms  # argparse says they are not options of this command
    return out


# ---- the TUI: its options and its launch ----------------------------------------------------

def add_tui_arguments(parser: argparse.ArgumentParser) -> None:
    """The TUI's options,  (``cheesechaser-tui`` without subcommand)."""
    group = parser.add_argument_group("open a dataset")
    group.add_argument("--demo", action="store_true",
                       help="open the embedded demo dataset on a loopback Hub (works offline)")
    group.add_argument("--repo", help="dataset repo id, e.g. deepghs/danbooru_newest")
    group.add_argument("--idx-repo", help="repo holding the indexes, if not the data repo")
    group.add_argument("--revision", default="main", help="revision of the data repo (default main)")
    group.add_argument("--idx-revision", default=None, help="revision of the index repo")
    group.add_argument("--base-dir", default="images", help="folder of the archives (default images)")
    group.add_argument("--base-level", default="3",
                       help="digits of the id that pick the archive: 3, or 3,4 to try 3 then 4")
    group.add_argument("--token", default=None,
                       help="Hugging Face token (default: HF_TOKEN or the huggingface_hub login)")
    group.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or the Hub)")
    group.add_argument("--dest", default=None,
                       help=f"destination folder for downloads (default: the config's, else {DEFAULT_DEST})")
    group.add_argument("--workers", type=int, default=None,
                       help=f"download workers (default: the config's, else {DEFAULT_WORKERS})")


def settings_from_args(args: argparse.Namespace) -> AppSettings:
    config = load_config()  # ConfigError (a ValueError): one line naming the file and key
    demo = bool(getattr(args, "demo", False))
    token = getattr(args, "token", None)
    if token is None and not demo:
        token = default_token()
    repo = check_repo_id(getattr(args, "repo", None))
    layout_given = any(getattr(args, k, None) for k in ("base_level", "base_dir", "idx_repo"))
    return AppSettings(
        repo=repo,
        dataset_class=None if layout_given or not repo else dataset_class(repo),
        idx_repo=check_repo_id(getattr(args, "idx_repo", None), "index repo id"),
        revision=getattr(args, "revision", None) or "main",
        idx_revision=getattr(args, "idx_revision", None),
        base_dir=getattr(args, "base_dir", None) or "images",
        base_level=parse_base_level(getattr(args, "base_level", None) or "3"),
        token=token,
        demo=demo,
        endpoint=getattr(args, "endpoint", None) or config.endpoint,
        dst_dir=getattr(args, "dest", None) or config.destination or DEFAULT_DEST,
        workers=max(1, int(getattr(args, "workers", None) or config.workers or DEFAULT_WORKERS)),
        presets=tuple(config.presets),
        cluster=config.cluster,
    )


def run_tui(args: argparse.Namespace) -> int:
    """Run the app until the user quits; the return value is the process exit code."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"cheesechaser-tui: error: {shown(exc, 500)}", file=sys.stderr)
        return 2
    from app.tui.app import make_app  # lazy: Textual is imported only when the TUI really starts
    from app.tui.widgets.graphics import detect_graphics  # lazy: Textual, as above

    detect_graphics()  # asks the terminal for Kitty / Sixel graphics: only possible before run()
    app = make_app(settings)
    app.run()
    return int(app.return_code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
