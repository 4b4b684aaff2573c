"""Runs differ unless asked not to: each run draws a seed of its own, keeps it, and the seed trains it again."""

import numpy as np
import pytest

from galaxy_core.classroom.people import User
from galaxy_core.data import DatasetSpec
from galaxy_core.errors import InvalidInputError
from galaxy_core.training import RunStore, TrainConfig
from galaxy_core.training.client import new_run, train_in_this_process
from galaxy_core.training.config import preset_config
from galaxy_core.training.kinds.ensemble import ensemble_config
from tests.helpers import (
    account_user,
    give_run,
    open_page,
    school_account,
    tiny_config,
    unescaped,
)

SMALL_SYNTHETIC = DatasetSpec.of("synthetic", num_images=60).with_preprocess(image_size=32)
ADA, BEN = User("ada", "Ada", "student"), User("ben", "Ben", "student")


def _probabilities(run) -> np.ndarray:
    with np.load(run.predictions_path) as saved:
        return saved["probabilities"]


def _trained(store, config, owner):
    run = new_run(store, config, owner)
    assert train_in_this_process(run) == "finished", run.status().get("traceback")
    return run


def test_two_students_same_recipe_two_networks_and_their_ensemble_differs_from_each(isolated_settings):
    store = RunStore(isolated_settings["runs"])
    ada, ben = _trained(store, tiny_config(), ADA), _trained(store, tiny_config(), BEN)
    seeds = ada.config()["seed"], ben.config()["seed"]
    assert all(isinstance(seed, int) for seed in seeds) and seeds[0] != seeds[1]
    assert not np.allclose(_probabilities(ada), _probabilities(ben))
    both = _trained(store, ensemble_config([ada.summary(), ben.summary()]), ADA)
    mean = (_probabilities(ada) + _probabilities(ben)) / 2  # equal weights, worked out here
    np.testing.assert_allclose(_probabilities(both), mean, atol=1e-5)
    for member in (ada, ben):
        assert not np.allclose(_probabilities(both), _probabilities(member))


def test_train_again_with_the_seed_trains_the_same_network(isolated_settings):
    store = RunStore(isolated_settings["runs"])
    first = _trained(store, tiny_config(), ADA)
    again = _trained(store, TrainConfig.from_dict(first.summary().config), BEN)  # what "Train again" queues
    assert again.config()["seed"] == first.config()["seed"]
    np.testing.assert_allclose(_probabilities(again), _probabilities(first), atol=1e-5)


def test_presets_keep_their_recipe_not_a_seed():
    config = preset_config(SMALL_SYNTHETIC, "quick")
    assert config.seed is None
    assert config.seeded().seed is not None and config.seeded() != config.seeded()  # two draws, two seeds
    assert preset_config(SMALL_SYNTHETIC, "quick", seed=7).seeded().seed == 7


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_a_seed_is_a_whole_number(seed):
    with pytest.raises(InvalidInputError, match="seed must be a whole number"):
        tiny_config(seed=seed)



def test_two_students_pressing_a_preset_get_two_seeds_and_train_again_keeps_one(
    finished_run, isolated_settings, monkeypatch, queue_that_never_starts
):
    monkeypatch.setenv("GALAXY_LAB_AUTH", "oidc")
    store = RunStore(isolated_settings["runs"])
    queued = {}
    for name in ("Ada", "Ben"):
        claims = school_account(f"{name.lower()}@school.org", name)
        at = open_page(
            "train", signed_in_as=claims, active_dataset_spec=SMALL_SYNTHETIC, train_recipe="quick", train_new_run=True
        )
        at.button(key="train_quick").click().run()
        assert not at.exception and at.success[0].value.startswith("Queued run ")
        [queued[name]] = [summary for summary in store.runs() if summary.owner_name == name]
        seed = queued[name].seed
        assert f"(seed {seed})" in at.success[0].value
        assert any(f"seed {seed}" in text.value for text in at.markdown), "the run view shows its seed"
    ada, ben = queued["Ada"], queued["Ben"]
    assert ada.seed != ben.seed
    settings = ("dataset", "model", "model_options", "epochs", "learning_rate", "batch_size", "augment", "kind")
    assert [ada.config[key] for key in settings] == [ben.config[key] for key in settings]
    # Train again, on a finished run of Ada's: a new run of hers with its seed.
    ada_claims = school_account("ada@school.org", "Ada")
    give_run(finished_run, account_user(ada_claims, "student"))
    at = open_page("train", signed_in_as=ada_claims, viewed_run=finished_run.id)
    at.button(key=f"again_{finished_run.id}").click().run()
    assert not at.exception and at.success[0].value.startswith("Queued run ")
    again = max(store.runs(), key=lambda summary: summary.created)
    original = finished_run.summary()
    assert (again.owner_name, again.seed, again.model) == ("Ada", original.seed, original.model)
    # Ben may not train Ada's run again: its config may carry her label decisions.
    ben = open_page(
        "train", signed_in_as=school_account("ben@school.org", "Ben"), viewed_run=finished_run.id, runs_scope="class"
    )
    assert not ben.exception and f"again_{finished_run.id}" not in [button.key for button in ben.button]
    assert any(finished_run.id in unescaped(text.value) for text in ben.markdown)  # her run is the one shown
