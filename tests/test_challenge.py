"""A class challenge with a private test set: set-up refused with reasons, rules and limits that refuse a
submission naming the rule, scoring on the private images (recomputed here from the submitted model), nothing
private to a student before the reveal, the shake-up ranks and the grade book's rows."""

import csv
import io
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galaxy_core.classroom.access import NotAllowedError
from galaxy_core.classroom.challenge import (
    ChallengeRules,
    carve_private_share,
    change_challenge,
    check_private_folder,
    copy_challenge,
    list_challenges,
    set_up_challenge,
    submissions_of,
)
from galaxy_core.classroom.people import MACHINE_TEACHER, STUDENT, User
from galaxy_core.classroom.submissions import (
    RuleBrokenError,
    challenge_board,
    grade_book_csv,
    my_submissions,
    submit_run,
)
from galaxy_core.data import DatasetSpec, spec_from_link, spec_to_link
from galaxy_core.data.dataset import DatasetError
from galaxy_core.errors import InvalidInputError
from galaxy_core.settings import load_settings
from galaxy_core.training import Run
from tests.helpers import (
    CLASSES,
    PRIVATE_COUNTS,
    challenge_on,
    copy_of_run,
    score_queued,
    write_image_folder,
    write_private_folder,
)

ADA = User("ada", "Ada", STUDENT)
BOB = User("bob", "Bob", STUDENT)


@pytest.fixture
def challenge(finished_run, finished_transfer, tmp_path, monkeypatch):
    """An open challenge on the finished run's dataset, with Ada's copy of the run and Bob's transfer run from it
    (their public figures 0.70 and 0.60); scoring runs stay queued until a test scores them here."""
    monkeypatch.setattr("galaxy_core.training.client.ensure_supervisor", lambda root: False)
    private = write_private_folder(tmp_path / "private")
    made = challenge_on(finished_run, private)
    runs = {
        who.id: copy_of_run(source, who, who.id, test_balanced_accuracy=figure)
        for who, figure, source in ((ADA, 0.7, finished_run), (BOB, 0.6, finished_transfer))
    }
    return load_settings(), made, runs, private


def private_figure_by_hand(run: Run, private: Path) -> float:
    """The run's best model's balanced accuracy on the private images, read and averaged here."""
    import keras

    model = keras.models.load_model(run.model_path("best"), safe_mode=True)
    recalls = []
    for label, name in enumerate(CLASSES):
        images = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted((private / name).iterdir())])
        recalls.append(np.mean(model.predict(images, verbose=0).argmax(axis=1) == label))
    return float(np.mean(recalls))


def test_a_challenge_is_set_up_by_a_teacher_with_a_private_folder_outside_the_data_roots(finished_run, tmp_path):
    settings, dataset = load_settings(), finished_run.summary().dataset
    private = write_private_folder(tmp_path / "private")
    with pytest.raises(NotAllowedError, match="only a teacher"):
        set_up_challenge(settings.runs_dir, "mine", dataset, str(private), ChallengeRules(), ADA, settings)
    inside = write_private_folder(settings.data_roots[0] / "hidden")
    with pytest.raises(InvalidInputError, match="inside the data root"):
        set_up_challenge(settings.runs_dir, "t", dataset, str(inside), ChallengeRules(), MACHINE_TEACHER, settings)
    with pytest.raises(InvalidInputError, match="the data root"):  # a folder holding a data root shows it too
        set_up_challenge(
            settings.runs_dir,
            "t",
            dataset,
            str(settings.data_roots[0].parent),
            ChallengeRules(),
            MACHINE_TEACHER,
            settings,
        )
    (private / "spiral").rename(private / "merger")
    with pytest.raises(InvalidInputError, match="not the dataset's"):
        set_up_challenge(settings.runs_dir, "t", dataset, str(private), ChallengeRules(), MACHINE_TEACHER, settings)
    (private / "merger").rename(private / "spiral")
    with pytest.raises(InvalidInputError, match="submissions_per_day"):
        set_up_challenge(
            settings.runs_dir,
            "t",
            dataset,
            str(private),
            ChallengeRules(submissions_per_day=0),
            MACHINE_TEACHER,
            settings,
        )
    made = set_up_challenge(
        settings.runs_dir, "Spring <b>", dataset, str(private), ChallengeRules(), MACHINE_TEACHER, settings
    )
    assert (made.class_names, made.private_images) == (CLASSES, sum(PRIVATE_COUNTS))
    with pytest.raises(DatasetError, match="outside the data roots"):  # a link naming it opens nothing
        spec_from_link(spec_to_link(made.private_spec(dataset)), settings)
    assert [c.id for c in list_challenges(settings.runs_dir)] == [made.id]


