"""Entry for /classify: a session starting on this URL runs this file alone; it hands over to the router."""

from pages.lab.widgets import run_router

run_router()
