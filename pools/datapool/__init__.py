"""``cheesechaser.datapool`` under this engine: replacing ``cheesechaser`` by ``pools`` in a script's
imports is the whole port. The reference API lives in :mod:`pools.base`; this package names it
where cheesechaser's scripts import it from, with cheesechaser 0.2.2's named dataset pools
(:mod:`pools.datapool.named`, :mod:`pools.datapool.series`)."""

from pools.base import (
    DataLocation,
    DataPool,
    FileUnrecognizableError,
    HfBasedDataPool,
    IncrementIDDataPool,
    InvalidResourceDataError,
    ResourceNotFoundError,
    id_modulo_cut,
)
from pools.datapool.listed import HentaiCosplayDataPool, SankakuDataPool
from pools.datapool.named import (
    AnimePicturesDataPool,
    AnimePicturesWebpDataPool,
    BangumiBaseDataPool,
    CivitaiDataPool,
    Danbooru2024DataPool,
    Danbooru2024SfwDataPool,
    Danbooru2024WebpDataPool,
    FancapsDataPool,
    GelbooruDataPool,
    GelbooruWebpDataPool,
    KonachanDataPool,
    KonachanWebpDataPool,
    NHentaiImagesDataPool,
    NozomiDataPool,
    RealbooruDataPool,
    Rule34DataPool,
    Rule34WebpDataPool,
    SafebooruDataPool,
    SafebooruWebpDataPool,
    SankakuWebpDataPool,
    ThreedbooruDataPool,
    YandeDataPool,
    YandeWebpDataPool,
    ZerochanDataPool,
    ZerochanWebpDataPool,
)
from pools.datapool.nhentai import NHentaiMangaDataPool
from pools.datapool.series import (
    DanbooruDataPool,
    DanbooruNewestDataPool,
    DanbooruNewestWebpDataPool,
    DanbooruStableDataPool,
    DanbooruWebpDataPool,
    E621DataPool,
    E621NewestDataPool,
    E621NewestWebpDataPool,
    E621StableDataPool,
    E621WebpDataPool,
)
from pools.datapool.table import SimpleTableHfDataPool, TableBasedHfDataPool

__all__ = [
    "DataLocation", "DataPool", "HfBasedDataPool", "IncrementIDDataPool", "InvalidResourceDataError",
    "FileUnrecognizableError", "ResourceNotFoundError", "id_modulo_cut",
    "AnimePicturesDataPool", "AnimePicturesWebpDataPool", "BangumiBaseDataPool", "CivitaiDataPool",
    "Danbooru2024DataPool", "Danbooru2024SfwDataPool", "Danbooru2024WebpDataPool", "FancapsDataPool",
    "GelbooruDataPool", "GelbooruWebpDataPool", "KonachanDataPool", "KonachanWebpDataPool",
    "NHentaiImagesDataPool", "NozomiDataPool", "RealbooruDataPool", "Rule34DataPool", "Rule34WebpDataPool",
    "SafebooruDataPool", "SafebooruWebpDataPool", "SankakuWebpDataPool", "ThreedbooruDataPool",
    "YandeDataPool", "YandeWebpDataPool", "ZerochanDataPool", "ZerochanWebpDataPool",
    "DanbooruDataPool", "DanbooruStableDataPool", "DanbooruWebpDataPool", "DanbooruNewestDataPool",
    "DanbooruNewestWebpDataPool", "E621DataPool", "E621StableDataPool", "E621WebpDataPool",
    "E621NewestDataPool", "E621NewestWebpDataPool", "SankakuDataPool", "HentaiCosplayDataPool",
    "TableBasedHfDataPool", "SimpleTableHfDataPool", "NHentaiMangaDataPool",
]
