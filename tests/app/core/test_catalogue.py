"""The catalogue follows shared/reference/public-datasets.md: gated flags, danbooru2023's combined
layouts, metadata tables where known."""

from __future__ import annotations

from app.core.catalogue import PRESETS, find_dataset, find_preset
from app.core.settings import AppSettings
from pools.combined import CombinedLayoutDataPool
from pools.datapool import DanbooruDataPool
from pools.datapool import catalogue as classes
from pools.metadata import parse_table_url

# the repos public-datasets.md marks gated (from the reference implementation's README, 2024-12)
GATED = {"deepghs/danbooru2024", "deepghs/danbooru2024-webp-4Mpixel", "deepghs/gelbooru_full",
         "deepghs/gelbooru-webp-4Mpixel", "deepghs/konachan_full", "deepghs/yande_full", "deepghs/zerochan_full",
         "deepghs/realbooru_full", "deepghs/3dbooru_full", "deepghs/anime_pictures_full", "deepghs/fancaps_full",
         "deepghs/bangumibase_full"}


def test_gated_flags():
    assert {p.repo for p in PRESETS if p.access == "gated"} == GATED
    assert find_preset("deepghs/civitai_full").access == "private"
    # cheesechaser's danbooru.py: the original Danbooru datasets are no longer public
    assert find_preset("nyanko7/danbooru2023").access == "private"
    assert "no longer public" in find_preset("nyanko7/danbooru2023").notes
    private = {"deepghs/civitai_full", "nyanko7/danbooru2023"}
    assert all(p.access == "public" for p in PRESETS if p.repo not in GATED | private)


def test_a_preset_is_one_of_cheesechasers_classes():
    """The picker's presets, the CLI's --dataset and the classes are one list: a preset names its
    class, and its repo and levels are the class's."""
    bound = [p for p in PRESETS if p.dataset_class]
    one_repo = {n for n in classes.CLASSES if hasattr(classes.build(n), "data_repo_id")}
    assert {p.dataset_class for p in bound} == one_repo
    for preset in bound:
        pool = classes.build(preset.dataset_class)
        assert pool.data_repo_id == preset.repo, preset.name
        assert getattr(pool, "base_level", preset.base_level) == preset.base_level, preset.name
        assert find_dataset(preset.name) is preset and find_dataset(preset.dataset_class) is preset
    # the ones left without a class read one repo of a class that reads two (the Newest pools)
    assert all("Newest" in p.notes for p in PRESETS if not p.dataset_class)


def test_opening_danbooru2023_opens_its_class_which_lists_the_updates():
    preset = find_preset("nyanko7/danbooru2023")
    settings = AppSettings(repo=preset.repo, dataset_class=preset.dataset_class)
    pool = settings.make_pool()
    assert isinstance(pool, DanbooruDataPool) and isinstance(pool, CombinedLayoutDataPool)
    assert pool.layers == ((1000, "original/data-0{residue:03d}.tar"), (1000, "recent/data-1{residue:03d}.tar"))
    assert hasattr(pool, "update_layers")  # the updates/ series come from listing the repo, not from here
    assert settings.can_queue
    table = parse_table_url(preset.metadata)
    assert table.repo_id == "Jakaline/Danbooru2023_metadata" and table.revision == "refs/convert/parquet"
