"""Galaxy datasets: one factory over synthetic, folder and Galaxy10 sources, all returning uint8 splits."""

from galaxy_core.data.augment import AugmentOptions, augment_images
from galaxy_core.data.dataset import SPLIT_NAMES, Dataset, DatasetError, RejectedFile, Split
from galaxy_core.data.galaxy10 import DownloadError, download_galaxy10
from galaxy_core.data.images import ImageDecodeError, PreprocessOptions, open_image, to_grayscale
from galaxy_core.data.registry import (
    DatasetChoice,
    create_dataset,
    discover_datasets,
    list_dataset_sources,
    resolve_in_data_roots,
    source_options,
    spec_from_name,
)

__all__ = [
    "SPLIT_NAMES",
    "AugmentOptions",
    "Dataset",
    "DatasetChoice",
    "DatasetError",
    "DownloadError",
    "ImageDecodeError",
    "PreprocessOptions",
    "RejectedFile",
    "Split",
    "augment_images",
    "create_dataset",
    "discover_datasets",
    "download_galaxy10",
    "list_dataset_sources",
    "open_image",
    "resolve_in_data_roots",
    "source_options",
    "spec_from_name",
    "to_grayscale",
]
