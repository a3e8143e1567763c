"""Training sets out of a pool: webdataset tar shards or Parquet shards, resized on the way.

``write_shards(pool, ids, dst, format="webdataset", shard_size=10_000, captions=..., resize=Resize(512))``;
see :mod:`pools.shards.job`.
"""

from pools.shards.job import FORMATS, ShardReport, write_shards
from pools.shards.resize import MODES, Resize

__all__ = ["write_shards", "ShardReport", "Resize", "FORMATS", "MODES"]
