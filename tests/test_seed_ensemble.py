"""A seed ensemble: one request trains k networks of one recipe (seeds seed, seed + 1, ...) that answer as one; a
stop keeps the networks that finished an epoch; sizes out of range are refused before anything is queued."""

import numpy as np
import pytest

from galaxy_core.answers.members import members_view
from galaxy_core.answers.prediction import load_model_file, predict_probabilities
from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.data import create_dataset
from galaxy_core.errors import InvalidInputError
from galaxy_core.evaluation import balanced_accuracy, confusion_matrix
from galaxy_core.models.ensemble import ensemble_members
from galaxy_core.training import RunState, RunStore
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.kinds import describe_run_model
from galaxy_core.training.kinds.ensemble import ensemble_config
from galaxy_core.training.kinds.transfer import transfer_config
from galaxy_core.training.records import next_network_epochs
from tests.helpers import tiny_config


def test_one_request_trains_its_networks_one_after_another_and_they_answer_as_one(isolated_settings):
    store = RunStore(isolated_settings["runs"])
    run = new_run(store, tiny_config(kind="seed_ensemble", ensemble_size=2, epochs=2, seed=3), MACHINE_TEACHER)
    assert describe_run_model(run.config()) == "ensemble: 2 x custom_cnn"
    assert run.summary().epochs_planned == 4
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    summary = run.summary()
    assert "finished after 4 of 4 epochs: 2 of 2 networks answering as one" in summary.message
    assert [record["epoch"] for record in run.metrics() if record.get("kind") == "epoch"] == [1, 2, 3, 4]
    assert next_network_epochs(run.metrics()) == [2]  # where the curves start again from a new network

    networks = [network for network, _ in ensemble_members(load_model_file(run.best_model_path))]
    test = create_dataset(summary.dataset).splits["test"]
    answers = [predict_probabilities(network, test.images) for network in networks]
    assert not np.allclose(answers[0], answers[1], atol=1e-3)  # two seeds, two networks
    saved = run.predictions()
    np.testing.assert_allclose(saved["probabilities"], (answers[0] + answers[1]) / 2, atol=1e-5)
    figure = balanced_accuracy(confusion_matrix(test.labels, saved["probabilities"].argmax(axis=1), 3))
    assert summary.test_balanced_accuracy == pytest.approx(figure)

    view = members_view(summary)
    assert view.names == ["seed 3", "seed 4"]
    np.testing.assert_allclose(view.probabilities, answers, atol=1e-5)

    with pytest.raises(InvalidInputError, match="is an ensemble already"):
        new_run(store, ensemble_config([summary]), MACHINE_TEACHER)
    with pytest.raises(InvalidInputError, match="is an ensemble: its members are separate networks"):
        new_run(store, transfer_config(summary), MACHINE_TEACHER)


def test_a_stop_keeps_the_networks_that_finished_an_epoch(isolated_settings):
    import keras

    run = new_run(
        RunStore(isolated_settings["runs"]),
        tiny_config(kind="seed_ensemble", ensemble_size=3, epochs=1, seed=0),
        MACHINE_TEACHER,
    )

    class StopInTheSecondNetwork(keras.callbacks.Callback):
        fits = 0

        def on_train_begin(self, logs=None):
            StopInTheSecondNetwork.fits += 1

        def on_train_batch_begin(self, batch, logs=None):
            if self.fits == 2:
                run.request_stop()

    assert train_in_this_process(run, observers=[StopInTheSecondNetwork()]) is RunState.STOPPED
    summary = run.summary()
    assert "1 of 3 networks answering as one" in summary.message
    assert members_view(summary).names == ["seed 0"]
    assert len(ensemble_members(load_model_file(run.best_model_path))) == 1
    assert summary.has_test_results


@pytest.mark.parametrize("size", [1, 11, 2.5, True])
def test_a_size_out_of_range_is_refused_before_it_is_queued(isolated_settings, size):
    store = RunStore(isolated_settings["runs"])
    with pytest.raises(InvalidInputError, match="ensemble_size must be a whole number from 2 to 10"):
        new_run(store, tiny_config(kind="seed_ensemble", ensemble_size=size), MACHINE_TEACHER)
    assert store.runs() == []


def test_a_run_of_one_network_draws_no_network_boundary(finished_run):
    assert next_network_epochs(finished_run.metrics()) == []
