"""Public indexed-tar image datasets on the Hugging Face Hub, as picker presets.

A preset is one of cheesechaser's dataset classes (:mod:`pools.datapool.catalogue`) under a short
name: its repo, levels, access and notes are read from the class, and opening it builds the class
(danbooru2023's ``updates/`` folders are then found by listing the repo, not written here). Custom
presets from the config file describe a layout by hand.

``layout`` says how an id maps to an archive: ``"increment-id"`` (``id % 10**L`` picks
``images/0XYZ.tar``) or ``"data-XYZ"`` (archives named ``data-0XYZ.tar``/``data-1XYZ.tar`` with the
indexes in a separate repo; ``templates`` name them from ``id % 1000``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.core.settings import format_base_level
from pools.datapool import catalogue as classes


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
    #: the cheesechaser class this preset opens (its layout, not the fields above, is then used)
    dataset_class: str | None = None

    @property
    def gated(self) -> bool:
        return self.access != "public"

    @property
    def layout_label(self) -> str:
        if self.dataset_class and self.extra_layers == LISTED:
            return "data-XYZ.tar + updates/ (listed)"
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
        return ((self.layout == "increment-id" and self.base_level is not None) or bool(self.templates)
                or bool(self.dataset_class))


#: Jakaline/Danbooru2023_metadata's parquet conversion (6.39M posts, the Danbooru columns); the
#: file layout of a refs/convert/parquet branch is {config}/{split}/NNNN.parquet
DANBOORU2023_METADATA = "hf://datasets/Jakaline/Danbooru2023_metadata/default/train/*.parquet@refs/convert/parquet"

LISTED = ((10, "updates/*/…-{residue}.tar"),)  # shown for the classes that list their updates/ folder

DEMO = Preset("demo", "demo/booru-mini", 2, notes="embedded demo dataset on a loopback Hub")


_DANBOORU2023_NOTE = ("no longer public: DeepGHS members only (cheesechaser's own docs); use danbooru2024. "
                      "original/data-0XYZ.tar, recent/data-1XYZ.tar, then the updates/ series listed from the repo")
# repos cheesechaser's docs say are no longer public
NOT_PUBLIC = {"nyanko7/danbooru2023": _DANBOORU2023_NOTE}


def _from_class(name: str, class_name: str, notes: str = "", access: str | None = None, **fields) -> Preset:
    """A preset that opens ``class_name``: its repos and layout read off an instance (no network)."""
    cls = classes.CLASSES[class_name]
    pool = classes.build(class_name)
    repo = getattr(pool, "data_repo_id", None)
    if repo is None:
        raise ValueError(f"{class_name} reads more than one repo (its stable repo, then the newest): "
                         "name one of them")
    level = getattr(pool, "base_level", 3)
    if hasattr(pool, "layers"):  # archives named from id % 1000, maybe then updates/ listed
        fields.setdefault("layout", "data-XYZ")
        fields.setdefault("templates", tuple(t for m, t in pool.layers if m == 1000))
        if hasattr(pool, "update_layers"):
            fields.setdefault("extra_layers", LISTED)
        fields.setdefault("base_dir", fields["templates"][0].split("/")[0] if fields["templates"] else "images")
    if getattr(pool, "idx_repo_id", repo) != repo:
        fields.setdefault("idx_repo", pool.idx_repo_id)
    doc = " ".join((cls.__doc__ or "").split())
    if repo in NOT_PUBLIC:
        access, notes = "private", notes or NOT_PUBLIC[repo]
    if access is None:
        access = "gated" if getattr(cls, "gated", False) else "public"
    return Preset(name, repo, level, access=access, notes=notes or doc, dataset_class=class_name, **fields)


PRESETS: tuple[Preset, ...] = (
    Preset("danbooru_newest", "deepghs/danbooru_newest", 3,
           notes="newest posts (DanbooruNewestDataPool reads danbooru2023 first, then this repo)"),
    Preset("danbooru_newest-webp-4Mpixel", "deepghs/danbooru_newest-webp-4Mpixel", 3,
           notes="webp, at most 4 Mpixel (DanbooruNewestWebpDataPool's second repo)"),
    _from_class("danbooru2024-sfw", "Danbooru2024SfwDataPool"),
    _from_class("danbooru2024", "Danbooru2024DataPool"),
    _from_class("danbooru2024-webp-4Mpixel", "Danbooru2024WebpDataPool"),
    _from_class("danbooru2023", "DanbooruDataPool", metadata=DANBOORU2023_METADATA),
    _from_class("danbooru2023-webp-4Mpixel", "DanbooruWebpDataPool",
                "images/data-0XYZ.tar, images/data-1XYZ.tar, then the updates/ series listed from the repo"),
    _from_class("e621-2024", "E621DataPool", "original/data-0XYZ.tar"),
    Preset("e621_newest", "deepghs/e621_newest", 3, notes="E621NewestDataPool's second repo"),
    _from_class("gelbooru", "GelbooruDataPool"),
    _from_class("gelbooru-webp-4Mpixel", "GelbooruWebpDataPool"),
    _from_class("konachan", "KonachanDataPool"),
    _from_class("yande", "YandeDataPool"),
    _from_class("zerochan", "ZerochanDataPool"),
    _from_class("safebooru", "SafebooruDataPool"),
    _from_class("rule34", "Rule34DataPool"),
    _from_class("realbooru", "RealbooruDataPool"),
    _from_class("3dbooru", "ThreedbooruDataPool"),
    _from_class("anime_pictures", "AnimePicturesDataPool"),
    _from_class("nozomi", "NozomiDataPool"),
    _from_class("fancaps", "FancapsDataPool"),
    _from_class("bangumibase", "BangumiBaseDataPool"),
    _from_class("nhentai", "NHentaiImagesDataPool"),
    _from_class("civitai", "CivitaiDataPool", "an image and a JSON per id", access="private"),
    _from_class("sankaku", "SankakuDataPool", "0XYZ.tar in every folder under images/ (listed)"),
    _from_class("hentai_cosplay", "HentaiCosplayDataPool", "the id's archive in every folder that has one (listed)"),
)


def _the_other_classes() -> tuple[Preset, ...]:
    """Every other class that reads one repo (the WebP sets, the Stable views), named by its repo."""
    taken = {p.dataset_class for p in PRESETS} | {p.name for p in PRESETS}
    out = []
    for class_name in classes.CLASSES:
        if class_name in taken or not hasattr(classes.build(class_name), "data_repo_id"):
            continue
        preset = _from_class(class_name, class_name)
        short = preset.repo.split("/")[1] + ("-stable" if "Stable" in class_name else "")
        name = short if short not in taken else class_name
        taken.add(name)
        out.append(replace(preset, name=name))
    return tuple(out)


PRESETS += _the_other_classes()


def find_preset(repo: str) -> Preset | None:
    for preset in (DEMO, *PRESETS):
        if preset.repo == repo:
            return preset
    return None


def find_dataset(name: str) -> Preset | None:
    """The preset a name stands for: a preset's name, a class's name (cheesechaser's), or a repo id.
    ValueError for a class that reads more than one repo (the Newest pools)."""
    for preset in (DEMO, *PRESETS):
        if name in (preset.name, preset.dataset_class, preset.repo):
            return preset
    class_name = classes.dataset_class(name)
    return _from_class(class_name, class_name) if class_name else None
