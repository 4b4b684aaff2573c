"""Each callback of a run alone (galaxy_core.training.callbacks), driven by hand or by a tiny fit, against figures
worked out here."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from galaxy_core.training.callbacks import (
    BestCheckpoint,
    EarlyStop,
    Monitor,
    ProgressReport,
    StopOnRequest,
    ValidationMetrics,
)


class FakeRun:
    """What a callback may write to a run, kept in lists; a stop is requested once `stop_after` asks have passed."""

    def __init__(self, stop_after: int | None = None):
        self.asks, self.stop_after = 0, stop_after
        self.saved, self.logged, self.records, self.progress = [], [], [], []

    def stop_requested(self) -> bool:
        self.asks += 1
        return self.stop_after is not None and self.asks > self.stop_after

    def save_model(self, model, which):
        self.saved.append(which)

    def log(self, message):
        self.logged.append(message)

    def append_metrics(self, record):
        self.records.append(record)

    def report_progress(self, **fields):
        self.progress.append(fields)


def driven(callback, stop_training=False):
    """The callback on a stand-in model (no fit): its epoch-end methods are called by hand."""
    callback.set_model(SimpleNamespace(stop_training=stop_training))
    return callback


def tiny_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_monitor_knows_better_from_its_explicit_mode():
    higher, lower = Monitor("val_balanced_accuracy", "max"), Monitor("val_loss", "min")
    assert [higher.improved(v) for v in (0.5, 0.4, 0.7, 0.7)] == [True, False, True, False]
    assert [lower.improved(v) for v in (0.5, 0.4, 0.7, 0.4)] == [True, True, False, False]
    assert Monitor("val_loss", "min").value({"val_loss": float("nan")}) is None
    with pytest.raises(ValueError, match="one of \\('max', 'min'\\), not 'up'"):
        Monitor("loss", "up")


@pytest.mark.parametrize(
    ("mode", "values", "saved_at"),
    [("max", [0.5, 0.7, 0.6, 0.8], [1, 2, 4]), ("min", [0.5, 0.7, 0.4, 0.4], [1, 3])],
)
def test_the_best_checkpoint_is_saved_on_each_improvement_only(mode, values, saved_at):
    run = FakeRun()
    checkpoint = driven(BestCheckpoint(run, Monitor("val_x", mode)))
    written = []
    for epoch, value in enumerate(values, start=1):
        before = len(run.saved)
        checkpoint.on_epoch_end(epoch - 1, {"val_x": value})
        written += [epoch] * (len(run.saved) - before)
    assert written == saved_at and set(run.saved) == {"best"}
    checkpoint.on_epoch_end(5, {})  # no figure (validation cut short): nothing to compare
    stopped = driven(BestCheckpoint(run, Monitor("val_x", mode)), stop_training=True)
    stopped.on_epoch_end(0, {"val_x": 0.9})  # an epoch a stop ended is no checkpoint
    assert len(run.saved) == len(saved_at) and not stopped.saved


def test_early_stopping_counts_epochs_without_improvement_afresh_in_each_phase():
    run = FakeRun()
    stop = driven(EarlyStop(run, Monitor("val_x", "max"), patience=2))
    for value in (0.5, 0.6, 0.55):
        stop.on_epoch_end(0, {"val_x": value})
    assert not stop.model.stop_training and stop.epochs_without_improvement == 1
    stop.on_train_begin()  # a second fit phase: the count starts again, the best to beat stays 0.6
    stop.on_epoch_end(0, {"val_x": 0.58})
    assert not stop.model.stop_training
    stop.on_epoch_end(0, {"val_x": 0.59})
    assert stop.model.stop_training and run.logged == ["early stopping: no better val_x for 2 epochs"]


def test_a_stop_request_ends_training_after_the_batch_it_is_seen():
    run = FakeRun(stop_after=5)  # the 6th ask says stop
    stop = StopOnRequest(run)
    batches = []
    seen = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    images, labels = np.zeros((40, 2), np.float32), np.arange(40) % 3
    tiny_model().fit(images, labels, batch_size=4, epochs=3, callbacks=[stop, seen], verbose=0)
    assert len(batches) == 6 and stop.requested  # 10 batches an epoch: it ended inside the first
    assert run.logged == ["stop requested: training ends here"]


def test_validation_figures_are_the_models_answers_scored():
    model = tiny_model()
    model.layers[-1].set_weights([np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]), np.zeros(3)])
    images = np.array([[1, 0], [0, 1], [0, 0], [1, 0]], np.float32)
    labels = np.array([0, 1, 2, 1])
    validation = ValidationMetrics(SimpleNamespace(images=images, labels=labels), 3, StopOnRequest(FakeRun()))
    validation.set_model(model)
    validation.stop.set_model(model)
    logs = {}
    validation.on_epoch_end(0, logs)
    # By hand: softmax([2, 0, 0]) = e^2 / (e^2 + 2) for the first class; [0, 0, 0] gives a third each.
    p = np.e**2 / (np.e**2 + 2)
    q = 1 / (np.e**2 + 2)
    answers = [p, p, 1 / 3, q]  # each image's probability of its true class
    assert logs["val_loss"] == pytest.approx(-np.mean(np.log(answers)), rel=1e-5)
    # Predicted classes 0, 1, 0 (a tie goes to the first), 0: right, right, wrong, wrong.
    assert logs["val_accuracy"] == pytest.approx(0.5)
    assert logs["val_balanced_accuracy"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_no_validation_after_a_stop():
    run = FakeRun(stop_after=0)
    stop = StopOnRequest(run)
    model = tiny_model()
    stop.set_model(model)
    stop.check()
    validation = ValidationMetrics(SimpleNamespace(images=np.zeros((4, 2)), labels=np.zeros(4, int)), 3, stop)
    validation.set_model(model)
    logs = {"loss": 1.0}
    validation.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0}


def test_progress_records_whole_and_partial_epochs():
    run = FakeRun()
    report = driven(ProgressReport(run, train_images=40, batch_size=10, planned_epochs=3))
    report.model.optimizer = SimpleNamespace(learning_rate=0.01)
    report.on_epoch_begin(0)
    for batch in range(4):
        report.on_train_batch_end(batch, {"loss": 1.0 - batch / 10, "accuracy": 0.5})
    report.on_epoch_end(0, {"loss": 0.7, "accuracy": 0.5, "val_balanced_accuracy": 0.6})
    report.on_epoch_begin(1)
    report.on_train_batch_end(0, {"loss": 0.6, "accuracy": 0.6})
    report.on_epoch_end(1, {"loss": 0.6, "accuracy": 0.6})  # cut short by a stop after its first batch
    kinds = [(record["kind"], record.get("epoch")) for record in run.records if record["kind"] != "batch"]
    assert kinds == [("epoch", 1), ("partial_epoch", 2)]
    epoch = next(record for record in run.records if record["kind"] == "epoch")
    assert (epoch["loss"], epoch["val_balanced_accuracy"], epoch["learning_rate"]) == (0.7, 0.6, 0.01)
    assert run.records[-1]["batches"] == 1 and run.records[-1]["of_batches"] == 4
    assert report.epochs_done == 1 and run.progress[-1]["epochs_done"] == 1
    assert run.progress[-1]["best_val_balanced_accuracy"] == 0.6


def test_no_time_left_is_guessed_before_the_batches_after_the_first_give_a_pace(monkeypatch):
    """The first batch builds the training graph (here 10 s, then 0.1 s a batch): an ETA from it would be 100
    times too long. None is given until two batches after it; then the pace of those."""
    import galaxy_core.training.callbacks as callbacks

    clock = iter([0.0, 10.0, 10.1, 10.2, 10.3])  # the epoch's start, then the end of batches 1 to 4
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(callbacks, "PROGRESS_STATUS_SECONDS", 0.0)
    run = FakeRun()
    report = driven(ProgressReport(run, train_images=400, batch_size=10, planned_epochs=2))  # 40 batches an epoch
    report.on_epoch_begin(0)
    for batch in range(4):
        report.on_train_batch_end(batch, {"loss": 1.0, "accuracy": 0.5})
    assert run.progress[0] == {"message": "training", "batches_done": 1, "steps_per_epoch": 40}
    assert ["eta_seconds" in fields for fields in run.progress] == [False, False, True, True]
    # After batch 4: 3 batches in 0.3 s since the first, 76 batches left of 80.
    assert run.progress[-1]["eta_seconds"] == pytest.approx(0.1 * 76)
