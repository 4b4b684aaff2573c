"""`galaxy-lab`: the lab's operations from a terminal.

galaxy-lab serve                  start the web app
galaxy-lab datasets               list the datasets the lab can offer
galaxy-lab data-info DATASET      load a dataset (cached) and print its splits, classes and skipped files
galaxy-lab download VARIANT       fetch a Galaxy10 file (resumable, checksummed)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from galaxy_core.settings import SettingsError, load_settings

APP_FILE = Path(__file__).resolve().parent.parent / "app.py"


def _terminal_progress(done: int, total: int, message: str) -> None:
    percent = f"{100 * done / total:5.1f}% " if total else ""
    end = "\n" if total and done >= total else ""
    print(f"\r{percent}{message}", end=end, file=sys.stderr, flush=True)


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset options shared by every subcommand that loads a dataset."""
    parser.add_argument("dataset", help="synthetic, galaxy10-sdss, galaxy10-decals, a folder, or an .h5 file")
    parser.add_argument("--image-size", type=int, help="side of the square input in pixels (default 64)")
    parser.add_argument(
        "--crop-fraction",
        type=float,
        help="centre crop as a fraction of the shorter side, before resizing (default 1.0)",
    )
    parser.add_argument("--grayscale", action="store_true", help="one channel instead of RGB")
    parser.add_argument("--num-images", type=int, help="synthetic only: how many galaxies (default 3000)")
    parser.add_argument("--difficulty", choices=["easy", "normal", "hard"], help="synthetic only")
    parser.add_argument("--seed", type=int, help="seed for rendering and for splitting (default 0)")
    parser.add_argument("--val-fraction", type=float, help="share carved for validation where none exists")
    parser.add_argument("--test-fraction", type=float, help="share carved for testing where none exists")


def dataset_spec_from_args(args: argparse.Namespace, settings) -> dict:
    from galaxy_core.data import spec_from_name

    spec = spec_from_name(args.dataset, settings)
    overrides = {
        "image_size": args.image_size,
        "crop_fraction": args.crop_fraction,
        "channels": 1 if args.grayscale else None,
        "num_images": args.num_images,
        "difficulty": args.difficulty,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "test_fraction": args.test_fraction,
    }
    spec.update({key: value for key, value in overrides.items() if value is not None})
    return spec


def _serve(args, settings) -> int:
    if not APP_FILE.is_file():
        print(f"error: {APP_FILE} not found; run from a checkout of Galaxy CNN Lab", file=sys.stderr)
        return 2
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        f"--server.maxUploadSize={settings.upload_limit_mb}",
        f"--server.port={args.port}",
    ]
    if args.headless:
        command.append("--server.headless=true")
    return subprocess.call(command)


def _datasets(args, settings) -> int:
    from galaxy_core.data import discover_datasets

    choices = discover_datasets(settings)
    if args.json:
        print(json.dumps([{"label": c.label, "spec": c.spec} for c in choices], indent=2))
    else:
        for choice in choices:
            print(f"{choice.label:40s} {json.dumps(choice.spec)}")
    return 0


def _data_info(args, settings) -> int:
    from galaxy_core.data import create_dataset

    spec = dataset_spec_from_args(args, settings)
    started = time.perf_counter()
    dataset = create_dataset(**spec, cache_dir=settings.cache_dir, progress=_terminal_progress)
    seconds = time.perf_counter() - started
    counts = dataset.class_counts()
    summary = {
        "name": dataset.name,
        "spec": dataset.spec,
        "class_names": list(dataset.class_names),
        "image_shape": list(dataset.splits["train"].images.shape[1:]),
        "splits": {split: {"total": int(c.sum()), "per_class": c.tolist()} for split, c in counts.items()},
        "skipped": [{"path": s.path, "reason": s.reason} for s in dataset.skipped],
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
            print(f"  {skipped.path}: {skipped.reason}")
    return 0


def _download(args, settings) -> int:
    from galaxy_core.data import download_galaxy10

    path = download_galaxy10(
        args.variant, args.dest or settings.download_dir, url=args.url, sha256=args.sha256, progress=_terminal_progress
    )
    print(f"\n{path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="galaxy-lab", description="Galaxy CNN Lab from a terminal.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the web app")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--headless", action="store_true", help="do not open a browser")
    serve.set_defaults(run=_serve)

    datasets = commands.add_parser("datasets", help="list the datasets found (synthetic, data roots, downloads)")
    datasets.add_argument("--json", action="store_true")
    datasets.set_defaults(run=_datasets)

    info = commands.add_parser("data-info", help="load a dataset and print its splits and class counts")
    add_dataset_arguments(info)
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=_data_info)

    download = commands.add_parser("download", help="download a Galaxy10 HDF5 file")
    download.add_argument("variant", choices=["sdss", "decals"])
    download.add_argument("--dest", type=Path, help="folder to save into (default: the cache's downloads/)")
    download.add_argument("--url", help="another address for the same file (a mirror)")
    download.add_argument("--sha256", help="the expected checksum when --url serves another file")
    download.set_defaults(run=_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return args.run(args, settings)
    except (SettingsError, ValueError, OSError, RuntimeError) as error:
        # DatasetError, DownloadError and bad options all land here with a message meant for the user.
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
