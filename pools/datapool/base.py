"""``cheesechaser.datapool.base``: the reference API, as :mod:`pools.base` holds it."""

from pools.base import *  # noqa: F401,F403 - the same names, where cheesechaser's scripts import them
from pools.base import __all__  # noqa: F401
