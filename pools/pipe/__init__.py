"""Resources of a pool handed to a loop: the same names as ``cheesechaser.pipe``."""

from pools.pipe.base import Pipe, PipeError, PipeItem, PipeSession
from pools.pipe.image import DataAttachedImage, DataAttachedImagePipe, SimpleImagePipe

__all__ = ["Pipe", "PipeItem", "PipeError", "PipeSession", "SimpleImagePipe", "DataAttachedImage",
           "DataAttachedImagePipe"]
