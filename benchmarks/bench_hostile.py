"""What one hostile upload costs the server: peak memory and CPU time of reading each case of the hostile corpus
(tests/hostile.py), plus the worst cases at the server's default limits, each in a fresh process, against reading
one good image. Goal: no request within the limits raises peak memory by more than 300 MB or uses more than 10 s
of CPU.

    .venv/bin/python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the corpus is built by the test suite's tests/hostile.py

MEMORY_GOAL_MB, CPU_GOAL_SECONDS = 300, 10.0


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, it does not carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure_one(path: Path, name: str) -> dict:
    """In this (fresh) process: read the file as an upload at the server's default limits."""
    from galaxy_core.answers.uploads import ImageInput, UploadLimits, read_uploads
    from galaxy_core.data import PreprocessOptions
    from galaxy_core.settings import Settings

    options, limits = PreprocessOptions(image_size=64, crop_fraction=0.4), UploadLimits.from_settings(Settings())
    data = path.read_bytes()
    started_peak, started = peak_mb(), time.process_time()
    uploads = read_uploads([(name, data)], options, limits)
    return {
        "cpu_seconds": time.process_time() - started,
        "peak_increase_mb": peak_mb() - started_peak,
        "classified": sum(isinstance(u, ImageInput) for u in uploads),
        "refused": sum(not isinstance(u, ImageInput) for u in uploads),
    }


def worst_cases() -> list[tuple[str, bytes]]:
    """The attacks of issue #13 at the default limits (50 MB a file, 200 MB unpacked, 200 MP per request)."""
    from PIL import Image

    from tests.hostile import single_colour_png
    from tests.uploads import encode, zip_of

    side = 6300  # 39.7 megapixels
    return [
        ("zeros-40x49MB.zip", zip_of(dict.fromkeys((f"z{i:02d}.png" for i in range(40)), bytes(49_000_000)))),
        ("flat-20x39.7MP.zip", zip_of({f"f{i:02d}.png": single_colour_png(side) for i in range(20)})),
        ("deep-39.7MP.png", encode(Image.new("I;16", (side, side), 1234), "PNG")),
        ("rgba-39.7MP.png", encode(Image.new("RGBA", (side, side), (1, 2, 3, 4)), "PNG")),
        ("palette-39.7MP.png", encode(Image.new("P", (side, side), 3), "PNG")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=2, metavar=("FILE", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(Path(args.one[0]), args.one[1])))
        return
    from tests.hostile import corpus
    from tests.uploads import encode, galaxy_photo

    cases = [("baseline: one 96 px JPEG", encode(galaxy_photo(), "JPEG"))]
    cases += [(case.name, case.data) for case in corpus()] + worst_cases()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for number, (name, data) in enumerate(cases):
            path = Path(folder) / f"{number}.bin"
            path.write_bytes(data)
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(path), name], capture_output=True, text=True, check=True
            )
            results.append((name, len(data), json.loads(out.stdout.strip().splitlines()[-1])))
            path.unlink()
    print(f"{'case':34s} {'bytes':>11s} {'peak +MB':>9s} {'CPU s':>7s}  classified/refused")
    for name, size, figures in results:
        print(
            f"{name[:34].encode('unicode_escape').decode():34s} {size:11,d} {figures['peak_increase_mb']:9.1f} "
            f"{figures['cpu_seconds']:7.2f}  {figures['classified']}/{figures['refused']}"
        )
    baseline = results[0][2]["peak_increase_mb"]
    worst_memory = max(results, key=lambda r: r[2]["peak_increase_mb"])
    worst_cpu = max(results, key=lambda r: r[2]["cpu_seconds"])
    memory = worst_memory[2]["peak_increase_mb"] - baseline
    print(
        f"\nworst peak memory over the baseline: {memory:.0f} MB ({worst_memory[0]}; goal <= {MEMORY_GOAL_MB} MB); "
        f"worst CPU {worst_cpu[2]['cpu_seconds']:.2f} s ({worst_cpu[0]}; goal <= {CPU_GOAL_SECONDS:.0f} s); "
        f"{len(results) - 1} cases"
    )


if __name__ == "__main__":
    main()
