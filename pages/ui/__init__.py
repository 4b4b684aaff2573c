"""Streamlit pieces shared by the pages (a subpackage, so that Streamlit never lists it as a page)."""
