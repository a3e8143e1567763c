"""A pool whose ids may live under several layouts at once, each with its own modulus.

danbooru2023 keeps its posts in ``original/data-0XYZ.tar`` and ``recent/data-1XYZ.tar``
(XYZ = id % 1000) and its later posts in ``updates/20240319/dataset-N.tar`` and
``updates/20240522/dataset-N.tar`` (N = id % 10): one modulus cannot say that. Here every layer is
``(modulus, template)``; an id's candidate archives are each layer's ``template.format(residue=id %
modulus)``, tried in order (the planner walks :meth:`archive_layers` and stops at the first index
that holds the id). An extension; the reference has no such class.
"""

from __future__ import annotations

from typing import Iterable, List, Optional

from pools.archive.layout import safe_basename
from pools.base import HfBasedDataPool
from pools.transport import RetryPolicy

__all__ = ["CombinedLayoutDataPool", "parse_layer", "DANBOORU2023_LAYERS"]

DANBOORU2023_LAYERS: tuple[tuple[int, str], ...] = (
    (1000, "original/data-0{residue:03d}.tar"),
    (1000, "recent/data-1{residue:03d}.tar"),
    (10, "updates/20240319/dataset-{residue}.tar"),
    (10, "updates/20240522/dataset-{residue}.tar"),
)


def _check_layer(modulus: int, template: str) -> tuple[int, str]:
    if not isinstance(modulus, int) or isinstance(modulus, bool) or modulus < 1:
        raise ValueError(f"a layer's modulus must be a positive integer, got {modulus!r}")
    try:
        path = template.format(residue=0)
    except (KeyError, IndexError, ValueError):
        raise ValueError(f"archive template {template!r} must use only {{residue}}") from None
    if "{residue" not in template:
        raise ValueError(f"archive template {template!r} must hold {{residue}}")
    if not path.endswith(".tar") or safe_basename(path) is None or path.startswith("/") or \
            any(seg in ("", ".", "..") for seg in path.split("/")):
        raise ValueError(f"archive template {template!r} must name a .tar inside the repo")
    return modulus, template


def parse_layer(text: str, default_modulus: int = 1000) -> tuple[int, str]:
    """``"10:updates/x/dataset-{residue}.tar"`` or a bare template (``default_modulus``)."""
    head, sep, rest = text.partition(":")
    if sep and head.strip().isdigit():
        return _check_layer(int(head), rest)
    return _check_layer(default_modulus, text)


class CombinedLayoutDataPool(HfBasedDataPool):
    """Archives named by several ``(modulus, template)`` layers, tried in order."""

    def __init__(self, data_repo_id: str, data_revision: str = 'main',
                 idx_repo_id: Optional[str] = None, idx_revision: str = 'main',
                 layers: Iterable[tuple[int, str]] = DANBOORU2023_LAYERS,
                 hf_token: Optional[str] = None, *, endpoint: Optional[str] = None,
                 retry: Optional[RetryPolicy] = None):
        HfBasedDataPool.__init__(self, data_repo_id=data_repo_id, data_revision=data_revision,
                                 idx_repo_id=idx_repo_id, idx_revision=idx_revision, hf_token=hf_token,
                                 endpoint=endpoint, retry=retry)
        checked = tuple(_check_layer(int(m) if not isinstance(m, bool) else m, t) for m, t in layers)
        if not checked:
            raise ValueError("give at least one (modulus, template) layer")
        self.layers = checked

    def all_layers(self) -> tuple[tuple[int, str], ...]:
        """The layers tried, in order (a subclass may add some it finds by listing the repo)."""
        return self.layers

    def _request_possible_archives(self, resource_id) -> List[str]:
        rid = int(resource_id)
        out: list[str] = []
        for modulus, template in self.all_layers():
            path = template.format(residue=rid % modulus)
            if path not in out:
                out.append(path)
        return out

    def archive_layers(self):
        if not self._own("_request_possible_archives", CombinedLayoutDataPool):
            return None
        return [(modulus, (lambda residue, t=template: t.format(residue=residue)))
                for modulus, template in self.all_layers()]
