"""The clients the benchmarks compare, each run as its own child process.

Not a test module. ``python tests/bench/bench_clients.py CLIENT SPEC.json`` runs one download and prints
one JSON line: ``wall`` (seconds of the download call, imports excluded), ``cpu`` (user+sys of the
process over that call), ``rss_kb`` (the process's peak RSS, VmHWM), ``resolves`` (what the client
says it spent, when it says so). The child reads ``HF_ENDPOINT``/``HF_HOME`` from its environment.

Clients:

* ``peer``: cheesechaser 0.2.2's ``IncrementIDDataPool.batch_download_to_directory`` (run with
  the peer's own venv; nothing of this project is imported);
* ``ours``: this engine's ``IncrementIDDataPool.batch_download_to_directory``, same arguments;
* ``hfutils``: ``hfutils.index.hf_tar_file_download`` per file, on a thread pool of ``workers``;
* ``steps``: one thread doing what this engine must do per file, nothing more, each step timed
  (``tests/bench/bench_file_cost.py``): the index's resolve and its gzipped GET (the Hub's 307), its
  sha1 against the ETag, its lazy decode (``pools.archive.indexjson``), its write to a cache folder, the
  archive's resolve (302) and the ranged GET, sha256, one write;
* ``bare``: the floor: urllib3 only, ``workers`` threads sharing one pool of ``workers``
  connections; per archive one index GET (following the Hub's redirects), per file one ranged GET,
  sha256 while streaming, one write. No retry, no resume, no cache: the least a client can do.

SPEC: ``repo``, ``base_level``, ``ids``, ``tasks`` (``[archive, name]`` per file, for the clients
without a planner), ``dst``, ``workers``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time


def peak_rss_kb() -> int:
    # VmHWM is this image's own high-water mark; ru_maxrss may carry the parent's from the fork
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_peer(spec: dict):
    import logging

    logging.disable(logging.WARNING)
    from cheesechaser.datapool import IncrementIDDataPool

    pool = IncrementIDDataPool(spec["repo"], base_level=spec["base_level"])

    def run() -> dict:
        pool.batch_download_to_directory(spec["ids"], spec["dst"], max_workers=spec["workers"],
                                         save_metainfo=False, silent=True)
        return {}
    return run


def run_ours(spec: dict):
    from pools import IncrementIDDataPool

    pool = IncrementIDDataPool(spec["repo"], base_level=spec["base_level"])

    def run() -> dict:
        report = pool.batch_download_to_directory(spec["ids"], spec["dst"], max_workers=spec["workers"],
                                                  save_metainfo=False)
        out = {"state": getattr(report, "state", None), "failed": len(getattr(report, "failed", ()) or ())}
        if getattr(report, "resolves", None) is not None:
            out["resolves"] = report.resolves
        if getattr(report, "error", None):
            out["error"] = str(report.error)[:300]
        return out
    return run


def run_hfutils(spec: dict):
    from concurrent.futures import ThreadPoolExecutor

    from hfutils.index import hf_tar_file_download

    def one(task):
        archive, name = task
        hf_tar_file_download(spec["repo"], archive, name, os.path.join(spec["dst"], os.path.basename(name)),
                             repo_type="dataset", silent=True)

    def run() -> dict:
        os.makedirs(spec["dst"], exist_ok=True)
        with ThreadPoolExecutor(spec["workers"]) as ex:
            list(ex.map(one, spec["tasks"]))
        return {}
    return run


class _BareClient:
    def __init__(self, spec: dict) -> None:
        import urllib3

        self.spec = spec
        self.base = f"{os.environ['HF_ENDPOINT'].rstrip('/')}/datasets/{spec['repo']}/resolve/main/"
        self.http = urllib3.PoolManager(num_pools=4, maxsize=spec["workers"], block=True,
                                        retries=urllib3.Retry(total=3, redirect=5, backoff_factor=0.1))
        self.indexes: dict[str, dict] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.lock = threading.Lock()
        self.left: dict[str, int] = {}  # files still to fetch per archive: its index goes after the last
        for archive, _ in spec["tasks"]:
            self.left[archive] = self.left.get(archive, 0) + 1

    def index(self, archive: str) -> dict:
        with self.lock:
            lock = self.locks.setdefault(archive, threading.Lock())
        with lock:  # one GET per archive, whatever the number of its files
            if archive not in self.indexes:
                r = self.http.request("GET", self.base + archive[:-4] + ".json")
                if r.status != 200:
                    raise RuntimeError(f"index {archive}: HTTP {r.status}")
                self.indexes[archive] = json.loads(r.data)["files"]
            return self.indexes[archive]

    def done_with(self, archive: str) -> None:
        with self.lock:
            self.left[archive] -= 1
            if not self.left[archive]:
                self.indexes.pop(archive, None)

    def fetch(self, task) -> int:
        import hashlib

        archive, name = task
        entry = self.index(archive)[name]
        self.done_with(archive)
        start, size = entry["offset"], entry["size"]
        r = self.http.request("GET", self.base + archive, preload_content=False,
                              headers={"Range": f"bytes={start}-{start + size - 1}"})
        if r.status != 206:
            raise RuntimeError(f"{archive}: HTTP {r.status} to a ranged GET")
        sha = hashlib.sha256()
        path = os.path.join(self.spec["dst"], os.path.basename(name))
        with open(path + ".part", "wb") as f:
            for chunk in r.stream(1 << 20):
                sha.update(chunk)
                f.write(chunk)
        r.release_conn()
        if sha.hexdigest() != entry["sha256"]:
            raise RuntimeError(f"{name}: sha256 mismatch")
        os.replace(path + ".part", path)
        return size


def run_bare(spec: dict):
    from concurrent.futures import ThreadPoolExecutor

    client = _BareClient(spec)

    def run() -> dict:
        os.makedirs(spec["dst"], exist_ok=True)
        with ThreadPoolExecutor(spec["workers"]) as ex:
            list(ex.map(client.fetch, spec["tasks"]))
        return {}
    return run


def run_steps(spec: dict):
    import hashlib
    from collections import Counter

    import urllib3
    from pools.archive.indexjson import entry, loads_lazy

    endpoint = os.environ["HF_ENDPOINT"].rstrip("/")
    base = f"{endpoint}/datasets/{spec['repo']}/resolve/main/"
    http = urllib3.PoolManager(maxsize=2, retries=False)
    spent: Counter = Counter()

    class step:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            self.t = time.process_time()

        def __exit__(self, *exc):
            spent[self.name] += time.process_time() - self.t

    def follow(r):
        location = r.headers["Location"]
        return endpoint + location if location.startswith("/") else location

    def run() -> dict:
        os.makedirs(spec["dst"], exist_ok=True)
        cache = os.path.join(spec["dst"], ".cache")
        os.makedirs(cache, exist_ok=True)
        for archive, name in spec["tasks"]:
            with step("index: resolve (307)"):
                r = http.request("GET", base + archive[:-4] + ".json", redirect=False)
            with step("index: GET, gunzip"):
                r = http.request("GET", follow(r), headers={"Accept-Encoding": "gzip"})
                raw, etag = r.data, r.headers.get("ETag", "").strip('"')
            with step("index: sha1 (ETag)"):
                if hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest() != etag:
                    raise RuntimeError(f"{archive}: index altered")
            with step("index: lazy decode"):
                _, files = loads_lazy(raw)
                e = entry(files[name])
            with step("index: cache write"):
                with open(os.path.join(cache, archive.replace("/", "_") + ".json"), "wb") as f:
                    f.write(raw)
            with step("archive: resolve (302)"):
                r = http.request("GET", base + archive, redirect=False)
            with step("ranged GET, sha256, write"):
                start, size = e["offset"], e["size"]
                r = http.request("GET", follow(r), headers={"Range": f"bytes={start}-{start + size - 1}"})
                if hashlib.sha256(r.data).hexdigest() != e["sha256"]:
                    raise RuntimeError(f"{name}: sha256 mismatch")
                with open(os.path.join(spec["dst"], os.path.basename(name)), "wb") as f:
                    f.write(r.data)
        return {"steps": dict(spent)}
    return run


# each takes the spec, does its imports and set-up, and returns the timed call
CLIENTS = {"peer": run_peer, "ours": run_ours, "hfutils": run_hfutils, "bare": run_bare, "steps": run_steps}


def main() -> int:
    client, spec_file = sys.argv[1], sys.argv[2]
    with open(spec_file) as f:
        spec = json.load(f)
    run = CLIENTS[client](spec)  # imports and set-up happen here, outside the figures
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    extra = run()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_kb": peak_rss_kb(), **extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
