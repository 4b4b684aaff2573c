"""Runs on a Ray cluster: each run trains in a Ray actor on whichever node has room, and everything it writes
comes back into the head's run store while it trains. No filesystem is shared between the nodes.

    head (the supervisor process)                      a node with room
    ---------------------------------------------      ----------------------------------------------------
    RunDriver thread: loads the dataset (its cache),    RemoteTrainer actor: trains through galaxy_core.
    puts it in Ray's object store, starts the actor     training.procedure with a RemoteRun, which keeps every
    (handing it the models the run starts from), and    write as an event (status, metrics, log lines, model
    every POLL_SECONDS asks it for its news (passing    files, evaluation, predictions, TensorBoard bytes) in
    on a stop request); applies the events to the run   a node-local temporary folder and in memory.
    folder through the run store.

An answered poll is the run's heartbeat. A lost node, a killed actor or Ray's memory monitor ends the run as
interrupted with that cause. Ray is imported only here, and only when the executor is used.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from galaxy_core.settings import Settings
from galaxy_core.training.config import TrainConfig
from galaxy_core.training.executors import Ended, ExecutorUnavailableError
from galaxy_core.training.lifecycle import (
    Outcome,
    RunState,
    StoppedBeforeTrainingError,
    failed,
    failure_message,
)
from galaxy_core.training.recipe import load_run_dataset
from galaxy_core.training.store import MODEL_FILES, Run, input_model_file, model_file_name

POLL_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 30.0
NAMESPACE = "galaxy-cnn-lab"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorUnavailableError(
            'executor = "ray" needs Ray on this machine: pip install "galaxy-cnn-lab[cluster]" (or ray==2.60.0), '
            'or set executor = "local"'
        ) from None
    return ray


class RemoteRun:
    """The run writer of a run training on a Ray node: each call becomes an event for the head's run store."""

    def __init__(self, run_id: str, config: dict, input_models: dict[str, bytes]):
        self.id, self._config = run_id, config
        self.folder = Path(tempfile.mkdtemp(prefix=f"galaxy-lab-{run_id}-"))
        self.best_model_path = self.folder / MODEL_FILES["best"]
        for which, data in input_models.items():
            self.input_model_path(which).write_bytes(data)
        self.tensorboard_dir = self.folder / "tensorboard"
        self._events: list[tuple] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent: dict[Path, int] = {}  # bytes of each TensorBoard file already sent

    def _emit(self, *event) -> None:
        with self._lock:
            self._events.append(event)

    def config(self) -> dict:
        return dict(self._config)

    def input_model_path(self, which: str) -> Path:
        return self.folder / input_model_file(which)

    def report_progress(self, **fields) -> None:
        self._emit("report_progress", fields)

    def append_metrics(self, record: dict) -> None:
        self._emit("append_metrics", {"time": time.time(), **record})

    def log(self, message: str) -> None:
        self._emit("log", message)

    def save_model(self, model, which: str, *also: str) -> None:
        path = self.folder / model_file_name(which)
        model.save(path)
        data = path.read_bytes()
        for name in (which, *also):  # the same model under each name, as Run.save_model keeps it
            self._emit("put_model_file", name, data)

    def save_evaluation(self, summary: dict) -> None:
        self._emit("save_evaluation", summary)

    def save_arrays(self, name: str, **arrays) -> None:
        self._emit("save_arrays", name, arrays)

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def news(self, stop: bool) -> list[tuple]:
        """The events since the last call (new TensorBoard bytes last); `stop` passes on a stop request."""
        if stop:
            self._stop.set()
        for path in sorted(self.tensorboard_dir.rglob("*")) if self.tensorboard_dir.is_dir() else []:
            sent = self._sent.get(path, 0)
            if path.is_file() and path.stat().st_size > sent:
                with path.open("rb") as file:
                    file.seek(sent)
                    data = file.read()
                self._sent[path] = sent + len(data)
                self._emit("append_tensorboard", path.relative_to(self.tensorboard_dir).as_posix(), sent, data)
        with self._lock:
            events, self._events = self._events, []
        return events

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class RemoteTrainer:
    """The Ray actor that trains one run (made a Ray actor class by `RayExecutor`)."""

    def __init__(self, run_id: str, config: dict, input_models: dict[str, bytes]):
        self.run = RemoteRun(run_id, config, input_models)

    def train(self, dataset) -> dict:
        import ray
        import tensorflow as tf

        from galaxy_core.training.procedure import train_run

        context = ray.get_runtime_context()
        # TensorFlow would take every core of the node; a run gets the CPUs Ray reserved for it.
        cpus = max(1, int(context.get_assigned_resources().get("CPU", 1)))
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, cpus))
        node = f"{socket.gethostname()} {ray.util.get_node_ip_address()} (Ray node {context.get_node_id()[:8]})"
        self.run.report_progress(node=node)
        self.run.log(f"training on {node}, {cpus} CPU thread(s)")
        return train_run(self.run, dataset).to_dict()

    def news(self, stop: bool, last: bool = False) -> list[tuple]:
        """The run's events since the last call; `last`: the run has ended, its temporary folder goes too."""
        events = self.run.news(stop)
        if last:
            self.run.close()
        return events


