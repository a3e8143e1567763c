"""Who may read which repo on the loopback Hub.

Rules come from ``ROOT/access.json`` (re-read when it changes) and from ``HubServer(access=...)``;
both are ``{"owner/name" | "type/owner/name": {"private": bool, "gated": bool | "auto" | "manual",
"tokens": ["hf_..."]}}``. The rules given in code win over the file's for the same key.

Stdlib only; no Textual.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from app.hub.repo import REPO_TYPES

__all__ = ["RepoAccess", "AccessRules", "parse_access", "bearer_token", "INVALID_CREDENTIALS"]

logger = logging.getLogger("app.hub.server")  # one logger for the whole loopback hub

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


@dataclass(frozen=True)
class RepoAccess:
    """Access rule for one repo. ``gated`` may be True/"auto"/"manual"."""

    private: bool = False
    gated: bool | str = False
    tokens: frozenset[str] = frozenset()

    @classmethod
    def from_obj(cls, obj: Any) -> "RepoAccess":
        if not isinstance(obj, Mapping):
            raise ValueError("each access entry must be an object")
        tokens = obj.get("tokens") or ()
        if isinstance(tokens, str):
            tokens = (tokens,)
        if not all(isinstance(t, str) for t in tokens):
            raise ValueError("tokens must be strings")
        gated = obj.get("gated", False)
        if gated not in (True, False, "auto", "manual"):
            raise ValueError("gated must be true, false, 'auto' or 'manual'")
        return cls(private=bool(obj.get("private", False)), gated=gated, tokens=frozenset(tokens))


def parse_access(data: Any) -> dict[str, RepoAccess]:
    """``{"owner/name" | "datasets/owner/name": {...}}`` -> normalized keys."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError("access rules must be a JSON object")
    out: dict[str, RepoAccess] = {}
    for key, value in data.items():
        parts = str(key).strip("/").split("/")
        if len(parts) == 3 and parts[0] in REPO_TYPES:
            norm = "/".join(parts)
        elif len(parts) == 2:
            norm = "/".join(parts)
        else:
            raise ValueError(f"bad repo id in access rules: {key!r}")
        out[norm] = value if isinstance(value, RepoAccess) else RepoAccess.from_obj(value)
    return out


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class AccessRules:
    """The rules of ``access.json`` in the hub root, reloaded when the file changes, plus ``given``."""

    def __init__(self, path: Path, given: Mapping[str, Any] | None = None):
        self.path = path
        self.given = parse_access(given)
        self._file: tuple[tuple[int, int] | None, dict[str, RepoAccess]] = (None, {})
        self._lock = threading.Lock()

    def from_file(self) -> dict[str, RepoAccess]:
        """The file's rules. A broken file raises ValueError until a good version has been read;
        after that, a broken rewrite keeps the last good rules (with a warning)."""
        path = self.path
        try:
            st = path.stat()
            sig: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            sig = None
        with self._lock:
            if sig != self._file[0]:
                rules: dict[str, RepoAccess] = {}
                if sig is not None:
                    try:
                        rules = parse_access(json.loads(path.read_text("utf-8")))
                    except (OSError, ValueError) as e:
                        if self._file[0] is None:
                            raise ValueError(f"{path}: {e}") from None
                        logger.warning("loopback hub: ignoring broken %s (%s), keeping the old rules", path, e)
                        return self._file[1]
                self._file = (sig, rules)
            return self._file[1]

    def current(self) -> dict[str, RepoAccess]:
        """File rules overlaid with the given ones; ValueError when the file cannot be read."""
        rules = dict(self.from_file())
        rules.update(self.given)
        return rules
