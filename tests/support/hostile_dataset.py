"""A dataset repo whose names were written by an attacker, for the display tests (not a test module).

Archive paths and member names hold what a terminal acts on (``ESC[2J`` clears the screen,
``ESC]0;… BEL`` retitles the window, ``\\x9b`` is a one-byte CSI, DEL, a bidi override) and Rich
markup (``[red]x[/]``, ``[link=…]``) that a widget reading markup would interpret. The loopback Hub
serves them as any repo: the tree listing, the indexes and the ranged GETs are all real HTTP.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from app.hub.dataset import build_repo, repo_dir
from pools.archive.layout import index_path
from pools.text import is_unsafe_text

REPO = "t/hostile"
EVIL = "\x1b[2J\x1b]0;pwned\x07[red]x[/]\u202e\x9b\x7f"
"""One string with every kind of trouble; what must be seen instead is ``shown(EVIL)``."""
LINK = "[link=mailto:x@evil.example]click[/link]"  # no "//": it is also a path

EVIL_ARCHIVE = f"images/{EVIL}.tar"
"""Listed by the tree; its index is fine and names id 5."""
BROKEN_TEMPLATE = f"images/{LINK}\u202e\x9b\x7f-{{residue:03d}}.tar"
"""No C0 control in it: a template holding one is refused up front (tested as a usage error)."""
BROKEN_ARCHIVE = BROKEN_TEMPLATE.format(residue=6)
"""Listed by the tree (the archive of id 6 for ``--archive-template BROKEN_TEMPLATE``); its index
is not JSON, so every message about it quotes its path."""
ARCHIVE = "images/0000.tar"
"""The archive of ids 1000 and 2000, with hostile member names beside them."""
HOSTILE_MEMBERS = {
    f"{EVIL}.png": b"not an id",
    f"{LINK}.bin": b"markup",
    f"sub{EVIL}/3000.bin": b"hidden in a folder",
    "\u202egnp.exe": b"reversed",
}
ESCAPED = ("\\x1b[2J", "\\x1b]0;pwned\\x07", "\\u202e", "\\x9b", "\\x7f")
"""What a user sees where ``EVIL`` was: the escapes, visibly."""


def build_hostile_repo(root: str | os.PathLike) -> None:
    """Write ``REPO`` under ``root`` with fixed mtimes (the Hub's commit sha stays the same)."""
    resources = {rid: {f"{rid}.bin": random.Random(rid).randbytes(2000)} for rid in (1000, 2000)}
    build_repo(root, REPO, resources, extra_members={
        ARCHIVE: HOSTILE_MEMBERS,
        EVIL_ARCHIVE: {"5.bin": b"five"},
        BROKEN_ARCHIVE: {"6.bin": b"six"},
    })
    (repo_dir(root, REPO) / index_path(BROKEN_ARCHIVE)).write_bytes(b"{not json " + EVIL.encode())
    for path in sorted(Path(repo_dir(root, REPO)).rglob("*"), reverse=True):
        os.utime(path, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))


def raw_troubles(text: str) -> list[str]:
    """The characters of ``text`` a terminal would act on (empty when it is safe to print)."""
    return sorted({c for c in text if c not in "\n" and is_unsafe_text(c)}, key=ord)