def apply_events(run: Run, events: list[tuple]) -> None:
    """Write a remote run's events into its run folder, through the run store, in the order they happened."""
    writers = {
        "report_progress": lambda fields: run.report_progress(**fields),
        "save_arrays": lambda name, arrays: run.save_arrays(name, **arrays),
        "append_metrics": run.append_metrics,
        "log": run.log,
        "put_model_file": run.put_model_file,
        "save_evaluation": run.save_evaluation,
        "append_tensorboard": run.append_tensorboard,
    }
    for name, *arguments in events:
        writers[name](*arguments)


def _interruption(error: Exception) -> str:
    """The cause of a Ray failure, in the user's words."""
    import ray.exceptions as failures

    text = str(error)
    if isinstance(error, failures.OutOfMemoryError) or "memory monitor" in text.lower():
        return "interrupted: Ray's memory monitor killed the worker (out of memory on its node)"
    if "node has died" in text or isinstance(error, failures.NodeDiedError):
        return "interrupted: the Ray node training it was lost"
    first_line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"interrupted: the Ray worker training it died ({first_line})"


class RunDriver:
    """Drives one run on the cluster from a thread of the head, and reports how it ended through `report`."""

    def __init__(self, run: Run, resources: dict, settings: Settings, trainer_class, report):
        self.run, self.resources, self.settings = run, resources, settings
        self.trainer_class, self.report = trainer_class, report
        self.kill_as: Outcome | None = None
        self.thread = threading.Thread(target=self._main, name=f"ray-{run.id}", daemon=True)

    def _main(self) -> None:
        try:
            outcome = self._drive()
        except StoppedBeforeTrainingError as stop:
            outcome = Outcome(RunState.STOPPED, str(stop))
        except Exception as error:  # any failure of the driver itself ends the run with its cause
            outcome = failed(failure_message(error))
        self.report(Ended(self.run.id, outcome))

    def _drive(self) -> Outcome | None:
        """The run's outcome as the cluster returned it (None: the remote training returned none)."""
        import ray
        import ray.exceptions

        config = self.run.config()
        self.run.report_progress(message="loading its dataset on the head")
        dataset = load_run_dataset(
            TrainConfig.from_dict(config), self.settings, lambda: self.run.stop_requested() or bool(self.kill_as)
        )
        self.run.report_progress(message="waiting for a node of the Ray cluster with room")
        inputs = {which: path.read_bytes() for which, path in self.run.input_models().items()}
        trainer = self.trainer_class.options(**self.resources, max_concurrency=2).remote(self.run.id, config, inputs)
        result = trainer.train.remote(ray.put(dataset))
        del dataset
        try:
            return self._follow(trainer, result)
        except ray.exceptions.RayTaskError as error:
            return failed(str(error).strip().splitlines()[-1])
        except (ray.exceptions.RayActorError, ray.exceptions.NodeDiedError) as error:
            return Outcome(RunState.INTERRUPTED, _interruption(error))
        finally:
            with contextlib.suppress(Exception):
                ray.kill(trainer)

    def _follow(self, trainer, result) -> Outcome | None:
        """Apply the remote run's news to its folder every POLL_SECONDS (passing on a stop request) until it ends."""
        import ray

        answered, pending = False, None
        while True:
            if self.kill_as:
                return self.kill_as
            stop = self.run.stop_requested()
            if stop and not answered:
                return Outcome(RunState.STOPPED, "stopped before it started on a node")
            if pending is None:
                pending = trainer.news.remote(stop)
            ready, _ = ray.wait([pending], timeout=POLL_SECONDS)
            if ready:
                apply_events(self.run, ray.get(pending))
                self.run.beat()
                answered, pending = True, None
            # The next poll in POLL_SECONDS, or as soon as the run ends.
            if ray.wait([result], timeout=POLL_SECONDS if ready else 0)[0]:
                returned = ray.get(result)  # raises when the actor died or train raised
                apply_events(self.run, ray.get(trainer.news.remote(False, last=True)))
                return Outcome.from_dict(returned) if returned else None


