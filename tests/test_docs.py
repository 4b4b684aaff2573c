"""Every command the README and the guides mark as runnable runs as written: each marked shell block, in a folder
of its own with a lab of its own (settings, runs, cache), fails the test if any line fails."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import REPO_ROOT

MARK = "<!-- runs as written: tests/test_docs.py -->"
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def marked_blocks() -> list[tuple[str, str]]:
    """(where, the block's text) of every ```bash block right after the mark."""
    blocks = []
    for document in DOCUMENTS:
        lines = document.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.strip() != MARK:
                continue
            assert lines[number + 1].strip() == "```bash", f"{document.name}:{number + 1}: the mark is not on a block"
            end = next(i for i in range(number + 2, len(lines)) if lines[i].strip() == "```")
            blocks.append((f"{document.name}:{number + 2}", textwrap.dedent("\n".join(lines[number + 2 : end]))))
    return blocks


def test_the_marked_shell_blocks_run_as_written(tmp_path):
    blocks = marked_blocks()
    assert len(blocks) >= 2, "the guides' marked blocks are gone"
    (tmp_path / "galaxy-lab.toml").write_text("")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # galaxy-lab, as installed
        "GALAXY_LAB_SETTINGS": str(tmp_path / "galaxy-lab.toml"),
        "GALAXY_LAB_RUNS_DIR": str(tmp_path / "runs"),
        "GALAXY_LAB_CACHE_DIR": str(tmp_path / "cache"),
        "GALAXY_LAB_DATA_ROOTS": str(tmp_path / "data"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    for where, block in blocks:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{where} failed:\n{block}\n{done.stderr[-2000:]}"
