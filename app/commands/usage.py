"""A command's usage error: one escaped, bounded line on stderr, and exit code 2."""

from __future__ import annotations

import sys

from app.core.catalogue import find_dataset
from pools.text import shown

USAGE_ERROR = 2
ERROR_LIMIT = 500  # characters of one error line


def fail_usage(command: str, message: str) -> int:
    """Print ``cheesechaser-tui COMMAND: error: MESSAGE`` and return :data:`USAGE_ERROR`.
    Messages quote repos, endpoints and what the Hub said: escaped, one bounded line."""
    print(f"cheesechaser-tui {command}: error: {shown(message, ERROR_LIMIT)}", file=sys.stderr)
    return USAGE_ERROR


def add_token_arguments(parser) -> None:
    parser.add_argument("--token", default=None, metavar="T",
                        help="Hub token (default: HF_TOKEN or the stored huggingface_hub login); a token "
                             "typed here shows in the process list: prefer HF_TOKEN or --token-file")
    parser.add_argument("--token-file", default=None, metavar="FILE",
                        help="read the Hub token from FILE (its first line)")


def apply_token(args, command: str) -> str | None:
    """Fill ``args.token`` from ``--token-file``; warn once that ``--token`` is visible to every
    local user (``ps``). The problem (one line), or None."""
    path = getattr(args, "token_file", None)
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read(4096).splitlines()
        except (OSError, UnicodeDecodeError) as err:
            return f"cannot read a token from --token-file {path}: {getattr(err, 'strerror', None) or 'not text'}"
        token = lines[0].strip() if lines else ""
        if not token:
            return f"--token-file {path} is empty"
        args.token = token
    elif getattr(args, "token", None):
        print(f"cheesechaser-tui {command}: warning: a token given with --token shows in the process list; "
              "use HF_TOKEN or --token-file instead", file=sys.stderr)
    return None


def named_dataset(args):
    """``(preset, problem)`` of ``--dataset NAME``: ``(None, None)`` without one (a REPO is then
    needed), the preset, or the problem with it (a class that reads two repos)."""
    if not args.dataset:
        return None, (None if args.repo else "give a REPO (or --dataset NAME)")
    try:
        return find_dataset(args.dataset), None
    except ValueError as err:
        return None, f"--dataset {args.dataset}: {err}"


def dataset_repo(args) -> str | None:
    """With ``--dataset NAME`` the REPO may be left out (``download --dataset gelbooru 1-100``):
    fill it from the dataset; the problem, or None."""
    preset, problem = named_dataset(args)
    if problem or preset is None:
        return problem  # an unknown name is said below, with the list of classes
    if args.repo is not None and args.ids is None and "/" not in args.repo:
        args.ids, args.repo = args.repo, None
    if args.repo is None:
        args.repo = preset.repo
    return None


def say_waits(out):
    """On a terminal, each retry of the first request is said as it starts: an unreachable Hub
    is not 20 silent seconds."""
    if not out.isatty():
        return None

    said: list[str] = []

    def on_wait(seconds: float, reason: str) -> None:
        if not said or said[-1] != reason:  # the countdown of one wait is told once, not every tick
            said.append(reason)
            print(f"{shown(reason, ERROR_LIMIT)} (Ctrl-C stops)", file=out, flush=True)
    return on_wait
