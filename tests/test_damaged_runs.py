"""Damaged run folders beside a good run: `galaxy-lab runs --json` lists each (unreadable ones as "damaged: ..."),
and every page that reads runs keeps working, for the good run and for each damaged one it still offers."""

from __future__ import annotations

import json
import shutil

import pytest

from galaxy_core.cli import main
from tests.helpers import open_page, saved_balanced_accuracy, unescaped


def rewrite_json(name: str, change):
    def damage(path):
        value = json.loads((path / name).read_text())
        (path / name).write_text(json.dumps(change(value)))

    return damage


def write(name: str, data: bytes):
    def damage(path):
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        target.write_bytes(data)

    return damage


def make_folder(name: str):
    def damage(path):
        (path / name).unlink()
        (path / name).mkdir()

    return damage


# name -> (damage, listed as damaged?)
DAMAGES = {
    "empty-status": (write("status.json", b"{}"), True),
    "status-not-json": (write("status.json", b"{not json"), True),
    "status-a-list": (write("status.json", b"[1, 2]"), True),
    "unknown-state": (rewrite_json("status.json", lambda s: {**s, "state": "exploded"}), True),
    "no-config": (lambda path: (path / "config.json").unlink(), True),
    "dataset-a-string": (rewrite_json("config.json", lambda c: {**c, "dataset": "gz1-3class"}), True),
    "image-size-a-string": (
        rewrite_json("config.json", lambda c: {**c, "dataset": {**c["dataset"], "image_size": "big"}}),
        True,
    ),
    "model-missing": (rewrite_json("config.json", lambda c: {k: v for k, v in c.items() if k != "model"}), True),
    "pid-a-string": (rewrite_json("status.json", lambda s: {**s, "pid": "1234", "pid_start": "x"}), False),
    "pid-minus-one": (rewrite_json("status.json", lambda s: {**s, "pid": -1}), False),
    "figures-strings": (rewrite_json("status.json", lambda s: {**s, "test_balanced_accuracy": "high"}), False),
    "metrics-not-utf8": (
        write("metrics.jsonl", b'{"kind": "epoch", "epoch": 1, "loss": 0.5}\n\xff\xfe\x00garbage\n'),
        False,
    ),
    "metrics-a-folder": (make_folder("metrics.jsonl"), False),
    "log-not-utf8": (write("log.txt", b"\xff\xfe\xfd"), False),
    "model-garbage": (write("best.keras", b"PK\x03\x04 not a model"), False),
    "predictions-garbage": (write("predictions.npz", b"not numpy"), False),
    "evaluation-a-list": (write("evaluation.json", b"[]"), False),
}


@pytest.fixture
def damaged_runs(finished_run) -> dict[str, str]:
    """A copy of the good run per damage, named after it; returns {run id: damage name}."""
    ids = {}
    for name, (damage, _) in DAMAGES.items():
        target = finished_run.path.with_name(f"{finished_run.id}-{name}")
        shutil.copytree(finished_run.path, target)
        damage(target)
        ids[target.name] = name
    return ids


def test_runs_json_lists_the_good_run_and_each_damaged_one(finished_run, damaged_runs, capsys):
    assert main(["runs", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[finished_run.id]["state"] == "finished"
    for run_id, name in damaged_runs.items():
        listed_damaged = DAMAGES[name][1]
        assert (rows[run_id]["state"] == "damaged") == listed_damaged, (name, rows[run_id])
        if listed_damaged:
            assert rows[run_id]["message"].startswith("damaged: "), rows[run_id]
    assert rows[f"{finished_run.id}-pid-minus-one"]["state"] == "finished"  # a bad pid is ignored, not signalled
    assert rows[f"{finished_run.id}-figures-strings"]["test_balanced_accuracy"] is None
    assert main(["runs"]) == 0
    text = capsys.readouterr().out
    assert f"{finished_run.id}-no-config" in text and "damaged     config.json: No such file or directory" in text


def test_the_train_page_lists_damaged_runs_apart(finished_run, damaged_runs):
    at = open_page("train")
    assert not at.exception
    listed = " ".join(m.value for m in at.markdown)
    for run_id, name in damaged_runs.items():
        assert (f"`{run_id}`: damaged:" in listed) == DAMAGES[name][1], name


def offered_runs(at, key: str, candidates: list[str]) -> list[str]:
    offered = at.selectbox(key=key).options
    assert offered and not any(f"-{name}" in " ".join(offered) for name, (_, bad) in DAMAGES.items() if bad)
    return [run_id for run_id in candidates if any(option.startswith(run_id + " ") for option in offered)]


def test_evaluate_shows_each_run_it_offers_or_says_why_it_cannot(finished_run, damaged_runs):
    """The Metrics tab shows the saved figures (the damaged predictions are made again from the model); the
    Grad-CAM tab loads the model, and a damaged model file is said, not raised."""
    expected = f"{saved_balanced_accuracy(finished_run):.1%}"
    at = open_page("evaluate")
    for run_id in offered_runs(at, "evaluate_run", [finished_run.id, *damaged_runs]):
        at.selectbox(key="evaluate_run").set_value(run_id).run()
        assert not at.exception, run_id
        assert at.metric[1].value == expected, run_id  # the same model and test images, whatever was damaged
    for run_id, name in damaged_runs.items():
        if name == "model-garbage":
            at = open_page("evaluate", evaluate_run=run_id, evaluate_tabs="Grad-CAM")
            assert not at.exception
            shown = unescaped(at.error[0].value)
            assert "The model cannot be loaded:" in shown and "best.keras cannot be loaded" in shown


def test_classify_answers_with_each_run_it_offers_or_says_why_it_cannot(finished_run, damaged_runs):
    at = open_page("classify", classify_source="From the dataset")
    offered = offered_runs(at, "classify_run", [finished_run.id, *damaged_runs])
    assert "model-garbage" in {damaged_runs.get(run_id) for run_id in offered}
    for run_id in offered:
        at.selectbox(key="classify_run").set_value(run_id).run()
        assert not at.exception, run_id
        if damaged_runs.get(run_id) == "model-garbage":
            assert "This run's model cannot be used" in at.error[0].value and "Your images are kept" in (
                at.error[0].value
            )
        else:
            assert not at.error, run_id
            assert at.dataframe, run_id  # the answers' table


COMPARE_TABS = ("Figures", "Curves", "Confusion matrices", "Significance", "Disagreements", "Shared mistakes")


@pytest.mark.parametrize("tab", COMPARE_TABS)
def test_compare_keeps_working_with_every_run_it_offers(tab, finished_run, damaged_runs):
    offered = open_page("compare").multiselect(key="compare_runs").options
    assert any(option.startswith(finished_run.id + " ") for option in offered)
    others = [option.split(" ")[0] for option in offered if not option.startswith(finished_run.id + " ")]
    # The good run and up to three others (Compare takes four at most); one other where two runs are compared.
    step = 1 if tab in ("Significance", "Disagreements") else 3
    for start in range(0, len(others), step):
        chosen = [finished_run.id, *others[start : start + step]]
        at = open_page("compare", compare_tabs=tab, compare_runs=chosen)
        assert not at.exception, (tab, chosen)
