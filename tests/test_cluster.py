"""The Ray executor on a real multi-node Ray cluster on this machine (one for the whole module).

    head node        no CPUs: the runs' actors never land here (the training service connects to it)
    node "shared"    1 CPU, started by ray.cluster_utils
    node "isolated"  1 CPU, `ray start` in a mount namespace of its own in which this test session's folders (the
                     runs folder, the dataset cache, the data) are an empty filesystem: no shared folder

Each run asks for 1 CPU, so two runs train on two different nodes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from galaxy_core.classroom.people import MACHINE_TEACHER
from galaxy_core.training import RunState
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.kinds.transfer import transfer_config
from tests.helpers import tiny_config, wait_for

LONG = 150


def node_ids(resource: str) -> set[str]:
    return {node["NodeID"][:8] for node in ray.nodes() if node["Alive"] and resource in node["Resources"]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], check=False).returncode:
        pytest.fail("the cluster tests need `unshare -m` (root) to start a node without the shared folders")
    system = {"health_check_period_ms": 500, "health_check_failure_threshold": 3, "health_check_initial_delay_ms": 0}
    head = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 0, "_system_config": system})
    shared = head.add_node(num_cpus=1, resources={"shared": 1})
    hidden = tmp_path_factory.getbasetemp()  # every folder of this test session
    ray_temp = tempfile.mkdtemp(prefix="galaxy-lab-ray-node-")
    isolated = subprocess.Popen(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            'mount -t tmpfs tmpfs "$1" && exec "$2" start --address "$3" --num-cpus 1 --resources \'{"isolated": 1}\' '
            '--block --temp-dir "$4"',
            "sh",
            str(hidden),
            str(Path(sys.executable).parent / "ray"),
            head.address,
            ray_temp,
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: node_ids("isolated"), timeout=60)
    yield {"address": head.address, "head": head, "shared": shared, "isolated": isolated}
    if isolated.poll() is None:
        isolated.terminate()
        try:
            isolated.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(isolated.pid, signal.SIGKILL)
    ray.shutdown()
    head.shutdown()
    shutil.rmtree(ray_temp, ignore_errors=True)


@pytest.fixture
def on_cluster(cluster, monkeypatch, isolated_settings):
    monkeypatch.setenv("GALAXY_LAB_EXECUTOR", "ray")
    monkeypatch.setenv("GALAXY_LAB_RAY_ADDRESS", cluster["address"])
    monkeypatch.setenv("GALAXY_LAB_RUN_NUM_CPUS", "1")
    monkeypatch.setenv("GALAXY_LAB_MAX_CONCURRENT_RUNS", "2")
    return ServiceClient(isolated_settings["runs"])


def test_two_runs_train_on_two_nodes_and_fill_the_head_run_store(on_cluster):
    runs = [on_cluster.submit(tiny_config(epochs=3, seed=seed), MACHINE_TEACHER) for seed in (0, 1)]
    for run in runs:
        wait_for(lambda run=run: not run.summary().state.active)
    summaries = [run.summary() for run in runs]
    assert [s.message for s in summaries] == ["finished after 3 of 3 epochs, evaluated"] * 2
    assert {s.executor for s in summaries} == {"ray"}
    nodes = {s.node.rsplit("Ray node ", 1)[1].rstrip(")") for s in summaries}
    assert nodes == node_ids("shared") | node_ids("isolated")  # one run on each node, the isolated one included
    for run in runs:
        for name in ("best.keras", "final.keras", "evaluation.json", "predictions.npz", "metrics.jsonl", "log.txt"):
            assert (run.path / name).stat().st_size > 0, name
        assert [m["epoch"] for m in run.metrics() if m["kind"] == "epoch"] == [1, 2, 3]
        assert "training on " in run.log_tail() and run.summary().has_test_results
        events = list(run.tensorboard_dir.rglob("events.out.tfevents.*"))
        assert events and all(path.stat().st_size > 0 for path in events)
        assert run.predictions()["probabilities"].shape == (6, 3)
    # Started from one of them, on both nodes: the isolated one, which cannot read the head's folders, is handed
    # the base network with the run.
    transfers = [
        on_cluster.submit(transfer_config(summaries[0], epochs=2, seed=seed), MACHINE_TEACHER) for seed in (0, 1)
    ]
    for run in transfers:
        wait_for(lambda run=run: not run.summary().state.active)
    done = [run.summary() for run in transfers]
    assert [s.message for s in done] == ["finished after 2 of 2 epochs, evaluated"] * 2, [s.error for s in done]
    assert {s.node.rsplit("Ray node ", 1)[1].rstrip(")") for s in done} == nodes
    assert all(s.base_run == runs[0].id and s.has_test_results for s in done)


def test_a_stop_reaches_a_run_on_another_node(on_cluster):
    run = on_cluster.submit(tiny_config(epochs=LONG), MACHINE_TEACHER)
    wait_for(lambda: any(m["kind"] == "epoch" for m in run.metrics()))
    on_cluster.stop(run.id, MACHINE_TEACHER)
    wait_for(lambda: run.summary().state is RunState.STOPPED, timeout=60)
    summary = run.summary()
    assert summary.message == f"stopped after {summary.epochs_done} of {LONG} epochs, evaluated"
    assert summary.has_test_results and run.best_model_path.is_file()


def test_a_run_asking_for_a_gpu_the_cluster_lacks_waits_with_a_clear_message(on_cluster, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_RUN_NUM_GPUS", "1")
    run = on_cluster.submit(tiny_config(), MACHINE_TEACHER)
    problem = wait_for(lambda: on_cluster.service().problem, timeout=60)
    assert problem.startswith("each run asks for 1 CPU(s) and 1 GPU(s) (run_num_cpus, run_num_gpus), and no node")
    assert run.summary().state is RunState.QUEUED  # nothing lost
    assert on_cluster.stop(run.id, MACHINE_TEACHER).message == "stopped before it started"


def test_a_lost_node_interrupts_its_run_and_the_queue_goes_on(on_cluster, cluster, monkeypatch):
    monkeypatch.setenv("GALAXY_LAB_MAX_CONCURRENT_RUNS", "1")
    lost = on_cluster.submit(tiny_config(epochs=LONG), MACHINE_TEACHER)
    queued = on_cluster.submit(tiny_config(seed=1), MACHINE_TEACHER)
    wait_for(lambda: any(m["kind"] == "epoch" for m in lost.metrics()))
    node = lost.summary().node.rsplit("Ray node ", 1)[1].rstrip(")")
    if node in node_ids("shared"):
        cluster["head"].remove_node(cluster["shared"], allow_graceful=False)
    else:  # the node's processes at once, as a power cut would (SIGTERM would drain it for 30 s first)
        os.killpg(cluster["isolated"].pid, signal.SIGKILL)
    wait_for(lambda: lost.summary().state is RunState.INTERRUPTED, timeout=60)
    assert lost.summary().message == "interrupted: the Ray node training it was lost"
    wait_for(lambda: queued.summary().state is RunState.FINISHED, timeout=120)
    assert queued.summary().node and node not in queued.summary().node
