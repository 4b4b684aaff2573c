"""Datasets from a terminal: `datasets`, `data-info` and `download`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from galaxy_core.cli.common import add_dataset_arguments, dataset_spec_from_args, terminal_progress
from galaxy_core.data import create_dataset, discover_datasets
from galaxy_core.data.galaxy10 import download_galaxy10


def datasets_command(commands) -> None:
    parser = commands.add_parser("datasets", help="list the datasets found (synthetic, data roots, downloads)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=_datasets)


def _datasets(args, settings) -> int:
    choices = discover_datasets(settings)
    if args.json:
        print(json.dumps([{"label": c.label, "spec": c.spec.to_dict()} for c in choices], indent=2))
    else:
        for choice in choices:
            print(f"{choice.label:40s} {json.dumps(choice.spec.to_dict())}")
    return 0


def data_info_command(commands) -> None:
    parser = commands.add_parser("data-info", help="load a dataset and print its splits and class counts")
    add_dataset_arguments(parser)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=_data_info)


def _data_info(args, settings) -> int:
    spec = dataset_spec_from_args(args, settings)
    started = time.perf_counter()
    dataset = create_dataset(
        spec, cache_dir=settings.cache_dir, progress=terminal_progress, memory_limit_mb=settings.dataset_memory_mb
    )
    seconds = time.perf_counter() - started
    counts = dataset.class_counts()
    summary = {
        "name": dataset.name,
        "spec": dataset.spec.to_dict(),
        "class_names": list(dataset.class_names),
        "image_shape": list(dataset.splits["train"].images.shape[1:]),
        "splits": {split: {"total": int(c.sum()), "per_class": c.tolist()} for split, c in counts.items()},
        "skipped": [{"name": s.name, "reason": s.reason} for s in dataset.skipped],
        "load_seconds": round(seconds, 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{dataset.name}: {dataset.description}")
    print(f"images {summary['image_shape']}, loaded in {seconds:.2f} s")
    width = max(len(name) for name in dataset.class_names)
    print(f"{'class':{width}s} " + " ".join(f"{split:>7s}" for split in counts))
    for index, name in enumerate(dataset.class_names):
        print(f"{name:{width}s} " + " ".join(f"{int(c[index]):7d}" for c in counts.values()))
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} file(s):")
        for skipped in dataset.skipped:
            print(f"  {skipped.name}: {skipped.reason}")
    return 0


def download_command(commands) -> None:
    parser = commands.add_parser("download", help="download a Galaxy10 HDF5 file")
    parser.add_argument("variant", choices=["sdss", "decals"])
    parser.add_argument("--dest", type=Path, help="folder to save into (default: the cache's downloads/)")
    parser.add_argument("--url", help="another address for the same file (a mirror)")
    parser.add_argument("--sha256", help="the expected checksum when --url serves another file")
    parser.set_defaults(run=_download)


def _download(args, settings) -> int:
    path = download_galaxy10(
        args.variant, args.dest or settings.download_dir, url=args.url, sha256=args.sha256, progress=terminal_progress
    )
    print(f"\n{path}")
    return 0