def test_a_submission_is_scored_on_the_private_images(challenge):
    settings, made, runs, private = challenge
    submission = submit_run(settings, made.id, runs["ada"].id, ADA)
    assert submission.public == pytest.approx(0.7)
    [before] = my_submissions(settings.runs_dir, made, ADA)
    assert before.state == "waiting" and before.private is None
    score_queued(settings)
    [view] = my_submissions(settings.runs_dir, made, ADA)
    assert view.state == "scored" and view.private is None  # not before the reveal
    entries, _ = challenge_board(settings, made, MACHINE_TEACHER, show_names=True)
    assert entries[0].chosen.private == pytest.approx(private_figure_by_hand(runs["ada"], private), abs=1e-6)
    low, high = entries[0].chosen.private_interval
    assert low <= entries[0].chosen.private <= high


def test_a_student_sees_nothing_private_before_the_reveal(challenge):
    settings, made, runs, _ = challenge
    submit_run(settings, made.id, runs["ada"].id, ADA)
    submit_run(settings, made.id, runs["bob"].id, BOB)
    score_queued(settings)
    entries, verdict = challenge_board(settings, made, ADA, show_names=False)
    assert [(e.name, e.chosen.private, e.private_rank) for e in entries] == [
        ("Ada", None, None),
        ("classmate 2", None, None),
    ]
    assert verdict is None
    with pytest.raises(NotAllowedError):
        grade_book_csv(settings, made, ADA)
    with pytest.raises(NotAllowedError):
        change_challenge(settings.runs_dir, made.id, ADA, revealed=True)
    revealed = change_challenge(settings.runs_dir, made.id, MACHINE_TEACHER, revealed=True)
    entries, verdict = challenge_board(settings, revealed, ADA, show_names=False)
    assert all(entry.chosen.private is not None for entry in entries) and verdict is not None


def test_the_private_figures_show_at_the_deadline_when_the_teacher_chose_so(challenge):
    settings, made, runs, _ = challenge
    deadline = time.time() + 3600
    made = change_challenge(
        settings.runs_dir, made.id, MACHINE_TEACHER, rules=ChallengeRules(deadline=deadline, reveal_at_deadline=True)
    )
    submit_run(settings, made.id, runs["ada"].id, ADA)
    score_queued(settings)
    assert my_submissions(settings.runs_dir, made, ADA, now=deadline - 1)[0].private is None
    assert my_submissions(settings.runs_dir, made, ADA, now=deadline + 1)[0].private is not None
    with pytest.raises(RuleBrokenError, match="closed"):
        submit_run(settings, made.id, runs["bob"].id, BOB, now=deadline + 1)


