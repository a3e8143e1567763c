"""Which dataset, and how its archives are laid out: the one description every pool is made from.

:class:`DatasetSpec` makes the engine pool (:meth:`DatasetSpec.make_pool`) for the TUI, the
``download`` command, a cluster's workers (a spec is picklable and callable, as
:class:`pools.cluster.runner.PoolSpec` is) and a job resumed from the session store (its
:meth:`record`, which never holds the token). :meth:`of_pool` reads one back from a pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pools import ArchiveTemplateDataPool, CombinedLayoutDataPool, IncrementIDDataPool
from pools.datapool import catalogue

INCREMENT_ID = "increment-id"  # archives by id % 10**base_level
DATA_XYZ = "data-XYZ"  # archives named by templates from id % 1000 (danbooru2023's data-0XYZ.tar)


@dataclass(frozen=True)
class DatasetSpec:
    """A repo and its layout; ``token`` and ``retry`` are never shown (repr) nor recorded."""

    repo: str
    idx_repo: str | None = None
    revision: str = "main"
    idx_revision: str | None = None
    base_dir: str = "images"
    base_level: int | list[int] = 3
    archive_templates: tuple[str, ...] = ()
    """For data-XYZ layouts: archive paths from ``{residue}`` = id % 1000, tried in order."""
    extra_layers: tuple[tuple[int, str], ...] = ()
    """Further ``(modulus, template)`` layers tried after ``archive_templates`` (danbooru2023's updates)."""
    endpoint: str | None = None
    dataset_class: str | None = None
    """One of cheesechaser's dataset classes (``GelbooruDataPool``...): its repos and layout, the
    fields above but ``revision``, ``idx_revision`` and ``endpoint`` then unused."""
    token: str | None = field(default=None, repr=False, compare=False)
    retry: Any = field(default=None, repr=False, compare=False)

    @property
    def layout(self) -> str:
        if self.dataset_class:
            return self.dataset_class
        return DATA_XYZ if self.archive_templates or self.extra_layers else INCREMENT_ID

    def make_pool(self):
        """The engine pool (no network yet); ValueError for a bad level or template."""
        if not self.repo:
            raise ValueError("no repo id")
        if self.dataset_class:
            if self.dataset_class not in catalogue.CLASSES:
                raise ValueError(f"no dataset class {self.dataset_class!r}: one of "
                                 f"{', '.join(sorted(catalogue.CLASSES))}")
            return catalogue.build(self.dataset_class, revision=self.revision or "main",
                                   idx_revision=self.idx_revision, hf_token=self.token or None,
                                   endpoint=self.endpoint or None, retry=self.retry)
        common = dict(data_revision=self.revision or "main", idx_repo_id=self.idx_repo or None,
                      hf_token=self.token or None, endpoint=self.endpoint or None, retry=self.retry)
        if self.extra_layers:
            return CombinedLayoutDataPool(
                self.repo, idx_revision=self.idx_revision or "main",
                layers=tuple((1000, t) for t in self.archive_templates) + tuple(self.extra_layers), **common)
        if self.archive_templates:
            return ArchiveTemplateDataPool(self.repo, idx_revision=self.idx_revision or "main",
                                           archive_templates=self.archive_templates, **common)
        # an index repo of its own is read at main unless told; the data repo's own indexes at its revision
        idx_revision = self.idx_revision or (self.revision if not self.idx_repo else "main") or "main"
        return IncrementIDDataPool(self.repo, idx_revision=idx_revision, base_level=self.base_level,
                                   base_dir=self.base_dir, **common)

    def __call__(self):
        """On a cluster's worker: the pool (the runner builds pools by calling their spec)."""
        return self.make_pool()

    # -- the session store's form
    def record(self, demo_endpoint: str | None = None) -> dict[str, Any]:
        """What rebuilds the pool in another process (never the token). A pool on the app's own
        demo Hub is marked ``demo``: its port changes from run to run."""
        demo = bool(demo_endpoint and self.endpoint == demo_endpoint)
        return {
            "repo": self.repo, "revision": self.revision, "idx_repo": self.idx_repo,
            "idx_revision": self.idx_revision, "base_level": self.base_level, "base_dir": self.base_dir,
            "layout": self.layout, "archive_templates": list(self.archive_templates),
            "layers": [[int(m), str(t)] for m, t in self.extra_layers],
            "endpoint": None if demo else self.endpoint, "demo": demo,
            "class": self.dataset_class,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], *, demo_endpoint: str | None = None, token: str | None = None,
                    retry: Any = None) -> DatasetSpec:
        """The spec a :meth:`record` describes; a demo's pool goes to ``demo_endpoint``, without a token."""
        demo = bool(record.get("demo"))
        level = record.get("base_level", 3)
        return cls(
            repo=record["repo"], idx_repo=record.get("idx_repo"), revision=record.get("revision") or "main",
            idx_revision=record.get("idx_revision"), base_dir=record.get("base_dir") or "images",
            base_level=level[0] if isinstance(level, list) and len(level) == 1 else level,
            archive_templates=tuple(record.get("archive_templates") or ()),
            extra_layers=tuple((int(m), str(t)) for m, t in (record.get("layers") or ())),
            endpoint=demo_endpoint if demo else record.get("endpoint"), dataset_class=record.get("class"),
            token=None if demo else token, retry=retry)

    @classmethod
    def of_pool(cls, pool) -> DatasetSpec:
        """The spec of a pool made here (or by hand): its repos, revisions, layout and endpoint."""
        name = catalogue.class_of(pool)
        if name is not None and not hasattr(pool, "data_repo_id"):  # a pool of pools (the Newest ones)
            first = pool.pools[0] if hasattr(pool, "pools") else pool.images_pool
            return cls(repo=first.data_repo_id, endpoint=first.client.given_endpoint, dataset_class=name)
        return cls(
            dataset_class=name, repo=pool.data_repo_id, revision=pool.data_revision,
            idx_repo=pool.idx_repo_id if pool.idx_repo_id != pool.data_repo_id else None,
            idx_revision=pool.idx_revision, base_level=getattr(pool, "base_level", 3),
            base_dir=getattr(pool, "base_dir", "images"),
            archive_templates=tuple(getattr(pool, "archive_templates", ()) or ()),
            extra_layers=tuple((int(m), str(t)) for m, t in (getattr(pool, "layers", ()) or ())),
            endpoint=pool.client.given_endpoint)
