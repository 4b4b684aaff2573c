"""Galaxy CNN Lab: the router. Page scripts live in pages/lab/, everything else in galaxy_core.

Streamlit gives a pages/ folder beside the main script its old meaning: a session that starts on /dataset runs
pages/dataset.py alone. So pages/<name>.py only hands over to this router (pages.lab.widgets.run_router), and
the real page is pages/lab/<name>.py, registered below with the same URL.
"""

import streamlit as st

from pages.lab.widgets import sidebar_status

st.set_page_config(page_title="Galaxy CNN Lab", page_icon="assets/icon.png", layout="wide")

navigation = st.navigation(
    {
        "Lab": [
            st.Page("pages/lab/home.py", title="Home", icon=":material/home:", default=True),
            st.Page("pages/lab/dataset.py", title="Dataset", icon=":material/photo_library:"),
            st.Page("pages/lab/architecture.py", title="Architecture", icon=":material/account_tree:"),
            st.Page("pages/lab/train.py", title="Train", icon=":material/model_training:"),
            st.Page("pages/lab/evaluate.py", title="Evaluate", icon=":material/grid_on:"),
            st.Page("pages/lab/classify.py", title="Classify", icon=":material/image_search:"),
            st.Page("pages/lab/compare.py", title="Compare", icon=":material/compare:"),
        ],
    }
)
sidebar_status()
navigation.run()
