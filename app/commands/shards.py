"""``download --format webdataset|parquet`` (and ``--resize``): the job written as training shards
through :func:`pools.shards.write_shards` instead of loose files."""

from __future__ import annotations

import argparse
import os
import sys

from app.commands.usage import ERROR_LIMIT
from app.core.format import fmt_elapsed, plural
from pools.errors import PoolError
from pools.shards import FORMATS, MODES, Resize, write_shards
from pools.shards.files import write_resized_files
from pools.text import shown


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training outputs (img2dataset's meanings)")
    group.add_argument("--format", choices=("files", *FORMATS), default="files",
                       help="files (default), webdataset tar shards or parquet shards (NNNNN.tar / NNNNN.parquet)")
    group.add_argument("--shard-size", type=int, default=10_000, metavar="N", help="samples per shard (default 10000)")
    group.add_argument("--shard-bytes", type=int, default=None, metavar="BYTES",
                       help="also close a shard once it holds this many bytes")
    group.add_argument("--resize", type=int, default=None, metavar="SIZE", help="resize images (files or shards)")
    group.add_argument("--resize-mode", choices=MODES, default="keep_ratio",
                       help="keep_ratio: smallest side SIZE; keep_ratio_largest: largest side SIZE; center_crop; "
                            "border; no (default keep_ratio)")
    group.add_argument("--resize-only-if-bigger", action="store_true", help="never enlarge a smaller image")
    group.add_argument("--image-format", choices=("jpg", "png", "webp"), default=None,
                       help="re-encode every image to one format (one image key in every sample)")
    group.add_argument("--quality", type=int, default=95, metavar="Q", help="jpg/webp quality (default 95)")


def wants_shards(args: argparse.Namespace) -> bool:
    return args.format != "files" or args.resize is not None or args.image_format is not None


def shard_problem(args: argparse.Namespace) -> str | None:
    """A usage error in the output options, or None."""
    if args.shard_size < 1 or (args.shard_bytes is not None and args.shard_bytes < 1):
        return "--shard-size and --shard-bytes must be at least 1"
    if args.cluster and wants_shards(args):
        return "--format webdataset/parquet and --resize run here, not on a cluster"
    try:
        Resize(args.resize, args.resize_mode, args.resize_only_if_bigger, args.image_format, args.quality)
    except ValueError as err:
        return str(err)
    return None


def run_shards(args: argparse.Namespace, pool, ids, table) -> int:
    """Write the shards; a summary on stderr; the exit code (1 when ids failed or the job did)."""
    how = Resize(args.resize, args.resize_mode, args.resize_only_if_bigger, args.image_format, args.quality)
    out = sys.stderr

    def on_shard(name: str, stats: dict) -> None:
        print(f"{name}: {plural(stats['samples'], 'sample')}, {stats['bytes']:,} bytes", file=out, flush=True)

    if args.format == "files":
        return _run_files(args, pool, ids, how, out)
    try:
        report = write_shards(pool, ids, args.output, format=args.format, shard_size=args.shard_size,
                              shard_bytes=args.shard_bytes, captions=table, resize=how if how.active else None,
                              workers=args.workers, on_shard=on_shard)
    except KeyboardInterrupt:
        print("interrupted: the complete shards are kept; run the same command again to go on", file=out)
        return 130
    except (PoolError, ValueError) as err:
        print(f"error: {shown(err, ERROR_LIMIT)} (complete shards are kept; run again to go on)", file=out)
        return 1
    kept = f", {plural(len(report.kept), 'shard')} kept from before" if report.kept else ""
    print(f"{plural(len(report.written), 'shard')} written{kept}: {plural(report.samples, 'sample')}, "
          f"{report.missing:,} missing, {len(report.failed):,} failed in {fmt_elapsed(report.seconds)} "
          f"-> {shown(os.path.abspath(args.output), ERROR_LIMIT)}", file=out)
    return _failures(report.failed, out)


def _run_files(args: argparse.Namespace, pool, ids, how: Resize, out) -> int:
    try:
        report = write_resized_files(pool, ids, args.output, how, workers=args.workers)
    except KeyboardInterrupt:
        print("interrupted: the files written are kept; run the same command again to go on", file=out)
        return 130
    except (PoolError, ValueError) as err:
        print(f"error: {shown(err, ERROR_LIMIT)}", file=out)
        return 1
    print(f"{plural(report.written, 'id')} written resized, {report.skipped:,} already there, "
          f"{report.missing:,} missing, {len(report.failed):,} failed -> "
          f"{shown(os.path.abspath(args.output), ERROR_LIMIT)}", file=out)
    return _failures(report.failed, out)


def _failures(failed: dict, out) -> int:
    """The first 20 failed ids with their reasons; the exit code (1 when any failed)."""
    for rid, reason in sorted(failed.items())[:20]:
        print(f"failed {rid}: {shown(reason, ERROR_LIMIT)}", file=out)
    return 1 if failed else 0
