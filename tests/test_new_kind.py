"""A run kind is one module: a small kind written here (testing a finished run's model on another dataset) and
registered the way kinds/ registers its own gets its command in `galaxy-lab`, its name in the runs table, its
options in config.json and its run, with no other file changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from galaxy_core.cli import main
from galaxy_core.data import Dataset
from galaxy_core.training import RunStore, TrainConfig, client
from galaxy_core.training.client import train_in_this_process
from galaxy_core.training.config import KIND_OPTIONS
from galaxy_core.training.kinds import RUN_KINDS, describe_run_model
from galaxy_core.training.kinds.registry import CommandLine, register_kind, used_run_summary
from galaxy_core.training.kinds.train import evaluate_test_split
from galaxy_core.training.lifecycle import Outcome, RunState
from galaxy_core.training.records import KIND_TRAITS

NAME = "retest"


@dataclass(frozen=True)
class RetestOptions:
    tested_run: str = ""  # the finished run whose best model is tested


def add_arguments(parser) -> None:
    parser.add_argument("tested_run", metavar="RUN", help="the finished run whose best model is tested")


def config_from_arguments(args, request) -> TrainConfig:
    tested = used_run_summary(request.store, args.tested_run, "test")
    dataset = request.dataset().with_preprocess(
        image_size=tested.dataset.preprocess.image_size, channels=tested.dataset.preprocess.channels
    )
    return TrainConfig(dataset=dataset, model=tested.model, kind=NAME, options=RetestOptions(tested.id))


def model_file_to_test(store: RunStore, config: TrainConfig) -> dict:
    return {"base": used_run_summary(store, config.options.tested_run, "test").run.model_path("best")}


def retest(run, config: TrainConfig, dataset: Dataset, observers: Sequence = ()) -> Outcome:
    from galaxy_core.answers.prediction import load_model_file

    figures = evaluate_test_split(load_model_file(run.input_model_path("base")), run, dataset)
    return Outcome(RunState.FINISHED, "tested on another dataset", figures)


@pytest.fixture
def retest_kind():
    register_kind(
        NAME,
        title="{model}, run {tested_run} tested",
        planned_epochs=lambda config: 0,
        options=RetestOptions,
        input_models=model_file_to_test,
        command_line=CommandLine(
            add_arguments,
            config_from_arguments,
            command=NAME,
            help="test a finished run's model on another dataset",
            dataset_size_note="the tested run's",
        ),
    )(retest)
    yield
    for table in (RUN_KINDS, KIND_OPTIONS, KIND_TRAITS):
        table.pop(NAME)


def test_a_kind_of_one_module_gets_its_command_its_title_and_its_run(
    retest_kind, isolated_settings, finished_run, capsys, monkeypatch
):
    monkeypatch.setattr(client, "ensure_supervisor", lambda root: None)  # its workers import the lab's kinds only
    argv = [NAME, finished_run.id, "--dataset", "synthetic", "--num-images", "45", "--detach"]
    assert main(argv) == 0, capsys.readouterr().err
    run = RunStore(isolated_settings["runs"]).get(capsys.readouterr().out.strip())
    config = run.config()
    assert (config["kind"], config["options"]) == (NAME, {"tested_run": finished_run.id})
    assert config["dataset"]["num_images"] == 45  # the dataset the flags named (the tested run saw 90 galaxies)
    assert describe_run_model(config) == f"custom_cnn, run {finished_run.id} tested"
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    summary = run.summary()
    assert summary.has_test_results and summary.test_accuracy is not None
    assert (run.path / "base.keras").read_bytes() == finished_run.best_model_path.read_bytes()
    assert main([NAME, "20261204-000000-gone-0000", "--detach"]) == 2
    assert "there is no run '20261204-000000-gone-0000' to test" in capsys.readouterr().err
