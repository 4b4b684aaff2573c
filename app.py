"""Galaxy CNN Lab: the router. Each page is pages/<name>.py with a render() function; everything else is galaxy_core."""

from pathlib import Path

import streamlit as st

from pages.ui.identity import signed_in_user, user_sidebar, viewer_of
from pages.ui.navigation import LAB_PAGES
from pages.ui.state import sidebar_status, spare_reruns_keras_garbage_collection, warm_up_in_background

ICON = Path(__file__).resolve().parent / "assets" / "icon.png"  # not installed with a wheel: an emoji then

st.set_page_config(page_title="Galaxy CNN Lab", page_icon=str(ICON) if ICON.is_file() else "🌌", layout="wide")
user = signed_in_user(stop=False)
if user is None:  # on a lab with sign-in, nobody signed in sees the sign-in and nothing else
    st.navigation({"Lab": [page.streamlit_page() for page in LAB_PAGES]}, position="hidden")
    st.stop()
user_sidebar(user)
viewer = viewer_of(user)  # resolved once: the page is handed who looks and what they chose to see
navigation = st.navigation({"Lab": [page.streamlit_page(viewer) for page in LAB_PAGES]})
spare_reruns_keras_garbage_collection()
sidebar_status()
try:
    navigation.run()
finally:
    warm_up_in_background()  # once per server, after its first page is drawn
