"""What `galaxy-lab serve` runs beside the server at a low priority (`python -m galaxy_core.warm_up`): the default
dataset into the cache and TensorFlow's files into the operating system's, so that first visits wait for neither."""

from __future__ import annotations

import contextlib
import os

from galaxy_core.data import create_dataset, spec_from_name
from galaxy_core.errors import GalaxyLabError
from galaxy_core.runtime import import_tensorflow
from galaxy_core.settings import load_settings


def warm_up() -> None:
    """Fill the dataset cache with the default dataset and the operating system's file cache with TensorFlow, at a
    low priority: what `galaxy-lab serve` runs beside the server, so that first visits do not wait for either."""
    os.nice(10)
    settings = load_settings()
    with contextlib.suppress(GalaxyLabError):  # the app says what is wrong with the default dataset
        create_dataset(
            spec_from_name(settings.default_dataset, settings),
            cache_dir=settings.cache_dir,
            memory_limit_mb=settings.dataset_memory_mb,
        )
    import_tensorflow()


if __name__ == "__main__":
    warm_up()
