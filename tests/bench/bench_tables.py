"""The tables ``tests/bench/bench_download.py`` prints: medians of the runs, floors, goals.

Not a test module. ``render_tables`` gives plain aligned text, or markdown (``--markdown``) ready
for the README's Figures section, headed by the command that produced it.
"""

from __future__ import annotations

import os
import platform
import statistics

from bench_common import CLIENT_NAMES, goal, mib

SPEED_GOALS = {"dense": 5.0, "sparse": 2.0, "sparse-warm": 2.2, "rerun": 15.0}
RATE_GOALS = {"sparse": 1.3, "dense": 10.0}


class Cell:
    """The median of one client's runs of one case, or why there is none."""

    def __init__(self, runs: list[dict] | None) -> None:
        runs = runs or []
        self.runs = runs
        ok = [r for r in runs if "wall" in r and r["good"] == r["files"]]
        self.complete = bool(runs) and len(ok) == len(runs)
        self.ok = ok
        bad = [r for r in runs if r not in ok]
        self.why = ""
        if not runs:
            self.why = "not run"
        elif bad:
            r = bad[0]
            self.why = (f"failed: {r['error']}" if "wall" not in r
                        else f"incomplete: {r['good']}/{r['files']} files")

    def med(self, key: str, sub: str | None = None) -> float | None:
        if not self.complete:
            return None
        values = [r[sub][key] if sub else r.get(key) for r in self.ok]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    @property
    def files(self) -> int:
        return self.runs[0]["files"] if self.runs else 0

    def text(self, fmt, key: str, sub: str | None = None) -> str:
        v = self.med(key, sub)
        return fmt(v) if v is not None else (self.why or "–")


def _secs(v): return f"{v:.2f} s"
def _ms(v): return f"{v:.1f} ms"
def _x(v): return f"**{v:.1f}x**"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def speed_table(results, meta, args) -> tuple[str, list[str], list[list[str]], list[str]]:
    lat, w = args.latency_ms, args.workers
    head = ["scenario", "cheesechaser 0.2.2", "this engine", "speed-up", "floor", "ours / floor",
            "CPU/file peer", "CPU/file ours", "peak RSS peer", "peak RSS ours", "goal"]
    rows, notes = [], []
    for name in ("dense", "sparse", "sparse-warm", "rerun"):
        if name not in meta:
            continue
        (label, case), = meta[name]["cases"].items()
        idx_hops, data_hops = meta[name]["hops"]
        peer, ours = Cell(results.get((name, label, "peer"))), Cell(results.get((name, label, "ours")))
        n_files, n_arch = case["files"], case["archives"]
        requests = 0 if name in ("sparse-warm", "rerun") else n_arch * idx_hops
        if name != "rerun":
            requests += n_arch * (data_hops - 1) + n_files
        floor = (1 + requests / w) * lat / 1000  # the revision's API call comes first, alone
        requests += 1
        what = {"dense": f"dense: {n_files} ids in {n_arch} archives, cold",
                "sparse": f"sparse: {n_files} ids, one per archive, cold",
                "sparse-warm": "sparse, indexes already in the hf cache",
                "rerun": f"rerun: dense again, all {n_files} files present"}[name]
        up = _ratio(peer.med("wall"), ours.med("wall"))
        def cpu(c, n=n_files):
            return c.text(lambda v: _ms(1000 * v / n), "cpu")
        rows.append([what, peer.text(_secs, "wall"), ours.text(_secs, "wall"), _x(up) if up else "–",
                     f"{floor:.2f} s ({requests} req)", f"{ours.med('wall') / floor:.2f}x" if ours.med("wall") and floor else "–",
                     cpu(peer), cpu(ours), peer.text(mib, "rss_kb"), ours.text(mib, "rss_kb"),
                     goal(None if up is None else up >= SPEED_GOALS[name], f"≥ {SPEED_GOALS[name]:g}x")])
    notes.append(f"Floor: {lat:g} ms for the revision's API call, then the requests a minimal client needs "
                 f"x {lat:g} ms / {w} workers: per archive its index unless cached ({meta_hops(meta, 0)} "
                 "request(s) each) and one resolve when the Hub redirects archives to a CDN; one ranged GET "
                 "per file to fetch.")
    return "Against cheesechaser 0.2.2 and the floor", head, rows, notes