class RayExecutor:
    """Runs on the Ray cluster at `address` ("auto": the cluster this machine belongs to)."""

    name = "ray"

    def __init__(self, settings: Settings):
        self.settings, self.address = settings, settings.ray_address
        self.num_cpus, self.num_gpus = settings.run_num_cpus, settings.run_num_gpus
        self._drivers: dict[str, RunDriver] = {}
        self._ended: list[Ended] = []
        self._lock = threading.Lock()
        self._connecting: threading.Thread | None = None
        self._connect_error: Exception | None = None
        self._trainer_class = None

    def check(self) -> None:
        ray = _import_ray()
        if not ray.is_initialized():
            self._connect(ray)
        self._resources(ray)

    def _connect(self, ray) -> None:
        """Join the cluster; ray.init can wait for minutes on an address that does not answer, so it runs in a
        thread of its own and a slow answer is reported (and waited for again on the next check)."""
        if self.address != "auto" and (self._connecting is None or not self._connecting.is_alive()):
            host, _, port = self.address.rpartition(":")
            try:
                socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
            except (OSError, ValueError) as error:
                raise ExecutorUnavailableError(
                    f"cannot reach the Ray cluster at {self.address} ({error}): start it with `ray start --head`, "
                    "or set ray_address"
                ) from None
        if self._connecting is None or (not self._connecting.is_alive() and not ray.is_initialized()):
            self._connect_error = None

            def connect():
                try:
                    ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False, logging_level="ERROR")
                except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError...
                    self._connect_error = error

            self._connecting = threading.Thread(target=connect, daemon=True, name="ray-connect")
            self._connecting.start()
        self._connecting.join(CONNECT_TIMEOUT_SECONDS)
        if self._connecting.is_alive():
            raise ExecutorUnavailableError(f"the Ray cluster at {self.address} does not answer (still trying)")
        if self._connect_error is not None or not ray.is_initialized():
            raise ExecutorUnavailableError(f"cannot join the Ray cluster at {self.address}: {self._connect_error}")

    def _resources(self, ray) -> dict:
        """The resources each run asks for; ExecutorUnavailableError when no node of the cluster has them."""
        nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
        gpus = self.num_gpus if self.num_gpus is not None else (1.0 if any(n.get("GPU", 0) >= 1 for n in nodes) else 0)
        wanted = {"num_cpus": self.num_cpus, "num_gpus": gpus}
        if not any(n.get("CPU", 0) >= self.num_cpus and n.get("GPU", 0) >= gpus for n in nodes):
            gpu_text = f" and {gpus:g} GPU(s)" if gpus else ""
            raise ExecutorUnavailableError(
                f"each run asks for {self.num_cpus:g} CPU(s){gpu_text} (run_num_cpus, run_num_gpus), and no node of "
                f"the Ray cluster at {self.address} has that many"
            )
        return wanted

    def start(self, run: Run) -> dict:
        ray = _import_ray()
        if self._trainer_class is None:
            self._trainer_class = ray.remote(RemoteTrainer)
        driver = RunDriver(run, self._resources(ray), self.settings, self._trainer_class, self._report)
        self._drivers[run.id] = driver
        driver.thread.start()
        return {"node": None}

    def _report(self, ended: Ended) -> None:
        with self._lock:
            self._ended.append(ended)

    def poll(self) -> list[Ended]:
        with self._lock:
            ended, self._ended = self._ended, []
        for item in ended:
            self._drivers.pop(item.run_id, None)
        return ended

    def active(self) -> set[str]:
        return set(self._drivers)

    def prepare(self, count: int) -> None:
        """Nothing: a node's actor starts with the run."""

    def kill(self, run_id: str, outcome: Outcome) -> None:
        driver = self._drivers.get(run_id)
        if driver is not None:
            driver.kill_as = outcome

    def close(self) -> None:
        for driver in self._drivers.values():
            driver.kill_as = Outcome(RunState.INTERRUPTED, "interrupted: the training service stopped")
        for driver in list(self._drivers.values()):
            driver.thread.join(10)
        with contextlib.suppress(Exception):
            _import_ray().shutdown()
