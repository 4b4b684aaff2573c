"""Galaxy datasets: registered sources (synthetic, folder, Galaxy10) built from typed specs, all returning uint8
splits."""

from galaxy_core.data.augment import AugmentOptions, augment_images
from galaxy_core.data.dataset import SPLIT_NAMES, Dataset, DatasetError, RejectedFile, Split
from galaxy_core.data.images import ImageDecodeError, PreprocessOptions, open_image, to_grayscale
from galaxy_core.data.registry import (
    DatasetTooLargeError,
    check_dataset_memory,
    check_spec,
    create_dataset,
    dataset_names_help,
    describe_spec,
    discover_datasets,
    list_dataset_sources,
    resolve_in_data_roots,
    spec_from_link,
    spec_from_name,
    spec_to_link,
)
from galaxy_core.data.sources import DATASET_SOURCES, DatasetChoice, DatasetSource, DatasetSpec, dataset_source

__all__ = [
    "DATASET_SOURCES",
    "SPLIT_NAMES",
    "AugmentOptions",
    "Dataset",
    "DatasetChoice",
    "DatasetError",
    "DatasetSource",
    "DatasetSpec",
    "DatasetTooLargeError",
    "ImageDecodeError",
    "PreprocessOptions",
    "RejectedFile",
    "Split",
    "augment_images",
    "check_dataset_memory",
    "check_spec",
    "create_dataset",
    "dataset_names_help",
    "dataset_source",
    "describe_spec",
    "discover_datasets",
    "list_dataset_sources",
    "open_image",
    "resolve_in_data_roots",
    "spec_from_link",
    "spec_from_name",
    "spec_to_link",
    "to_grayscale",
]
