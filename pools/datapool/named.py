"""cheesechaser 0.2.2's named dataset pools whose archives follow ``id % 10**L`` in one repo.

Each class is cheesechaser's, by name and constructor (``revision``, ``hf_token``; the endpoint
and retry policy of this engine as keyword extras), with the same repo, revision for data and
indexes alike, base level and ``images/`` folder. ``gated`` says whether the repo needs a token of
an account that accepted its terms (``shared/reference/public-datasets.md``, from cheesechaser's
README); a gated repo without access is "access denied, accept its terms", never "missing".
The pools that list their repo or combine several repos live beside these (see ``__init__``).
"""

from __future__ import annotations

from typing import ClassVar, Optional

from pools.base import IncrementIDDataPool
from pools.transport.retry import RetryPolicy


class RepoDataPool(IncrementIDDataPool):
    """A dataset in one repo: ``repo``, ``base_level`` (a tuple: tried in order) and ``gated``."""

    repo: ClassVar[str]
    base_levels: ClassVar[tuple[int, ...]] = (3,)
    gated: ClassVar[bool] = False

    def __init__(self, revision: str = 'main', hf_token: Optional[str] = None, *,
                 endpoint: Optional[str] = None, retry: Optional[RetryPolicy] = None):
        levels = self.base_levels
        IncrementIDDataPool.__init__(
            self, self.repo, data_revision=revision, idx_repo_id=self.repo, idx_revision=revision,
            base_level=levels[0] if len(levels) == 1 else list(levels), base_dir="images",
            hf_token=hf_token, endpoint=endpoint, retry=retry)


class AnimePicturesDataPool(RepoDataPool):
    repo, gated = "deepghs/anime_pictures_full", True


class AnimePicturesWebpDataPool(RepoDataPool):
    repo = "deepghs/anime_pictures-webp-4Mpixel"


class BangumiBaseDataPool(RepoDataPool):
    repo, gated = "deepghs/bangumibase_full", True


class CivitaiDataPool(RepoDataPool):
    """Private on the Hub: an image and a JSON file per id."""
    repo, base_levels = "deepghs/civitai_full", (4,)


class Danbooru2024DataPool(RepoDataPool):
    repo, gated = "deepghs/danbooru2024", True


class Danbooru2024SfwDataPool(RepoDataPool):
    repo = "deepghs/danbooru2024-sfw"


class Danbooru2024WebpDataPool(RepoDataPool):
    repo, gated = "deepghs/danbooru2024-webp-4Mpixel", True


class FancapsDataPool(RepoDataPool):
    repo, gated = "deepghs/fancaps_full", True


class GelbooruDataPool(RepoDataPool):
    repo, base_levels, gated = "deepghs/gelbooru_full", (3, 4), True


class GelbooruWebpDataPool(RepoDataPool):
    repo, gated = "deepghs/gelbooru-webp-4Mpixel", True


class KonachanDataPool(RepoDataPool):
    repo, gated = "deepghs/konachan_full", True


class KonachanWebpDataPool(RepoDataPool):
    repo = "deepghs/konachan-webp-4Mpixel"


class NHentaiImagesDataPool(RepoDataPool):
    repo, base_levels = "deepghs/nhentai_full", (4,)


class NozomiDataPool(RepoDataPool):
    repo = "deepghs/nozomi_standalone_full"


class RealbooruDataPool(RepoDataPool):
    repo, gated = "deepghs/realbooru_full", True


class Rule34DataPool(RepoDataPool):
    repo, base_levels = "deepghs/rule34_full", (3, 4)


class Rule34WebpDataPool(RepoDataPool):
    repo = "deepghs/rule34-webp-4Mpixel"


class SafebooruDataPool(RepoDataPool):
    repo, base_levels = "deepghs/safebooru_full", (3, 4)


class SafebooruWebpDataPool(RepoDataPool):
    repo = "deepghs/safebooru-webp-4Mpixel"


class SankakuWebpDataPool(RepoDataPool):
    repo = "deepghs/sankaku-webp-4Mpixel"


class ThreedbooruDataPool(RepoDataPool):
    repo, gated = "deepghs/3dbooru_full", True


class YandeDataPool(RepoDataPool):
    repo, gated = "deepghs/yande_full", True


class YandeWebpDataPool(RepoDataPool):
    repo = "deepghs/yande-webp-4Mpixel"


class ZerochanDataPool(RepoDataPool):
    repo, gated = "deepghs/zerochan_full", True


class ZerochanWebpDataPool(RepoDataPool):
    repo = "deepghs/zerochan-webp-4Mpixel"


NAMED = tuple(cls for cls in list(globals().values())
              if isinstance(cls, type) and issubclass(cls, RepoDataPool) and cls is not RepoDataPool)
