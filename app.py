"""Galaxy CNN Lab: the router. Each page is pages/<name>.py with a render() function; everything else is galaxy_core."""

import streamlit as st

from pages.ui.navigation import LAB_PAGES
from pages.ui.state import sidebar_status

st.set_page_config(page_title="Galaxy CNN Lab", page_icon="assets/icon.png", layout="wide")
navigation = st.navigation({"Lab": [page.streamlit_page() for page in LAB_PAGES]})
sidebar_status()
navigation.run()
