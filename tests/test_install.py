"""Which TensorFlow build the set-up installs, with the GPU detection faked."""

import subprocess
from pathlib import Path

import pytest

from galaxy_core import install
from tests.helpers import REPO_ROOT

A100 = "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d6e)"


def fake_nvidia_smi(returncode: int, stdout: str):
    def run(command, **kwargs):
        assert command == ["nvidia-smi", "-L"]
        return subprocess.CompletedProcess(command, returncode, stdout=stdout, stderr="")

    return run


def test_gpus_are_what_nvidia_smi_lists(monkeypatch):
    monkeypatch.setattr(install.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    assert install.nvidia_gpus(fake_nvidia_smi(0, f"{A100}\n")) == [A100]
    # A driver without a GPU, or a broken one, lists nothing.
    assert install.nvidia_gpus(fake_nvidia_smi(9, "NVIDIA-SMI has failed")) == []
    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    assert install.nvidia_gpus(fake_nvidia_smi(0, f"{A100}\n")) == []  # no driver at all


@pytest.mark.parametrize(
    ("gpus", "override", "build"),
    [([A100], "", "gpu"), ([], "", "cpu"), ([A100], "cpu", "cpu"), ([], "GPU", "gpu")],
)
def test_the_build_follows_the_gpu_unless_overridden(gpus, override, build):
    assert install.choose_build(gpus, {install.OVERRIDE: override}) == build


def test_a_bad_override_is_refused():
    with pytest.raises(ValueError, match="GALAXY_LAB_TENSORFLOW must be one of"):
        install.choose_build([], {install.OVERRIDE: "tpu"})


def test_the_gpu_build_replaces_the_cpu_build_of_the_same_version():
    requirements = REPO_ROOT / "requirements-dev.txt"
    cpu = install.resolve_requirements(requirements, "cpu")
    gpu = install.resolve_requirements(requirements, "gpu")
    tensorflow_cpu = [line for line in cpu if line.startswith("tensorflow")]
    version = tensorflow_cpu[0].split("==")[1].split(";")[0]
    assert tensorflow_cpu == [
        f'tensorflow-cpu=={version}; platform_machine == "x86_64"',
        f'tensorflow=={version}; platform_machine != "x86_64"',
    ]
    assert [line for line in gpu if line.startswith("tensorflow")] == [f"tensorflow[and-cuda]=={version}"]
    assert [line for line in gpu if not line.startswith("tensorflow")] == [
        line for line in cpu if not line.startswith("tensorflow")
    ]
    assert "pytest" in " ".join(cpu) and "streamlit" in " ".join(cpu)  # the included requirements.txt too


def test_home_says_where_runs_train_with_a_faked_gpu(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.helpers import PAGE_TIMEOUT

    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\necho '{A100}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{Path('/usr/bin')}:{Path('/bin')}")
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=PAGE_TIMEOUT).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    # This machine has the CPU build: the page says the GPU is there and that this build cannot use it.
    assert f"this machine has {A100}, but tensorflow-cpu" in text and "cannot use it" in text
