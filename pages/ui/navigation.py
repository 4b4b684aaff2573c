"""The lab's pages, listed once: the router (app.py) registers them and Home links to them."""

from __future__ import annotations

import importlib
import runpy
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

ROUTER = Path(__file__).resolve().parents[2] / "app.py"


@dataclass(frozen=True)
class LabPage:
    """A page: `pages/<url_path>.py`, whose `render()` draws it at /<url_path>."""

    url_path: str
    title: str
    icon: str
    purpose: str  # Home's link text

    def render(self, viewer) -> None:
        """Import the page's module when it is first shown (a first visit imports only what its page needs), and
        draw it for `viewer` (pages.ui.identity.Viewer)."""
        importlib.import_module(f"pages.{self.url_path}").render(viewer)

    def streamlit_page(self, viewer=None) -> st.Page:
        """The page for the router, drawn for `viewer` (None: a page only linked to, never drawn from here)."""
        return st.Page(
            lambda: self.render(viewer), title=self.title, icon=self.icon, url_path=self.url_path, default=self is HOME
        )


HOME = LabPage("home", "Home", ":material/home:", "What the lab is")
LAB_PAGES = (
    HOME,
    LabPage("dataset", "Dataset", ":material/photo_library:", "Browse the dataset"),
    LabPage("architecture", "Architecture", ":material/account_tree:", "Look inside a network"),
    LabPage("playground", "Convolution", ":material/grid_4x4:", "See what one convolution computes"),
    LabPage("train", "Train", ":material/model_training:", "Train a network and watch it learn"),
    LabPage("evaluate", "Evaluate", ":material/grid_on:", "See what it got wrong and where it looked"),
    LabPage("review", "Label review", ":material/fact_check:", "Find the labels the data itself doubts"),
    LabPage("classify", "Classify", ":material/image_search:", "Classify your own galaxy pictures"),
    LabPage("compare", "Compare", ":material/compare:", "Compare models side by side"),
    LabPage("board", "Class board", ":material/leaderboard:", "See each classmate's best run"),
    LabPage("challenge", "Challenge", ":material/emoji_events:", "Submit a run to be scored on a private test set"),
)


def run_router() -> None:
    """Run app.py. After a server start, Streamlit runs a script found directly in pages/ by itself for a session
    that starts on its URL (/dataset, say); each page file calls this then, so every URL goes through the router."""
    runpy.run_path(str(ROUTER))
