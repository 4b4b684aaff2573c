import re
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
        ("data_root = []\n", {}, "lab.toml, line 1: 'data_root' is not a setting (did you mean 'data_roots'?)"),
        (
            'runs_dir = "r"\n[dataset_defaults.gz]\ncrop_fractoin = 0.4\n',
            {},
            "line 3: 'crop_fractoin' is not a dataset",
        ),
        ("[dataset_defaults]\ngz = 3\n", {}, "line 2: [dataset_defaults.'gz'] must be a table"),
        ('auth = "rooster"\n', {}, "auth from lab.toml, line 1 must be one of"),
        ("trust_unverified_email = 1\n", {}, "trust_unverified_email from lab.toml, line 1 must be true or false"),
        ("teachers = 'lee@school.org'\n", {}, "teachers from lab.toml, line 1 must be a list of texts"),
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
    with pytest.raises(SettingsError, match=re.escape(message)):
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


SHIPPED_SETTINGS = Path(__file__).resolve().parents[1] / "galaxy-lab.toml"


@pytest.mark.parametrize("appended", ['auth = "roster"', 'default_dataset = "gz1-3class"\nauth = "roster"'])
def test_a_setting_appended_to_the_shipped_file_lands_in_its_last_table_and_is_refused(tmp_path, appended):
    """TOML puts a line written after a [table] header into that table: the shipped file's last table is
    [dataset_defaults."gz1-3class"], so a sign-in mode appended at its end would be that folder's option and the lab
    would serve everyone as the teacher. It is refused, with the line and what to do."""
    shipped = SHIPPED_SETTINGS.read_text()
    assert shipped.rstrip().splitlines()[-1].startswith("crop_fraction")  # the case this test is about
    config = tmp_path / "galaxy-lab.toml"
    config.write_text(shipped.rstrip() + "\n" + appended + "\n")
    first_line = len(shipped.rstrip().splitlines()) + 1  # counted here, not by the loader
    first_key = appended.split(" ")[0]
    with pytest.raises(SettingsError) as refused:
        load_settings({"GALAXY_LAB_SETTINGS": str(config)})
    message = str(refused.value)
    assert message.startswith(f"galaxy-lab.toml, line {first_line}: '{first_key}' is not a dataset option")
    assert "write " + first_key + " above the file's first [table]" in message
    # Written above the first table, the same line is a sign-in mode.
    lines = shipped.splitlines()
    first_table = next(number for number, line in enumerate(lines) if line.startswith("["))
    config.write_text("\n".join([*lines[:first_table], appended, *lines[first_table:]]) + "\n")
    assert load_settings({"GALAXY_LAB_SETTINGS": str(config)}).auth == "roster"


def test_dataset_default_keys_are_the_folder_sources_options():
    from galaxy_core.data import DATASET_SOURCES
    from galaxy_core.data.sources import PREPROCESS_KEYS
    from galaxy_core.settings import DATASET_DEFAULT_KEYS

    folder_options = set(DATASET_SOURCES["folder"].option_names) - {"path"}
    assert set(DATASET_DEFAULT_KEYS) == set(PREPROCESS_KEYS) | folder_options


def test_class_settings_from_the_file_and_variables(tmp_path):
    config = tmp_path / "lab.toml"
    config.write_text('auth = "oidc"\nteachers = ["Lee@School.org"]\ntrusted_proxies = ["10.0.0.2"]\n')
    settings = load_settings({"GALAXY_LAB_SETTINGS": str(config)})
    assert (settings.teachers, settings.trusted_proxies, settings.trust_unverified_email) == (
        ("lee@school.org",),
        ("10.0.0.2",),
        False,
    )
    relaxed = load_settings({"GALAXY_LAB_SETTINGS": str(config), "GALAXY_LAB_TRUST_UNVERIFIED_EMAIL": "true"})
    assert relaxed.trust_unverified_email is True
    assert load_settings({"GALAXY_LAB_SETTINGS": str(tmp_path / "lab.toml")}).auth == "oidc"
    assert load_settings({}).trusted_proxies == ("127.0.0.1", "::1")