def test_rules_and_limits_refuse_naming_the_rule(challenge):
    settings, made, runs, _ = challenge
    with pytest.raises(NotAllowedError, match="Bob may not submit"):
        submit_run(settings, made.id, runs["ada"].id, BOB)
    parameters = runs["ada"].summary().parameters
    change_challenge(settings.runs_dir, made.id, MACHINE_TEACHER, rules=ChallengeRules(max_parameters=parameters - 1))
    with pytest.raises(RuleBrokenError, match=f"{parameters:,} parameters, the rules allow {parameters - 1:,}"):
        submit_run(settings, made.id, runs["ada"].id, ADA)
    change_challenge(settings.runs_dir, made.id, MACHINE_TEACHER, rules=ChallengeRules(max_epochs=1))
    with pytest.raises(RuleBrokenError, match="trained 2 epochs, the rules allow 1"):
        submit_run(settings, made.id, runs["ada"].id, ADA)
    change_challenge(settings.runs_dir, made.id, MACHINE_TEACHER, rules=ChallengeRules(submissions_in_all=1))
    submit_run(settings, made.id, runs["ada"].id, ADA)
    with pytest.raises(RuleBrokenError, match="already your submission 1"):
        submit_run(settings, made.id, runs["ada"].id, ADA)
    second = Run(runs["ada"].path.with_name(runs["ada"].id + "-again"))
    shutil.copytree(runs["ada"].path, second.path)
    with pytest.raises(RuleBrokenError, match="no submission left: the rules allow 1 submissions in all"):
        submit_run(settings, made.id, second.id, ADA)
    change_challenge(settings.runs_dir, made.id, MACHINE_TEACHER, rules=ChallengeRules(submissions_per_day=1))
    with pytest.raises(RuleBrokenError, match="1 in any 24 hours"):
        submit_run(settings, made.id, second.id, ADA)
    assert submit_run(settings, made.id, second.id, ADA, now=time.time() + 25 * 3600).number == 2
    change_challenge(settings.runs_dir, made.id, MACHINE_TEACHER, closed=True)
    with pytest.raises(RuleBrokenError, match="closed"):
        submit_run(settings, made.id, runs["bob"].id, BOB)


def test_a_run_on_another_dataset_is_refused(challenge):
    settings, made, runs, _ = challenge
    other = change_challenge(
        settings.runs_dir, made.id, MACHINE_TEACHER, dataset=DatasetSpec.of("synthetic", num_images=60).to_dict()
    )
    with pytest.raises(RuleBrokenError, match="did not train on the challenge's dataset"):
        submit_run(settings, other.id, runs["ada"].id, ADA)


def test_two_submissions_at_once_cannot_both_take_the_last_one(challenge):
    settings, made, runs, _ = challenge
    change_challenge(settings.runs_dir, made.id, MACHINE_TEACHER, rules=ChallengeRules(submissions_in_all=1))
    second = Run(runs["ada"].path.with_name(runs["ada"].id + "-again"))
    shutil.copytree(runs["ada"].path, second.path)
    outcomes = []

    def submit(run_id):
        try:
            outcomes.append(submit_run(settings, made.id, run_id, ADA).number)
        except RuleBrokenError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=submit, args=(run_id,)) for run_id in (runs["ada"].id, second.id)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == sorted(
        [1, "you have no submission left: the rules allow 1 submissions in all"], key=str
    )
    assert len(submissions_of(settings.runs_dir, made.id)) == 1


def test_the_shake_up_and_the_grade_book(challenge):
    settings, made, runs, private = challenge
    for who in (ADA, BOB):
        submit_run(settings, made.id, runs[who.id].id, who)
    score_queued(settings)
    by_hand = {who: private_figure_by_hand(runs[who], private) for who in ("ada", "bob")}
    entries, _ = challenge_board(settings, made, MACHINE_TEACHER, show_names=True)
    assert [entry.student_id for entry in entries] == ["ada", "bob"]  # by the public figures, 0.7 and 0.6
    private_order = sorted(by_hand, key=lambda who: -by_hand[who])  # a tie keeps the public order
    assert {entry.student_id: entry.private_rank for entry in entries} == {
        who: private_order.index(who) + 1 for who in by_hand
    }
    rows = list(csv.DictReader(io.StringIO(grade_book_csv(settings, made, MACHINE_TEACHER))))
    assert [(row["student"], float(row["private balanced accuracy"]), int(row["public rank"])) for row in rows] == [
        (entry.name, round(by_hand[entry.student_id], 4), entry.public_rank) for entry in entries
    ]
    assert all(row["rules met"] == "yes" for row in rows)


