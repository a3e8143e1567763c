"""Shard files: a webdataset tar (``KEY.EXT`` members, grouped by key) or a Parquet file with the
bytes in columns. Both are written to a temporary name beside the final one and renamed when
complete; the same samples in the same order give the same bytes (fixed member times, owners and
modes; no compression timestamps).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from typing import Any

from pools.files import open_exclusive, unlink_quiet

SAMPLE_COLUMNS = ("id", "key", "image", "image_name", "caption", "json", "sidecars")


class TarShard:
    """``add(key, members)`` appends a sample (``members``: extension -> bytes, written in that
    order); ``close()`` renames the finished tar into place."""

    suffix = ".tar"

    def __init__(self, final: str, tmp: str):
        self.final, self.tmp = final, tmp
        self._file = open_exclusive(tmp)
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT,
                                 copybufsize=1 << 20)  # a file in one or few writes, not 16 KiB ones
        self.bytes = 0

    def add(self, key: str, members: list[tuple[str, bytes]], record: dict[str, Any]) -> None:
        for ext, data in members:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))
            self.bytes += len(data)

    def close(self) -> None:
        self._tar.close()
        self._file.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        try:
            self._tar.close()
            self._file.close()
        finally:
            unlink_quiet(self.tmp)


class ParquetShard:
    """Rows of ``id, key, image, image_name, caption, json, sidecars`` (``sidecars``: the other
    files, as a list of ``{name, data}``), written in row groups of ``group`` samples."""

    suffix = ".parquet"

    def __init__(self, final: str, tmp: str, group: int = 256):
        import pyarrow as pa  # lazy: pyarrow only for Parquet output
        import pyarrow.parquet as pq

        self.pa = pa
        self.final, self.tmp = final, tmp
        self.schema = pa.schema([
            ("id", pa.int64()), ("key", pa.string()), ("image", pa.binary()), ("image_name", pa.string()),
            ("caption", pa.string()), ("json", pa.string()),
            ("sidecars", pa.list_(pa.struct([("name", pa.string()), ("data", pa.binary())]))),
        ])
        self._writer = pq.ParquetWriter(tmp, self.schema, compression="zstd")
        self._rows: list[dict] = []
        self.group = group
        self.bytes = 0

    def add(self, key: str, members: list[tuple[str, bytes]], record: dict[str, Any]) -> None:
        image_ext, image = record.get("image_ext"), None
        sidecars = []
        for ext, data in members:
            self.bytes += len(data)
            if ext == image_ext and image is None:
                image = data
            elif ext not in ("txt", "meta.json"):
                sidecars.append({"name": f"{key}.{ext}", "data": data})
        self._rows.append({"id": record["id"], "key": key, "image": image,
                           "image_name": f"{key}.{image_ext}" if image_ext else None,
                           "caption": record.get("caption"), "json": json.dumps(record["meta"], sort_keys=True),
                           "sidecars": sidecars})
        if len(self._rows) >= self.group:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(self.pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            unlink_quiet(self.tmp)


WRITERS = {"webdataset": TarShard, "parquet": ParquetShard}
