"""Galaxy CNN Lab: the router. Pages live in pages/, everything else in galaxy_core."""

import streamlit as st

from pages.widgets import sidebar_status

st.set_page_config(page_title="Galaxy CNN Lab", page_icon="assets/icon.png", layout="wide")

navigation = st.navigation(
    {
        "Lab": [
            st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
            st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
        ],
    }
)
sidebar_status()
navigation.run()