def meta_hops(meta, i: int) -> int:
    return next((m["hops"][i] for m in meta.values()), 1)


def real_table(results, meta, args):
    (label, case), = meta["sparse-real"]["cases"].items()
    order = ("peer", "hfutils", "ours", "bare")
    cells = {c: Cell(results.get(("sparse-real", label, c))) for c in order}
    head = [""] + [CLIENT_NAMES[c] for c in order]
    n = case["files"]

    def cpu_per_file(c):
        return cells[c].text(lambda v: _ms(1000 * v / n), "cpu")

    rows = [["wall"] + [cells[c].text(_secs, "wall") for c in order],
            ["CPU per downloaded file"] + [cpu_per_file(c) for c in order],
            ["peak RSS"] + [cells[c].text(mib, "rss_kb") for c in order],
            ["requests served"] + [cells[c].text(lambda v: f"{v:,.0f}", "requests", "served") for c in order]]
    ours, peer, bare = cells["ours"], cells["peer"], cells["bare"]
    up, over = _ratio(peer.med("wall"), ours.med("wall")), _ratio(ours.med("wall"), bare.med("wall"))
    cpu = ours.med("cpu")
    rss = ours.med("rss_kb")
    notes = [(f"{n} ids, one per archive; each index lists {args.real_entries:,} entries; "
              f"{args.latency_ms:g} ms per request, {args.workers} workers."),
             "Goals: " + "; ".join([
                 goal(None if up is None else up >= 2, f"≥ 2x cheesechaser 0.2.2 ({up:.2f}x)" if up else "≥ 2x cheesechaser 0.2.2"),
                 goal(None if over is None else over <= 1.3, f"within 1.3x of the bare client ({over:.2f}x)" if over else "within 1.3x of the bare client"),
                 goal(None if cpu is None else 1000 * cpu / n < 10, "CPU per file under 10 ms"),
                 goal(None if rss is None else rss * 1024 < 150e6, "peak RSS under 150 MB")])]
    return "Real-sized indexes: one file in each of many archives", head, rows, notes


