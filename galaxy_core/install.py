"""Which TensorFlow build a machine should have, and installing the requirements with it.

requirements.txt pins the CPU build (`tensorflow-cpu` on x86_64, `tensorflow` elsewhere). On a machine with an
NVIDIA GPU (found by `nvidia-smi -L`), the set-up installs the GPU build of the same version instead,
`tensorflow[and-cuda]` (TensorFlow with the CUDA libraries it needs, from PyPI). GALAXY_LAB_TENSORFLOW=cpu or
=gpu overrides the detection either way.

    python -m galaxy_core.install [REQUIREMENTS_FILE]    (what `make run` and `make test` do; standard library only,
                                                          so it runs in a new virtual environment)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

from galaxy_core.errors import InvalidInputError

BUILDS = ("cpu", "gpu")
OVERRIDE = "GALAXY_LAB_TENSORFLOW"
# A requirement line of the CPU build: its package, version and environment marker.
TENSORFLOW_LINE = re.compile(r"^tensorflow(-cpu)?==(?P<version>[\w.]+)\s*(;.*)?$")


def nvidia_gpus(run: Callable = subprocess.run) -> list[str]:
    """The NVIDIA GPUs the driver lists (`nvidia-smi -L`); none without a driver or a GPU."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if listed.returncode != 0:
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.startswith("GPU ")]


def choose_build(gpus: list[str], environ: Mapping[str, str]) -> str:
    """ "gpu" when the machine has an NVIDIA GPU, else "cpu"; GALAXY_LAB_TENSORFLOW decides when it is set."""
    chosen = environ.get(OVERRIDE, "").strip().lower()
    if chosen:
        if chosen not in BUILDS:
            raise InvalidInputError(f"{OVERRIDE} must be one of {BUILDS}, got {chosen!r}")
        return chosen
    return "gpu" if gpus else "cpu"


def resolve_requirements(path: Path, build: str) -> list[str]:
    """The lines of a requirements file and the files it includes (-r), with the CPU build of TensorFlow replaced
    by the GPU build (same version) when `build` is "gpu"."""
    lines, seen_gpu = [], False
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("-r "):
            lines += resolve_requirements(path.parent / line[3:].strip(), build)
            continue
        match = TENSORFLOW_LINE.match(line)
        if match and build == "gpu":
            if not seen_gpu:  # both CPU lines (x86_64 and other machines) become one GPU line
                lines.append(f"tensorflow[and-cuda]=={match['version']}")
                seen_gpu = True
            continue
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def installed_tensorflow() -> str:
    """The TensorFlow build in this environment, without importing it: 'tensorflow-cpu 2.21.0 (CPU build)'."""
    for name in ("tensorflow-cpu", "tensorflow"):
        if not _installed(name):
            continue
        version = metadata.version(name)
        if name == "tensorflow-cpu":
            return f"{name} {version} (CPU build)"
        if _installed("nvidia-cudnn-cu12"):
            return f"{name} {version} with CUDA (GPU build)"
        return f"{name} {version} (no CUDA libraries: CPU)"
    return "TensorFlow is not installed"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    requirements = Path(args[0] if args else "requirements.txt")
    gpus = nvidia_gpus()
    try:
        build = choose_build(gpus, os.environ)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    reason = f"{OVERRIDE}={build}" if os.environ.get(OVERRIDE) else (", ".join(gpus) or "no NVIDIA GPU found")
    print(f"TensorFlow build: {build} ({reason})")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as resolved:
        resolved.write("\n".join(resolve_requirements(requirements, build)) + "\n")
    # The two builds both provide the module `tensorflow`: switching builds removes the other one first.
    other = "tensorflow-cpu" if build == "gpu" else "tensorflow" if _installed("nvidia-cudnn-cu12") else None
    if other and _installed(other):
        subprocess.call([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", other])
    try:
        return subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", "-r", resolved.name])
    finally:
        Path(resolved.name).unlink()


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
