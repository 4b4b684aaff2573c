"""Home: what the lab is, which dataset is active, where to go next."""

import streamlit as st

from galaxy_core.classroom.access import Action, may
from galaxy_core.classroom.serving import exposure_warnings, server_settings
from galaxy_core.data import describe_spec
from galaxy_core.install import installed_tensorflow, nvidia_gpus
from pages.ui.display import plain
from pages.ui.identity import Viewer
from pages.ui.navigation import HOME, LAB_PAGES, run_router
from pages.ui.state import activate, active_dataset_spec, dataset_choices, get_settings


def training_device_text(settings) -> str:
    """Where runs train, without importing TensorFlow: the executor, the TensorFlow build, the GPUs."""
    if settings.executor == "ray":
        return (
            f"On the Ray cluster at `{settings.ray_address}`: each run on a node with {settings.run_num_cpus:g} "
            "free CPU(s), on its GPU when the cluster has GPUs. Each run's status names its node and device."
        )
    gpus = nvidia_gpus()
    build = installed_tensorflow()
    if gpus and "GPU build" in build:
        device = f"the GPU ({', '.join(gpus)}), with mixed precision"
    elif gpus:
        device = f"the CPU: this machine has {', '.join(gpus)}, but {build} cannot use it (run `make clean run`)"
    else:
        device = "the CPU (no NVIDIA GPU found)"
    return f"On this machine, in background processes, on {device}. TensorFlow: {build}."


def real_galaxies_ui(settings, active) -> None:
    """On the synthetic galaxies while real ones are in the data roots: say so, and offer the first of them."""
    if active.source != "synthetic":
        return
    real = [choice for choice in dataset_choices(settings, repr(settings)) if choice.spec.source != "synthetic"]
    if real and st.button(f"Use the real galaxies: {plain(real[0].label)}", key="home_real_galaxies", type="primary"):
        activate(real[0].spec)
    if real:
        st.caption(f"These galaxies are drawn by the lab; {len(real)} real dataset(s) are in the data roots.")


def render(viewer: Viewer) -> None:
    """Draw Home."""
    settings = get_settings()

    st.title("Galaxy CNN Lab")
    for warning in exposure_warnings(settings, st.get_option("server.address")):
        st.error(warning, icon=":material/lock_open:")
    st.markdown(
        "A classroom lab for convolutional neural networks on real galaxy images. Browse galaxies, train a "
        "network in the background, watch it learn, and see what it learned: which galaxies it confuses and "
        "where in the image it looks."
    )
    st.markdown(
        "The three classes come from Galaxy Zoo: **edge** (a disk seen edge-on), **smooth** (an elliptical) and "
        "**spiral**. The built-in synthetic galaxies work offline; real SDSS galaxies are read from the data "
        "folders in the settings."
    )

    left, right = st.columns(2)
    with left:
        st.subheader("Active dataset")
        active = active_dataset_spec()
        st.markdown(f"**{plain(describe_spec(active))}**")
        st.caption("Change it on the Dataset page; every page uses it.")
        real_galaxies_ui(settings, active)
    with right:
        st.subheader("Where to go next")
        for lab_page in LAB_PAGES:
            if lab_page is not HOME:
                st.page_link(lab_page.streamlit_page(), label=lab_page.purpose, icon=lab_page.icon)

    st.subheader("Where runs train")
    st.markdown(training_device_text(settings))

    if may(viewer.user, Action.SEE_SERVER_SETTINGS):
        with st.expander("Settings in force"):
            st.code("\n".join(server_settings(settings, viewer.user)), language=None)
    else:
        st.caption(
            f"On this server a run trains at most {settings.max_epochs} epochs, and an upload is at most "
            f"{settings.upload_limit_mb} MB."
        )


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