def quota_floor(resolves: int, args) -> float:
    """The least wall time ``resolves`` resolves can take under the quota: whole windows waited."""
    return max(0, -(-resolves // args.quota) - 1) * args.window


def rate_table(results, meta, args):
    head = ["ids", "wall peer", "wall ours", "speed-up", "quota floor (ours)", "resolves/file peer",
            "resolves/file ours", "resolves/archive ours", "files per window peer", "files per window ours",
            "429s peer / ours", "goal"]
    rows, said = [], []
    for scenario in ("rate-limited", "rate-limited-warm"):
        if scenario not in meta:
            continue
        warm = scenario.endswith("-warm")
        for label, case in meta[scenario]["cases"].items():
            peer = Cell(results.get((scenario, label, "peer")))
            ours = Cell(results.get((scenario, label, "ours")))
            n, arch = case["files"], case["archives"]

            def per(c, div):
                return c.text(lambda v: f"{(v - c.med('limited', 'served')) / div:.2f}", "resolves", "served")

            def per_window(c, n=n):
                return c.text(lambda v: f"{n / (v / args.window):.1f}", "wall")

            up = _ratio(peer.med("wall"), ours.med("wall"))
            spent = ours.med("resolves", "served")
            spent = None if spent is None else spent - ours.med("limited", "served")
            least = arch * (1 if warm else 2)  # per archive: its data resolve, and its index's unless cached
            what = (f"one per archive: {n} ids in {arch} archives" if label == "sparse"
                    else f"dense: {n} ids in {arch} archives") + (", indexes cached" if warm else "")
            g = RATE_GOALS[label]
            ok = None if up is None else (up >= g and spent <= 2 * arch)
            rows.append([what, peer.text(_secs, "wall"), ours.text(_secs, "wall"), _x(up) if up else "–",
                         f"{quota_floor(least, args):.0f} s ({least} resolves)",
                         per(peer, n), per(ours, n), per(ours, arch), per_window(peer), per_window(ours),
                         (f"{peer.text(lambda v: f'{v:.0f}', 'limited', 'served')} / "
                          f"{ours.text(lambda v: f'{v:.0f}', 'limited', 'served')}"),
                         goal(ok, f"completes, ≤ 2 resolves/archive, ≥ {g:g}x")])
            own = ours.med("resolves")
            if own is not None:
                said.append(f"{what} {own:.0f}")
    notes = [(f"Resolver quota {args.quota} per {args.window:g} s window (429 with RateLimit headers, no "
              f"Retry-After); {args.latency_ms:g} ms per request, {args.workers} workers. Resolves: "
              "/resolve/ requests the Hub answered (429s counted apart). Quota floor: the whole windows "
              "a client must wait to spend the fewest resolves the job needs (an index and a data resolve "
              "per archive, the data resolve alone when the index is cached)."
              + (f" This engine's own count (report.resolves): {'; '.join(said)}." if said else ""))]
    return "Under the Hub's resolver rate limit", head, rows, notes


def big_table(results, meta, args):
    (label, case), = meta["big"]["cases"].items()
    bare, ours = Cell(results.get(("big", label, "bare"))), Cell(results.get(("big", label, "ours")))
    nbytes = bare.med("bytes") or ours.med("bytes") or 0

    def mbs(c):
        return c.text(lambda v: f"{nbytes / v / 1e6:,.0f} MB/s", "wall")

    ratio = _ratio(bare.med("wall"), ours.med("wall"))
    head = ["", f"bare urllib3 client ({args.workers} connections)", "this engine", "ours / bare"]
    rows = [["throughput", mbs(bare), mbs(ours), f"**{ratio:.2f}**" if ratio else "–"],
            ["wall", bare.text(_secs, "wall"), ours.text(_secs, "wall"), ""],
            ["CPU per GiB", bare.text(lambda v: f"{v / (nbytes / 2**30):.2f} s", "cpu"),
             ours.text(lambda v: f"{v / (nbytes / 2**30):.2f} s", "cpu"), ""],
            ["peak RSS", bare.text(mib, "rss_kb"), ours.text(mib, "rss_kb"), ""]]
    notes = [f"{case['files']} files of 5-20 MiB ({nbytes / 2**30:.2f} GiB) in {case['archives']} archives, "
             "no added latency. " + goal(None if ratio is None else ratio >= 0.8, "≥ 0.8 of the bare client's MB/s")]
    return "Big files", head, rows, notes


def render(head: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        align = ["---"] + ["---:"] * (len(head) - 1)
        return "\n".join("| " + " | ".join(r) + " |" for r in [head, align, *rows])
    rows = [[str(c).replace("**", "") for c in r] for r in rows]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(wd) for c, wd in zip(r, widths)).rstrip() for r in [head, *rows])


def render_tables(results, meta, args, command: str, markdown: bool = False) -> str:
    builders = [("dense", speed_table), ("sparse-real", real_table), ("rate-limited", rate_table),
                ("big", big_table)]
    out = []
    if markdown:
        out.append(f"`{command}` ({os.cpu_count()} CPUs, Python {platform.python_version()}; median of "
                   f"{args.rounds} alternating run(s))")
    for key, build in builders:
        present = key in meta or (key == "dense" and any(k in meta for k in SPEED_GOALS)) or (
            key == "rate-limited" and "rate-limited-warm" in meta)
        if not present:
            continue
        title, head, rows, notes = build(results, meta, args)
        if not rows:
            continue
        out += ["", f"#### {title}" if markdown else f"== {title}", "", render(head, rows, markdown), ""]
        out += notes
    if not markdown:
        out += ["", f"Reproduce: {command}"]
    return "\n".join(out)
