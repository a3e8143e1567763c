"""cheesechaser's dataset classes by name and by the repo they read: ``--dataset NAME`` and a repo id
that a class serves both give the class, and :func:`build` makes any of them from one set of
arguments (their constructors differ: ``revision``, or ``data_revision`` and ``idx_revision``)."""

from __future__ import annotations

import inspect
from typing import Any, Optional

from pools.datapool import listed, named, nhentai, series

CLASSES: dict[str, type] = {
    cls.__name__: cls for module in (named, series, listed, nhentai) for cls in vars(module).values()
    if isinstance(cls, type) and cls.__module__ == module.__name__ and not cls.__name__.startswith("_")
    and cls.__name__.endswith("DataPool") and cls.__name__ not in ("RepoDataPool", "ListedUpdatesDataPool",
                                                                    "FallbackDataPool")
}
# the repo each class reads (its data repo), for a repo id given without a class
BY_REPO: dict[str, str] = {
    **{cls.repo: name for name, cls in CLASSES.items() if isinstance(getattr(cls, "repo", None), str)},
    "nyanko7/danbooru2023": "DanbooruDataPool", "KBlueLeaf/danbooru2023-webp-4Mpixel": "DanbooruWebpDataPool",
    "boxingscorpionbagel/e621-2024": "E621DataPool", "NebulaeWis/e621-2024-webp-4Mpixel": "E621WebpDataPool",
    "deepghs/sankaku_full": "SankakuDataPool", "deepghs/hentai_cosplay_trans": "HentaiCosplayDataPool",
}


def dataset_class(name_or_repo: str) -> str | None:
    """The class a name (``GelbooruDataPool``) or a repo id (``deepghs/gelbooru_full``) stands for."""
    if name_or_repo in CLASSES:
        return name_or_repo
    return BY_REPO.get(name_or_repo)


def build(name: str, *, revision: str = "main", idx_revision: Optional[str] = None,
          hf_token: Optional[str] = None, endpoint: Optional[str] = None, retry: Any = None):
    """An instance of class ``name``; KeyError for a name that is none of cheesechaser's classes."""
    cls = CLASSES[name]
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {"hf_token": hf_token, "endpoint": endpoint, "retry": retry}
    if "revision" in params:
        kwargs["revision"] = revision
    elif "data_revision" in params:
        kwargs.update(data_revision=revision, idx_revision=idx_revision or "main")
    return cls(**kwargs)


def class_of(pool: Any) -> str | None:
    """The name of ``pool``'s class when it is one of cheesechaser's (not a subclass of one)."""
    name = type(pool).__name__
    return name if CLASSES.get(name) is type(pool) else None
