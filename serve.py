"""The lab's server: the router (app.py), with the sign-in routes a class uses (pages/ui/sign_in.py) beside it.
`galaxy-lab serve` runs it (`streamlit run serve.py`); `streamlit run app.py` serves the app without them."""

import streamlit as st

from galaxy_core.classroom.sign_in import ROUTES

app = st.App("app.py", routes=ROUTES)
