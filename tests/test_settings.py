from pathlib import Path

import pytest

from galaxy_core.settings import SettingsError, load_settings


def test_defaults_without_file_or_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert settings.data_roots == ()
    assert settings.cache_dir == (tmp_path / "xdg" / "galaxy-lab").resolve()
    assert settings.runs_dir == (tmp_path / "runs").resolve()
    assert settings.upload_limit_mb == 50
    assert settings.default_dataset == "synthetic"
    assert settings.source == "built-in defaults"


def test_file_paths_are_relative_to_the_file(tmp_path):
    config = tmp_path / "conf" / "lab.toml"
    config.parent.mkdir()
    config.write_text(
        'data_roots = ["../data", "/abs/elsewhere"]\nruns_dir = "r"\ncache_dir = "c"\n'
        'upload_limit_mb = 7\ndefault_dataset = "gz"\n[dataset_defaults.gz]\ncrop_fraction = 0.4\n'
    )
    settings = load_settings({"GALAXY_LAB_SETTINGS": str(config)})
    assert settings.data_roots == ((tmp_path / "data").resolve(), Path("/abs/elsewhere"))
    assert settings.runs_dir == (tmp_path / "conf" / "r").resolve()
    assert settings.cache_dir == (tmp_path / "conf" / "c").resolve()
    assert settings.upload_limit_mb == 7
    assert settings.dataset_defaults == {"gz": {"crop_fraction": 0.4}}
    assert settings.default_dataset == "gz"
    assert load_settings({"GALAXY_LAB_SETTINGS": str(config), "GALAXY_LAB_DEFAULT_DATASET": "x"}).default_dataset == "x"


def test_variables_override_the_file(tmp_path):
    config = tmp_path / "lab.toml"
    config.write_text('runs_dir = "from-file"\nupload_limit_mb = 7\nmax_epochs = 40\nmax_queued_runs = 5\n')
    settings = load_settings(
        {
            "GALAXY_LAB_SETTINGS": str(config),
            "GALAXY_LAB_RUNS_DIR": str(tmp_path / "from-env"),
            "GALAXY_LAB_DATA_ROOTS": f"{tmp_path / 'a'}:{tmp_path / 'b'}",
            "GALAXY_LAB_UPLOAD_LIMIT_MB": "3",
            "GALAXY_LAB_MAX_QUEUED_RUNS": "8",
        }
    )
    assert settings.runs_dir == tmp_path / "from-env"
    assert settings.data_roots == (tmp_path / "a", tmp_path / "b")
    assert (settings.upload_limit_mb, settings.max_epochs, settings.max_queued_runs) == (3, 40, 8)
    assert settings.max_concurrent_runs == 1


@pytest.mark.parametrize(
    ("content", "environ", "message"),
    [
        ("data_root = []\n", {}, "unknown keys ['data_root']"),
        ("upload_limit_mb = 'lots'\n", {}, "upload_limit_mb"),
        ("this is not toml", {}, "cannot read settings file"),
        ("", {"GALAXY_LAB_UPLOAD_LIMIT_MB": "0"}, "must be a whole number >= 1, got '0'"),
        ("default_dataset = 3\n", {}, "default_dataset must name a dataset"),
        ('executor = "slurm"\n', {}, "executor from"),
        ("", {"GALAXY_LAB_EXECUTOR": "k8s"}, "executor from GALAXY_LAB_EXECUTOR must be one of"),
        ("run_num_cpus = 0\n", {}, "run_num_cpus from"),
        ("", {"GALAXY_LAB_RUN_NUM_GPUS": "-1"}, "run_num_gpus from GALAXY_LAB_RUN_NUM_GPUS must be a number >= 0"),
        ("ray_address = ''\n", {}, "ray_address from"),
        ("", {"GALAXY_LAB_STOP_GRACE_SECONDS": "0"}, "stop_grace_seconds"),
    ],
)
def test_bad_settings_name_the_problem(tmp_path, content, environ, message):
    config = tmp_path / "lab.toml"
    config.write_text(content)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings({"GALAXY_LAB_SETTINGS": str(config), **environ})


def test_missing_settings_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="not a file"):
        load_settings({"GALAXY_LAB_SETTINGS": str(tmp_path / "nope.toml")})


def test_the_training_service_settings(tmp_path):
    config = tmp_path / "lab.toml"
    config.write_text('executor = "ray"\nray_address = "10.0.0.5:6379"\nrun_num_cpus = 4\n')
    settings = load_settings({"GALAXY_LAB_SETTINGS": str(config), "GALAXY_LAB_RUN_NUM_GPUS": "0.5"})
    assert (settings.executor, settings.ray_address, settings.run_num_cpus, settings.run_num_gpus) == (
        "ray",
        "10.0.0.5:6379",
        4.0,
        0.5,
    )
    defaults = load_settings({"GALAXY_LAB_SETTINGS": str(config), "GALAXY_LAB_EXECUTOR": "local"})
    assert (defaults.executor, defaults.run_num_gpus, defaults.stop_grace_seconds) == ("local", None, 30)
