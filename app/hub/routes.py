"""The Hub endpoints of the loopback Hub: which answer a request gets.

The subset of the Hub protocol that huggingface_hub, hfutils and cheesechaser use (see the
endpoint table in the project's hub-protocol notes): ``resolve`` HEAD/GET with ranges, repo info,
paged tree listings, paths-info, refs and whoami, with the error headers the client maps to its
exception classes. Access is checked per request against the hub's current rules and a fault is
drawn from its current dice, so both can be swapped while the server runs.

Stdlib only; no Textual.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import parse_qs, unquote, urlencode

from app.hub.access import INVALID_CREDENTIALS, RepoAccess, bearer_token
from app.hub.faults import NO_FAULT, Fault
from app.hub.handler import HubError, HubRequestHandler
from app.hub.repo import REPO_TYPES, Repo, Snapshot, iso_time, split_repo_path
from app.hub.resolve import CDN_PREFIX, FileAnswers

if TYPE_CHECKING:
    from app.hub.server import HubServer

__all__ = ["HubRoutes"]

TREE_PAGE = 1000
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


class HubRoutes:
    """Answers requests for a :class:`~app.hub.server.HubServer`, reading its repos, content hashes,
    access rules and fault dice at the time of each request."""

    def __init__(self, hub: "HubServer"):
        self.hub = hub
        self.files = FileAnswers(self)

    def route(self, h: HubRequestHandler, method: str, raw_path: str, query: str, body: bytes) -> None:
        parts = [unquote(p) for p in raw_path.split("/")[1:]]
        params = parse_qs(query, keep_blank_values=True)
        head = method == "HEAD"
        if h.server.role == "cdn":
            if len(parts) >= 2 and parts[0] == CDN_PREFIX[1:] and method in ("GET", "HEAD"):
                self.files.cdn(h, head, parts[1:], params)
                return
            raise HubError(404, "NoSuchKey")
        if len(parts) >= 2 and parts[:2] == ["api", "resolve-cache"] and method in ("GET", "HEAD"):
            self.files.resolve_cache(h, head, parts[2:])
            return
        if parts and parts[0] == "api":
            h.note_kind("api")
            fault = self.fault(h, "api", unquote(raw_path))
            if fault is None:
                return
            if len(parts) >= 4 and parts[1] in REPO_TYPES:
                self._api(h, method, parts[1], parts[2], parts[3], parts[4:], params, body, raw_path, fault)
                return
            if parts[1:] == ["whoami-v2"] and method in ("GET", "HEAD"):
                self._whoami(h, head)
                return
            if parts[1:] == ["agent-harnesses"] and method in ("GET", "HEAD"):
                # huggingface_hub fetches this registry once a day; an empty one disables detection.
                h.send_json({"standardEnvVars": [], "harnesses": {}}, head=head)
                return
            raise HubError(404, "Not found")
        if len(parts) >= 1 and parts[0] in ("datasets", "spaces"):
            repo_type, parts = parts[0], parts[1:]
        else:
            repo_type = "models"
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            owner, name, _, rev = parts[:4]
            self.files.resolve(h, head, repo_type, owner, name, rev, "/".join(parts[4:]))
            return
        raise HubError(404, "Not found")

    def fault(self, h: HubRequestHandler, kind: str, path: str) -> Fault | None:
        """Draw this request's fault; answer it here and return None when it ends the request."""
        dice = self.hub.dice
        if dice is None:
            return NO_FAULT
        fault = dice.draw(kind, path)
        if fault.latency_s:
            time.sleep(fault.latency_s)
        if fault.kind in ("429", "error"):
            h.note_fault(fault.kind)
            retry = str(dice.config.retry_after)
            if fault.kind == "429":
                err = HubError(429, "Too many requests (injected)", headers=[("Retry-After", retry)])
            else:
                err = HubError(fault.status, "Injected server error")
                if fault.status == 503:
                    err.headers.append(("Retry-After", retry))
            h.send_hub_error(err, head=h.command == "HEAD")
            return None
        if fault.kind == "drop" and kind == "head":
            h.note_fault("drop")
            h.abort()
            return None
        if kind == "head":
            return NO_FAULT
        return fault

    # ---- repos and access ----------------------------------------------------------------

    def _rules(self) -> dict[str, RepoAccess]:
        try:
            return self.hub.access_rules.current()
        except ValueError:
            # Fail closed: a broken access.json must not make private repos public.
            raise HubError(500, "The hub's access rules are broken") from None

    def open_repo(
        self, h: HubRequestHandler, repo_type: str, owner: str, name: str, files: bool, full: bool
    ) -> tuple[Repo, RepoAccess, Snapshot]:
        """The repo, or the error a client without access must see. Gated repos answer their
        metadata to everyone and guard only files (as the Hub does)."""
        token = bearer_token(h.headers.get("Authorization"))
        store = self.hub.store
        repo = store.get(repo_type, owner, name)
        rules = self._rules()
        rule = rules.get(f"{repo_type}/{owner}/{name}") or rules.get(f"{owner}/{name}") or RepoAccess()
        not_found = HubError(401 if token is None else 404, "Repository not found", "RepoNotFound")
        known = token is not None and any(token in r.tokens for r in rules.values())
        if repo is None:
            if token is not None and not known:
                # what a private repo answers this token: no existence oracle
                raise HubError(401, INVALID_CREDENTIALS)
            raise not_found
        if rule.private or (rule.gated and files):
            if token is None or token not in rule.tokens:
                if token is not None and not known:
                    raise HubError(401, INVALID_CREDENTIALS)
                if rule.private:
                    raise not_found
                raise HubError(
                    401 if token is None else 403,
                    f"Access to {repo_type[:-1]} {owner}/{name} is restricted. You must have access to it"
                    " and be authenticated to access it. Please log in.",
                    "GatedRepo",
                )
        try:
            snap = repo.snapshot(full=full)
        except FileNotFoundError:
            store.forget(repo.key)
            raise not_found from None
        return repo, rule, snap

    @staticmethod
    def check_rev(repo: Repo, snap: Snapshot, rev: str) -> None:
        if rev in ("main", "refs/heads/main") or rev.lower() == snap.sha:
            return
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    # ---- api -----------------------------------------------------------------------------

    def _whoami(self, h: HubRequestHandler, head: bool) -> None:
        token = bearer_token(h.headers.get("Authorization"))
        if token is None or not any(token in r.tokens for r in self._rules().values()):
            raise HubError(401, INVALID_CREDENTIALS)
        h.send_json(
            {"type": "user", "name": "loopback", "fullname": "Loopback Hub user", "orgs": [],
             "auth": {"type": "access_token", "accessToken": {"displayName": "loopback", "role": "read"}}},
            head=head,
        )

    def _api(
        self,
        h: HubRequestHandler,
        method: str,
        repo_type: str,
        owner: str,
        name: str,
        rest: list[str],
        params: dict[str, list[str]],
        body: bytes,
        raw_path: str,
        fault: Fault,
    ) -> None:
        head = method == "HEAD"
        get = method in ("GET", "HEAD")
        if get and (not rest or (len(rest) == 2 and rest[0] == "revision")):
            repo, rule, snap = self.open_repo(h, repo_type, owner, name, files=False, full=True)
            if rest:
                self.check_rev(repo, snap, rest[1])
            h.send_json(self._info(repo, rule, snap, _flag(params, "blobs")), head=head, fault=fault)
            return
        if get and len(rest) >= 2 and rest[0] == "tree":
            repo, _, snap = self.open_repo(h, repo_type, owner, name, files=False, full=True)
            self.check_rev(repo, snap, rest[1])
            self._tree(h, head, snap, "/".join(rest[2:]), params, raw_path, fault)
            return
        if method == "POST" and len(rest) == 2 and rest[0] == "paths-info":
            repo, _, snap = self.open_repo(h, repo_type, owner, name, files=False, full=True)
            self.check_rev(repo, snap, rest[1])
            self._paths_info(h, snap, body, fault)
            return
        if get and rest == ["refs"]:
            repo, _, snap = self.open_repo(h, repo_type, owner, name, files=False, full=True)
            h.send_json(
                {
                    "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": snap.sha}],
                    "converts": [],
                    "tags": [],
                    "pullRequests": [],
                },
                head=head,
                fault=fault,
            )
            return
        raise HubError(404, "Not found")

    def _info(self, repo: Repo, rule: RepoAccess, snap: Snapshot, blobs: bool) -> dict[str, Any]:
        siblings = []
        for rel in sorted(snap.files):
            e = snap.files[rel]
            sib: dict[str, Any] = {"rfilename": rel, "size": e.size}
            if blobs:
                entry = self.hub.hashes.tree_entry(rel, e)
                sib["blobId"] = entry["oid"]
                if "lfs" in entry:
                    lfs = entry["lfs"]
                    sib["lfs"] = {"sha256": lfs["oid"], "size": lfs["size"], "pointerSize": lfs["pointerSize"]}
            siblings.append(sib)
        owner = repo.repo_id.split("/")[0]
        gated: bool | str = rule.gated
        if gated is True:
            gated = "manual"
        created = min([e.mtime_ns for e in snap.files.values()] + [snap.last_modified_ns])
        info: dict[str, Any] = {
            "_id": snap.sha[:24],
            "id": repo.repo_id,
            "author": owner,
            "sha": snap.sha,
            "lastModified": iso_time(snap.last_modified_ns),
            "createdAt": iso_time(created),
            "private": rule.private,
            "gated": gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": snap.total_size,
        }
        if repo.repo_type == "models":
            info["modelId"] = repo.repo_id
        return info

    def _tree_entry(self, snap: Snapshot, rel: str, expand: bool) -> dict[str, Any]:
        e = snap.files.get(rel)
        if e is not None:
            out = self.hub.hashes.tree_entry(rel, e)
            mtime = e.mtime_ns
        else:
            out = {"type": "directory", "oid": snap.dir_oids.get(rel, ""), "size": 0, "path": rel}
            mtime = snap.dirs.get(rel, snap.last_modified_ns)
        if expand:
            out["lastCommit"] = {"id": snap.sha, "title": "Loopback snapshot", "date": iso_time(mtime)}
        return out

    def _tree(
        self,
        h: HubRequestHandler,
        head: bool,
        snap: Snapshot,
        path: str,
        params: dict[str, list[str]],
        raw_path: str,
        fault: Fault,
    ) -> None:
        rel = split_repo_path(path)
        if rel is None or (rel and rel not in snap.dirs):
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", [("X-Repo-Commit", snap.sha)])
        recursive = _flag(params, "recursive")
        expand = _flag(params, "expand")
        listing = snap.listing(rel, recursive)
        try:
            offset = _decode_cursor(params["cursor"][0]) if params.get("cursor") else 0
            limit = int(params["limit"][0]) if params.get("limit") else TREE_PAGE
        except (ValueError, KeyError):
            raise HubError(400, "Invalid cursor or limit") from None
        limit = max(1, min(TREE_PAGE, limit))
        page = listing[offset : offset + limit]
        headers: list[tuple[str, str]] = [("X-Repo-Commit", snap.sha)]
        if offset + limit < len(listing):
            q = {k: v[-1] for k, v in params.items() if k != "cursor"}
            q["cursor"] = _encode_cursor(offset + limit)
            headers.append(("Link", f'<{self._base_url(h)}{raw_path}?{urlencode(q)}>; rel="next"'))
        h.send_json([self._tree_entry(snap, p, expand) for p in page], headers, head=head, fault=fault)

    def _base_url(self, h: HubRequestHandler) -> str:
        host = h.headers.get("Host")
        if host and _HOST_RE.match(host):
            return f"http://{host}"
        return self.hub.url

    def _paths_info(self, h: HubRequestHandler, snap: Snapshot, body: bytes, fault: Fault) -> None:
        ctype = (h.headers.get("Content-Type") or "").lower()
        paths: list[str]
        expand = False
        if ctype.startswith("application/json"):
            try:
                data = json.loads(body or b"{}")
                paths = [str(p) for p in data.get("paths", [])]
                expand = bool(data.get("expand"))
            except (ValueError, AttributeError):
                raise HubError(400, "Invalid JSON body") from None
        else:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = _flag(form, "expand")
        out = []
        seen = set()
        for p in paths:
            rel = split_repo_path(p)
            if not rel or rel in seen or (rel not in snap.files and rel not in snap.dirs):
                continue
            seen.add(rel)
            out.append(self._tree_entry(snap, rel, expand))
        h.send_json(out, [("X-Repo-Commit", snap.sha)], fault=fault)


def _flag(params: Mapping[str, list[str]], key: str) -> bool:
    v = params.get(key)
    return bool(v) and v[-1].strip().lower() in ("1", "true", "yes", "on")


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    offset = json.loads(raw)["o"]
    if not isinstance(offset, int) or offset < 0:
        raise ValueError("bad cursor")
    return offset
