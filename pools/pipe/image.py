"""Image pipes: a resource's image decoded with Pillow, alone or with its JSON sidecar."""

from __future__ import annotations

import io
import json
import mimetypes
import os
import warnings
from dataclasses import dataclass
from typing import Optional

from PIL import Image

from pools.errors import InvalidResourceDataError, ResourceNotFoundError
from pools.pipe.base import Pipe

__all__ = ["SimpleImagePipe", "DataAttachedImage", "DataAttachedImagePipe"]


def _files_of(pool, resource_id, resource_metainfo, silent: bool) -> dict[str, bytes]:
    """The files ``mock_resource`` gives for one id, read into memory."""
    with pool.mock_resource(resource_id, resource_metainfo, silent=silent) as (td, _):
        files = {}
        for name in sorted(os.listdir(td)):
            path = os.path.join(td, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    files[name] = f.read()
        return files


def _open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))  # Pillow's decompression-bomb limit applies
    image.load()
    return image


class SimpleImagePipe(Pipe):
    """Each resource's one image file, as a PIL image. ResourceNotFoundError when it has none,
    InvalidResourceDataError when it has more than one."""

    def retrieve(self, resource_id, resource_metainfo, silent: bool = False):
        return self._from_files(resource_id, _files_of(self.pool, resource_id, resource_metainfo, silent))

    def _from_files(self, resource_id, files: dict[str, bytes]):
        images = []
        for name in files:
            mimetype, _ = mimetypes.guess_type(os.path.basename(name))
            if not mimetype or mimetype.startswith("image/"):
                images.append(name)
        if not images:
            raise ResourceNotFoundError(f"Image not found for resource {resource_id!r}.")
        if len(images) != 1:
            raise InvalidResourceDataError(f"Image file not unique for resource {resource_id!r} - {sorted(images)!r}.")
        return _open_image(files[images[0]])


SimpleImagePipe._retrieve_in_memory = SimpleImagePipe.retrieve


@dataclass
class DataAttachedImage:
    """An image and the data of its JSON sidecar (None when it has none)."""

    image: Image.Image
    data: Optional[dict]


class DataAttachedImagePipe(Pipe):
    """Each resource's one image with its one ``.json`` file parsed. A resource without JSON warns
    and gets ``data=None``; two images or two JSON files are InvalidResourceDataError."""

    def retrieve(self, resource_id, resource_metainfo, silent: bool = False):
        return self._from_files(resource_id, _files_of(self.pool, resource_id, resource_metainfo, silent))

    def _from_files(self, resource_id, files: dict[str, bytes]):
        if not files:
            raise ResourceNotFoundError(f"Image not found for resource {resource_id!r}.")
        json_files = [n for n in files if n.lower().endswith(".json")]
        others = [n for n in files if not n.lower().endswith(".json")]
        if not others:
            raise ResourceNotFoundError(f"Image file not found, but json data found for resource {resource_id!r}.")
        if len(others) > 1:
            raise InvalidResourceDataError(f"Image files not unique for resource {resource_id!r}.")
        if len(json_files) > 1:
            raise InvalidResourceDataError(f"Json data files not unique for resource {resource_id!r}.")
        data = None
        if json_files:
            try:
                data = json.loads(files[json_files[0]])
            except ValueError as err:
                raise InvalidResourceDataError(f"Json data of resource {resource_id!r} is not JSON: {err}") from None
        else:
            warnings.warn(f"Json data file not found for resource {resource_id!r}.")
        return DataAttachedImage(_open_image(files[others[0]]), data)


DataAttachedImagePipe._retrieve_in_memory = DataAttachedImagePipe.retrieve
