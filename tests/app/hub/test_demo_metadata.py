"""The demo's metadata.parquet agrees with its archives: sidecars, picture sizes, extensions; and it
lists posts the archives do not hold."""

from __future__ import annotations

import io
import json
import tarfile

from PIL import Image

from app.hub.dataset import repo_dir
from app.hub.demo import DEMO_REPO, demo_ids
from pools.metadata import open_table


def test_demo_table_matches_the_archives(demo_root):
    data = repo_dir(demo_root, DEMO_REPO)
    with open_table(str(data / "metadata.parquet")) as table:
        rows = {r.id: r for r in table.iter_rows()}
        tags = table.tags_of(list(rows))
    held = set(demo_ids())
    assert held <= set(rows)
    not_held = set(rows) - held
    assert len(not_held) > 100 and all(rid % 100 >= 48 for rid in not_held)
    sidecars = images = 0
    for tar_path in sorted((data / "images").glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                stem, _, ext = member.name.rpartition(".")
                if not stem.isdigit():
                    continue
                rid = int(stem)
                row = rows[rid]
                body = tar.extractfile(member).read()
                if ext == "json":
                    meta = json.loads(body)
                    assert (row.rating, row.score) == (meta["rating"][0], meta["score"])
                    assert tags[rid]["general"] == meta["tags"]
                    assert (row.width, row.height, row.ext) == (meta["width"], meta["height"], meta["file_ext"])
                    assert row.date.strftime("%Y-%m-%dT%H:%M:%SZ") == meta["created_at"]
                    sidecars += 1
                elif images < 300:
                    assert row.ext == ext
                    with Image.open(io.BytesIO(body)) as img:
                        assert (row.width, row.height) == img.size
                    images += 1
    assert sidecars > 100 and images == 300
