"""A command's usage error: one escaped, bounded line on stderr, and exit code 2."""

from __future__ import annotations

import sys

from pools.text import shown

USAGE_ERROR = 2
ERROR_LIMIT = 500  # characters of one error line


def fail_usage(command: str, message: str) -> int:
    """Print ``cheesechaser-tui COMMAND: error: MESSAGE`` and return :data:`USAGE_ERROR`.
    Messages quote repos, endpoints and what the Hub said: escaped, one bounded line."""
    print(f"cheesechaser-tui {command}: error: {shown(message, ERROR_LIMIT)}", file=sys.stderr)
    return USAGE_ERROR
