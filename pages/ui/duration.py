"""How long a run will take on this machine, on the Train page: from the pace of the newest run of its step cost,
else from a throughput probe measured in the background."""

from __future__ import annotations

import streamlit as st

from galaxy_core.errors import GalaxyLabError
from galaxy_core.training import TrainConfig, estimate
from galaxy_core.training.client import ServiceClient
from galaxy_core.training.kinds import run_kind
from pages.ui.state import REFRESH_SECONDS, active_dataset_spec, get_settings, load_dataset


def expected_duration_ui(config: TrainConfig, *, per_epoch: bool = False) -> None:
    """How long the run will take on this machine, from its recipe's pace: the newest run's of the same step cost
    (the whole pipeline, measured), else a probe's (started in the background the first time, never while a run
    is queued or trains; the caption counts its seconds and the page redraws when it is in)."""
    settings = get_settings()
    try:
        sizes = {name: len(split) for name, split in load_dataset(active_dataset_spec(), settings).splits.items()}
    except (GalaxyLabError, ValueError):
        return  # the Dataset page and the run itself say what is wrong with the dataset
    summaries = ServiceClient.from_settings(settings).store.runs()
    throughput = estimate.pace_of_runs(config, summaries) or estimate.cached_throughput(config, settings.cache_dir)
    if throughput is None:
        measuring = estimate.measure(config, settings.cache_dir, settings.runs_dir)
        if measuring is not None and measuring.held:
            st.caption(
                "How long this recipe takes here is measured once no run is queued or training: measuring now "
                "would slow the runs down and time a busy machine."
            )
        elif measuring is not None:
            st.fragment(run_every=REFRESH_SECONDS)(_measuring_ui)(config, settings)
        return
    pace = f"{throughput.train_images_per_second:.0f} training images/s" + (
        f", as run {throughput.run_id} trained" if throughput.run_id else ""
    )
    if per_epoch:
        epoch = estimate.epoch_seconds(config, throughput, sizes)
        st.caption(
            f"On this machine: about **{epoch:.0f} s an epoch** at batch {config.batch_size} and "
            f"{config.input_shape[0]} px ({pace})."
        )
        return
    seconds = estimate.expected_seconds(config, throughput, sizes)
    planned = run_kind(config.kind).planned_epochs(config)
    st.caption(
        f"Expected duration on this machine: about **{_duration(seconds)}** for {planned} epochs ({pace}; early "
        "stopping can end it sooner, other runs training at the same time make it longer)."
    )


def _measuring_ui(config: TrainConfig, settings) -> None:
    measuring = estimate.measure(config, settings.cache_dir, settings.runs_dir)
    if measuring is None or measuring.held:  # measured, failed (the page says nothing) or a run was queued
        st.rerun(scope="app")
    elif measuring.waiting:
        st.caption("Measuring how fast this machine trains this recipe once another recipe's measurement ends…")
    else:
        st.caption(
            f"Measuring how fast this machine trains this recipe: {measuring.seconds_so_far:.0f} s so far, about "
            f"{measuring.expected_seconds:.0f} s in all…"
        )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
