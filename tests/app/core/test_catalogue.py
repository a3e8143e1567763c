"""The catalogue follows shared/reference/public-datasets.md: gated flags, danbooru2023's combined
layouts, metadata tables where known."""

from __future__ import annotations

from app.core.catalogue import PRESETS, find_preset
from app.core.settings import AppSettings
from pools.combined import CombinedLayoutDataPool
from pools.metadata import parse_table_url

# the repos public-datasets.md marks gated (from the reference implementation's README, 2024-12)
GATED = {"deepghs/danbooru2024", "deepghs/danbooru2024-webp-4Mpixel", "deepghs/gelbooru_full",
         "deepghs/gelbooru-webp-4Mpixel", "deepghs/konachan_full", "deepghs/yande_full", "deepghs/zerochan_full",
         "deepghs/realbooru_full", "deepghs/3dbooru_full", "deepghs/anime_pictures_full", "deepghs/fancaps_full",
         "deepghs/bangumibase_full"}


def test_gated_flags():
    assert {p.repo for p in PRESETS if p.access == "gated"} == GATED
    assert find_preset("deepghs/civitai_full").access == "private"
    assert all(p.access == "public" for p in PRESETS if p.repo not in GATED | {"deepghs/civitai_full"})


def test_danbooru2023_combines_layouts():
    preset = find_preset("nyanko7/danbooru2023")
    assert preset.layers == ((1000, "original/data-0{residue:03d}.tar"), (1000, "recent/data-1{residue:03d}.tar"),
                             (10, "updates/20240319/dataset-{residue}.tar"),
                             (10, "updates/20240522/dataset-{residue}.tar"))
    settings = AppSettings(repo=preset.repo, idx_repo=preset.idx_repo, layout=preset.layout,
                           archive_templates=preset.templates, extra_layers=preset.extra_layers)
    pool = settings.make_pool()
    assert isinstance(pool, CombinedLayoutDataPool)
    assert pool.archives_for(6543217)[2:] == ["updates/20240319/dataset-7.tar", "updates/20240522/dataset-7.tar"]
    table = parse_table_url(preset.metadata)
    assert table.repo_id == "Jakaline/Danbooru2023_metadata" and table.revision == "refs/convert/parquet"