def test_a_copy_for_next_year_has_the_rules_and_no_submissions(challenge):
    settings, made, runs, _ = challenge
    submit_run(settings, made.id, runs["ada"].id, ADA)
    copy = copy_challenge(settings.runs_dir, made.id, "Spring galaxies 2027", MACHINE_TEACHER)
    assert copy.id != made.id and copy.private_folder == made.private_folder and copy.rules.deadline is None
    assert submissions_of(settings.runs_dir, copy.id) == []


def test_a_challenge_from_the_terminal(finished_run, tmp_path, capsys, monkeypatch):
    from galaxy_core.cli import main

    monkeypatch.setattr("galaxy_core.training.client.ensure_supervisor", lambda root: False)
    settings, private = load_settings(), write_private_folder(tmp_path / "private")
    dataset = ["--dataset", "synthetic", "--num-images", "90", "--image-size", "32"]
    assert main(["challenge", "new", "Spring", *dataset, "--private", str(settings.data_roots[0])]) == 2
    assert "the data root" in capsys.readouterr().err
    assert main(["challenge", "new", "Spring", *dataset, "--private", str(private), "--per-day", "2"]) == 0
    challenge_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["challenge", "submit", challenge_id, finished_run.id]) == 0
    assert capsys.readouterr().out.endswith("scoring queued; 1 left\n")
    score_queued(settings)
    assert main(["challenge", "board", challenge_id]) == 0
    by_hand = private_figure_by_hand(finished_run, private)
    assert f"\t{by_hand:.4f} (95% bootstrap interval" in capsys.readouterr().out
    grades = tmp_path / "grades.csv"
    assert main(["challenge", "grades", challenge_id, "--out", str(grades)]) == 0
    [row] = list(csv.DictReader(io.StringIO(grades.read_text())))
    assert (row["run"], row["private balanced accuracy"]) == (finished_run.id, f"{by_hand:.4f}")
    assert main(["challenge", "reveal", challenge_id]) == 0 and "revealed" in capsys.readouterr().out
    assert main(["challenge", "list"]) == 0 and f"{challenge_id}\tSpring\topen" in capsys.readouterr().out


def test_carving_keeps_a_share_of_the_test_split_apart_and_links_into_a_data_root_are_refused(tmp_path):
    settings = load_settings()
    source = write_image_folder(tmp_path / "source", {"a": 4, "b": 6}, splits=("train", "val", "test"))
    (source / "labels.csv").write_text("name,label\n")
    public, private = tmp_path / "public", tmp_path / "private"
    assert carve_private_share(source, 0.5, public, private) == (30 - 5, 5)
    names = {
        split: {p.relative_to(public / split) for p in (public / split).rglob("*.png")} for split in ("train", "test")
    }
    kept_apart = {p.relative_to(private) for p in private.rglob("*.png")}
    assert len(names["train"]) == 10 and len(names["test"]) == 5 and not names["test"] & kept_apart
    assert names["test"] | kept_apart == {p.relative_to(source / "test") for p in (source / "test").rglob("*.png")}
    assert sorted(len(list((private / c).iterdir())) for c in ("a", "b")) == [2, 3]
    assert not (public / "labels.csv").exists()  # it may name the private images
    with pytest.raises(InvalidInputError, match="exists already"):
        carve_private_share(source, 0.5, public, tmp_path / "other")
    inside = settings.data_roots[0] / "source"
    shutil.move(source, inside)  # the private images now link into a data root the class browses
    private.rename(tmp_path / "stale")
    carve_private_share(inside, 0.5, tmp_path / "public2", private)
    with pytest.raises(InvalidInputError, match=r"is a link to .* inside the data root"):
        check_private_folder(str(private), settings.data_roots)
