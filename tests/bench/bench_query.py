"""Benchmark (prints figures; not a test): counting a booru query over an 8-million-row table.

    python tests/bench/bench_query.py [--rows 8000000] [--repeat 5] [--skip-pandas] [--cache DIR]

A synthetic Danbooru-schema table (Danbooru-like tag strings: ~25 general tags a post from a
Zipf-ish vocabulary of 20,000, `1girl` on ~60 % of posts, `solo` ~45 %, meta tags such as `comic`
and `highres`) is generated once with DuckDB and cached on disk. Then, each in its own child
process, side by side in the same run:

* **ours**: ``open_table`` + ``count('1girl solo -comic rating:g,s score:>=10 width:>=1024')``:
  time to open, the first (cold) count in a fresh process, then warm counts;
* **pandas**, the script users write today: ``pd.read_parquet`` of the columns the filter needs,
  then ``str.contains`` filters (whole-tag regexes) and comparisons; load time, first and warm filter.

Each child reports its peak RSS (``VmHWM``). Both must count the same posts. Goals (issue 12):
warm count < 1 s on the 2-core machine, >= 10x faster than the pandas script, < 1.5 GB RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUERY = "1girl solo -comic rating:g,s score:>=10 width:>=1024"
VOCAB = 20000
GENERAL_TAGS = 25

_GENERATE = f"""
COPY (
  SELECT
    id,
    md5(id::VARCHAR) AS md5,
    TIMESTAMP '2005-05-24 00:00:00' + to_seconds(id * 7) AS created_at,
    CAST(pow((hash(id * 11 + 2) % 1000) / 1000.0, 4) * 300 AS INTEGER) - 5 AS score,
    CASE WHEN hash(id * 11 + 1) % 100 < 45 THEN 'g' WHEN hash(id * 11 + 1) % 100 < 75 THEN 's'
         WHEN hash(id * 11 + 1) % 100 < 88 THEN 'q' ELSE 'e' END AS rating,
    CAST(400 + hash(id * 11 + 3) % 3800 AS INTEGER) AS image_width,
    CAST(400 + hash(id * 11 + 4) % 3800 AS INTEGER) AS image_height,
    CASE WHEN hash(id * 11 + 5) % 10 < 5 THEN 'jpg' WHEN hash(id * 11 + 5) % 10 < 9 THEN 'png' ELSE 'webp' END
      AS file_ext,
    concat_ws(' ',
      CASE WHEN hash(id * 11 + 6) % 100 < 60 THEN '1girl' END,
      CASE WHEN hash(id * 11 + 7) % 100 < 45 THEN 'solo' END,
      array_to_string(list_transform(range({GENERAL_TAGS}),
        lambda k: 'tag_' || CAST(pow((hash(id * 131 + k) % 100000) / 100000.0, 3) * {VOCAB} AS INTEGER)), ' ')
    ) AS tag_string_general,
    CASE WHEN hash(id * 11 + 8) % 100 < 35 THEN 'char_' || (hash(id * 11 + 9) % 50000) ELSE '' END
      AS tag_string_character,
    CASE WHEN hash(id * 11 + 8) % 100 < 60 THEN 'series_' || (hash(id * 11 + 10) % 8000) ELSE 'original' END
      AS tag_string_copyright,
    'artist_' || (hash(id * 11 + 11) % 200000) AS tag_string_artist,
    concat_ws(' ',
      CASE WHEN hash(id * 11 + 12) % 100 < 4 THEN 'comic' END,
      CASE WHEN hash(id * 11 + 13) % 100 < 50 THEN 'highres' END,
      CASE WHEN hash(id * 11 + 14) % 100 < 8 THEN 'absurdres' END,
      CASE WHEN hash(id * 11 + 15) % 100 < 6 THEN 'translated' END) AS tag_string_meta
  FROM range(1, ? + 1) t(id)
  ORDER BY id
) TO '{{out}}' (FORMAT parquet, COMPRESSION zstd)
"""


def default_cache() -> Path:
    from platformdirs import user_cache_dir
    return Path(user_cache_dir("cheesechaser-tui")) / "bench-query"


def table_path(cache: Path, rows: int) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"posts-{rows}.parquet"
    if not path.exists():
        import duckdb

        print(f"generating {rows:,} rows into {path} (once; cached)…", flush=True)
        started = time.perf_counter()
        tmp = path.with_suffix(".tmp.parquet")
        con = duckdb.connect()
        con.execute(_GENERATE.format(out=str(tmp).replace("'", "''")), [rows])
        con.close()
        os.replace(tmp, path)
        print(f"  {time.perf_counter() - started:.1f} s, {path.stat().st_size / 2**20:,.0f} MiB", flush=True)
    return path


# ---- the children -----------------------------------------------------------------------------

def _rss_mib() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would carry the parent's peak across fork+exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_ours(path: str, repeat: int, index_dir: str | None = None) -> dict:
    started = time.perf_counter()
    from pools.metadata import open_table
    table = open_table(path, index_dir=index_dir)  # auto: a table this big is queried from its copy
    opened = time.perf_counter() - started
    t = time.perf_counter()
    count = table.count(QUERY)
    cold = time.perf_counter() - t
    warm = []
    for _ in range(repeat):
        t = time.perf_counter()
        again = table.count(QUERY)
        warm.append(time.perf_counter() - t)
        assert again == count
    out = {"open": opened, "cold": cold, "warm": statistics.median(warm), "warm_min": min(warm),
           "count": count, "rss_mib": _rss_mib(), "built": table.index_built, "copy": table.index_path}
    if table.index_path:
        out["copy_mib"] = os.path.getsize(table.index_path) / 2**20
        out["build_s"] = (table.index_meta or {}).get("seconds")
    return out


def child_pandas(path: str, repeat: int) -> dict:
    started = time.perf_counter()
    import pandas as pd
    cols = ["id", "rating", "score", "image_width", "tag_string_general", "tag_string_character",
            "tag_string_copyright", "tag_string_artist", "tag_string_meta"]
    df = pd.read_parquet(path, columns=cols)
    loaded = time.perf_counter() - started

    def has(tag: str):
        pattern = rf"(?:^| ){tag}(?: |$)"
        hit = None
        for col in cols[4:]:
            m = df[col].str.contains(pattern, regex=True, na=False)
            hit = m if hit is None else hit | m
        return hit

    def run() -> int:
        mask = has("1girl") & has("solo") & ~has("comic") & df["rating"].isin(["g", "s"]) \
            & (df["score"] >= 10) & (df["image_width"] >= 1024)
        return int(mask.sum())

    t = time.perf_counter()
    count = run()
    first = time.perf_counter() - t
    warm = []
    for _ in range(max(1, repeat // 2)):
        t = time.perf_counter()
        assert run() == count
        warm.append(time.perf_counter() - t)
    return {"open": loaded, "cold": first, "warm": statistics.median(warm), "warm_min": min(warm),
            "count": count, "rss_mib": _rss_mib()}


def run_child(kind: str, path: Path, repeat: int, index_dir: Path | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    extra = ["--index-dir", str(index_dir)] if index_dir else []
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--table", str(path), "--repeat", str(repeat),
                          *extra],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="warm counts per child (median shown)")
    parser.add_argument("--cache", type=Path, default=None, help="where the generated table is kept")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--rebuild", action="store_true",
                        help="delete the table's DuckDB copy first, so the cold open includes building it")
    parser.add_argument("--child", choices=("ours", "pandas"), help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.child == "ours":
            print(json.dumps(child_ours(args.table, args.repeat, args.index_dir)))
        else:
            print(json.dumps(child_pandas(args.table, args.repeat)))
        return 0

    path = table_path(args.cache or default_cache(), args.rows)
    print(f"query: {QUERY!r} over {args.rows:,} rows ({path.stat().st_size / 2**20:,.0f} MiB parquet), "
          f"{os.cpu_count()} cores; each side in a fresh child process")
    index_dir = (args.cache or default_cache()) / "copies"
    if args.rebuild and index_dir.is_dir():
        for old in index_dir.glob("*.duckdb"):
            old.unlink()
    results = {"ours cold": run_child("ours", path, args.repeat, index_dir)}  # builds the copy if missing
    results["ours"] = run_child("ours", path, args.repeat, index_dir)  # a fresh process: the copy is there
    cold = results["ours cold"]
    if "error" not in cold:
        what = f"built in {cold['build_s']:.1f} s" if cold.get("built") else "already built (use --rebuild)"
        print(f"DuckDB copy: {cold.get('copy_mib', 0):,.0f} MiB, {what}")
    if not args.skip_pandas:
        results["pandas"] = run_child("pandas", path, args.repeat)
    print(f"{'':9} {'open/load':>10} {'1st count':>10} {'warm count':>11} {'warm min':>9} {'peak RSS':>10} {'matches':>10}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:9} failed: {r['error']}")
            continue
        print(f"{name:9} {r['open']:>9.2f}s {r['cold']:>9.2f}s {r['warm']:>10.3f}s {r['warm_min']:>8.3f}s "
              f"{r['rss_mib']:>7,.0f} MiB {r['count']:>10,}")
    ours, pandas = results["ours"], results.get("pandas")
    if "error" in ours:
        return 1
    goals = [f"warm count {ours['warm']:.3f} s {'<' if ours['warm'] < 1 else '>='} 1 s",
             f"peak RSS {ours['rss_mib']:,.0f} MiB {'<' if ours['rss_mib'] < 1536 else '>='} 1.5 GB"]
    if "error" not in cold:
        goals.append(f"peak RSS of the first open (building the copy when missing) {cold['rss_mib']:,.0f} MiB")
    if pandas and "error" not in pandas:
        if pandas["count"] != ours["count"]:
            print(f"MISMATCH: pandas counts {pandas['count']:,}, ours {ours['count']:,}")
            return 1
        speedup = pandas["warm"] / ours["warm"]
        end_to_end = (pandas["open"] + pandas["cold"]) / (ours["open"] + ours["cold"])
        goals.append(f"warm count {speedup:.1f}x the pandas script's filter ({'met' if speedup >= 10 else 'not met'}: >= 10x)")
        goals.append(f"open + first count {end_to_end:.1f}x the pandas script's load + filter")
    for line in goals:
        print("  " + line)
    print("(provisional: the machine is shared while these run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
