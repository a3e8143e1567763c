"""Public indexed-tar image datasets on the Hugging Face Hub, as picker presets.

``layout`` says how an id maps to an archive: ``"increment-id"`` (``id % 10**L`` picks
``images/0XYZ.tar``) or ``"data-XYZ"`` (archives named ``data-0XYZ.tar``/``data-1XYZ.tar`` with the
indexes in a separate repo; ``templates`` name them from ``id % 1000``).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.settings import format_base_level


@dataclass(frozen=True)
class Preset:
    name: str
    repo: str
    base_level: int | list[int] | None = 3
    idx_repo: str | None = None
    base_dir: str = "images"
    layout: str = "increment-id"
    access: str = "public"  # "public" | "gated" | "private"
    notes: str = ""
    templates: tuple[str, ...] = ()  # data-XYZ layouts: archive paths from {residue} = id % 1000
    #: the metadata table to query (an hf:// URL); None: look for metadata.parquet or meta/*.parquet
    metadata: str | None = None
    #: column mapping for a table that does not use the Danbooru names, e.g. (("tags", "tag_list"),)
    columns: tuple[tuple[str, str], ...] = ()
    #: further archive layers after ``templates``: (modulus, template of {residue} = id % modulus)
    extra_layers: tuple[tuple[int, str], ...] = ()

    @property
    def gated(self) -> bool:
        return self.access != "public"

    @property
    def layout_label(self) -> str:
        if self.layout == "increment-id" and self.base_level is not None:
            return f"id % 10^{format_base_level(self.base_level).replace(',', ' then ')}"
        if self.templates:
            return "data-XYZ.tar"
        return self.layout

    @property
    def layers(self) -> tuple[tuple[int, str], ...]:
        """Every ``(modulus, template)`` archive layer, in the order they are tried."""
        return tuple((1000, t) for t in self.templates) + self.extra_layers

    @property
    def can_queue(self) -> bool:
        """Whether id ranges can be queued (the id -> archive rule is known)."""
        return (self.layout == "increment-id" and self.base_level is not None) or bool(self.templates)


#: Jakaline/Danbooru2023_metadata's parquet conversion (6.39M posts, the Danbooru columns); the
#: file layout of a refs/convert/parquet branch is {config}/{split}/NNNN.parquet
DANBOORU2023_METADATA = "hf://datasets/Jakaline/Danbooru2023_metadata/default/train/*.parquet@refs/convert/parquet"

DEMO = Preset("demo", "demo/booru-mini", 2, notes="embedded demo dataset on a loopback Hub")

PRESETS: tuple[Preset, ...] = (
    Preset("danbooru_newest", "deepghs/danbooru_newest", 3, notes="newest posts"),
    Preset("danbooru_newest-webp-4Mpixel", "deepghs/danbooru_newest-webp-4Mpixel", 3,
           notes="webp, at most 4 Mpixel"),
    Preset("danbooru2024-sfw", "deepghs/danbooru2024-sfw", 3),
    Preset("danbooru2024", "deepghs/danbooru2024", 3, access="gated"),
    Preset("danbooru2024-webp-4Mpixel", "deepghs/danbooru2024-webp-4Mpixel", 3, access="gated"),
    Preset("danbooru2023", "nyanko7/danbooru2023", None, idx_repo="deepghs/danbooru2023_index",
           base_dir="original", layout="data-XYZ",
           notes="original/data-0XYZ.tar, recent/data-1XYZ.tar, then updates/*/dataset-N.tar (N = id % 10); "
                 "index names like ./1000.png",
           templates=("original/data-0{residue:03d}.tar", "recent/data-1{residue:03d}.tar"),
           extra_layers=((10, "updates/20240319/dataset-{residue}.tar"),
                         (10, "updates/20240522/dataset-{residue}.tar")),
           metadata=DANBOORU2023_METADATA),
    Preset("danbooru2023-webp-4Mpixel", "KBlueLeaf/danbooru2023-webp-4Mpixel", None,
           idx_repo="deepghs/danbooru2023-webp-4Mpixel_index", layout="data-XYZ",
           notes="images/data-0XYZ.tar, images/data-1XYZ.tar",
           templates=("images/data-0{residue:03d}.tar", "images/data-1{residue:03d}.tar")),
    Preset("e621-2024", "boxingscorpionbagel/e621-2024", None, idx_repo="deepghs/e621-2024_index",
           base_dir="original", layout="data-XYZ", notes="original/data-0XYZ.tar",
           templates=("original/data-0{residue:03d}.tar",)),
    Preset("e621_newest", "deepghs/e621_newest", 3),
    Preset("gelbooru", "deepghs/gelbooru_full", [3, 4], access="gated"),
    Preset("gelbooru-webp-4Mpixel", "deepghs/gelbooru-webp-4Mpixel", 3, access="gated"),
    Preset("konachan", "deepghs/konachan_full", 3, access="gated"),
    Preset("yande", "deepghs/yande_full", 3, access="gated"),
    Preset("zerochan", "deepghs/zerochan_full", 3, access="gated"),
    Preset("safebooru", "deepghs/safebooru_full", [3, 4]),
    Preset("rule34", "deepghs/rule34_full", [3, 4]),
    Preset("realbooru", "deepghs/realbooru_full", 3, access="gated"),
    Preset("3dbooru", "deepghs/3dbooru_full", 3, access="gated"),
    Preset("anime_pictures", "deepghs/anime_pictures_full", 3, access="gated"),
    Preset("nozomi", "deepghs/nozomi_standalone_full", 3),
    Preset("fancaps", "deepghs/fancaps_full", 3, access="gated"),
    Preset("bangumibase", "deepghs/bangumibase_full", 3, access="gated"),
    Preset("nhentai", "deepghs/nhentai_full", 4),
    Preset("civitai", "deepghs/civitai_full", 4, access="private",
           notes="an image and a JSON per id"),
)


def find_preset(repo: str) -> Preset | None:
    for preset in (DEMO, *PRESETS):
        if preset.repo == repo:
            return preset
    return None
