"""One id's files made into a shard sample: members named ``KEY.EXT``, the image resized or
re-encoded when asked, our caption (``txt``) and metadata (``meta.json``) beside the dataset's own
sidecars, never over them."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from typing import Any

import msgspec

from pools.shards.resize import Resize, apply, size_of

OUR_META = "meta.json"


def is_image(name: str) -> bool:
    mimetype, _ = mimetypes.guess_type(os.path.basename(name))
    return bool(mimetype and mimetype.startswith("image/"))


def _ext(rid: int, name: str) -> str:
    base = os.path.basename(name)
    head = f"{rid}."
    ext = base[len(head):] if base.startswith(head) else base.rpartition(".")[2]
    ext = "".join(c for c in ext.lower() if c.isalnum() or c in "._-").strip(".") or "bin"
    return ext


def make_sample(rid: int, files: dict[str, bytes], entries, archive: str, how: Resize | None) -> dict[str, Any]:
    """The sample of ``rid``: ``members`` (extension -> bytes, in a fixed order), ``image_ext``,
    ``width``/``height`` of the image, and ``meta`` (id, archive, every original file's name,
    sha256 and size). ImageError when the image cannot be decoded for a resize."""
    by_name = {e.basename: e for e in entries}
    members: list[tuple[str, bytes]] = []
    taken: set[str] = set()
    image_ext = width = height = image_sha = None
    originals = {}
    for name in sorted(files):
        data = files[name]
        entry = by_name.get(name)
        originals[name] = {"name": entry.name if entry else name, "size": len(data),
                           "sha256": entry.sha256 if entry and entry.sha256 else hashlib.sha256(data).hexdigest()}
        ext = _ext(rid, name)
        if is_image(name) and image_ext is None:
            image_sha = originals[name]["sha256"]
            if how is not None and how.active:
                data, ext, width, height = apply(data, how, ext)
            else:
                width, height = size_of(data)
            image_ext = ext
        n = 2
        base_ext = ext
        while ext in taken:  # two files of one id with one extension: the second is "2.EXT"
            ext, n = f"{n}.{base_ext}", n + 1
        taken.add(ext)
        members.append((ext, data))
    meta = {"id": rid, "archive": archive, "files": originals, "width": width, "height": height,
            "sha256": image_sha}
    return {"members": members, "image_ext": image_ext, "width": width, "height": height, "meta": meta}


def sample_meta(sample: dict[str, Any], caption: str | None, row: dict | None) -> dict[str, Any]:
    """Our metadata of a sample: the original files', with the caption and the table's row."""
    meta = dict(sample["meta"])
    if row:
        meta["row"] = row
    if caption is not None:
        meta["caption"] = caption
    return meta


def finish(sample: dict[str, Any], caption: str | None, row: dict | None,
           meta: dict[str, Any] | None = None) -> list[tuple[str, bytes]]:
    """The members with our caption (unless the dataset has its own ``txt``) and metadata added
    (``meta``: :func:`sample_meta`'s, when the caller already has it)."""
    members = list(sample["members"])
    exts = {ext for ext, _ in members}
    if meta is None:
        meta = sample_meta(sample, caption, row)
    if caption is not None:
        if "txt" not in exts:
            members.append(("txt", caption.encode("utf-8")))
    ours = OUR_META if OUR_META not in exts else "cheesechaser.json"
    members.append((ours, msgspec.json.encode(meta, order="sorted")))
    return members
