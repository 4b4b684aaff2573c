"""Class board: each person's best run side by side, and the class's best; classmates anonymised unless the
teacher shows names."""

import pandas as pd
import streamlit as st

from galaxy_core.answers.members import members_view
from galaxy_core.classroom.access import Action, may
from galaxy_core.classroom.board import class_board, class_ensemble_members, class_ensembles, started_from
from galaxy_core.classroom.lesson import lesson_base
from galaxy_core.classroom.names import show_names_on_board
from galaxy_core.training import RunStore
from pages.ui.display import label_noise_note, plain
from pages.ui.identity import Viewer
from pages.ui.kinds.ensemble import make_ensemble_ui
from pages.ui.navigation import run_router
from pages.ui.state import get_settings


def board_table(rows) -> pd.DataFrame:
    """The board as a table of text and figures (what someone typed is shown as text)."""
    return pd.DataFrame(
        [
            {
                "rank": rank,
                "who": row.name,
                "best test balanced accuracy": row.best.test_balanced_accuracy if row.best else None,
                "95% interval": f"{row.interval[0]:.3f} to {row.interval[1]:.3f}" if row.interval else "",
                "model": row.best.model if row.best else "no run with test results yet",
                "parameters": row.best.parameters if row.best else None,
                "minutes": row.minutes,
                "runs trained": row.runs,
            }
            for rank, row in enumerate(rows, start=1)
        ]
    )


def render(viewer: Viewer) -> None:
    """Draw the Class board page."""
    settings, user = get_settings(), viewer.user
    st.title("Class board")
    shown = viewer.names_shown
    if may(user, Action.SHOW_NAMES):
        names = st.toggle("Show every name to the class", shown, key="board_show_names")
        if names != shown:
            show_names_on_board(settings.runs_dir, names, user)
            shown = names
    summaries = RunStore(settings.runs_dir).runs()
    rows = class_board(summaries, user, shown)
    tested = [row for row in rows if row.best]
    if not tested:
        st.info("No run with test results yet: the board fills in as the class's runs finish.")
        st.stop()
    best, columns = tested[0], st.columns(2)
    columns[0].metric(
        f"The class's best: {plain(best.name)}, {best.best.model}",
        f"{best.best.test_balanced_accuracy:.1%}",
        help="Test balanced accuracy of the best run of the class so far.",
    )
    lesson_ui(columns[1], summaries, viewer)
    st.dataframe(
        board_table(rows),
        hide_index=True,
        column_config={
            "best test balanced accuracy": st.column_config.NumberColumn(format="%.3f"),
            "parameters": st.column_config.NumberColumn(format="localized"),
            "minutes": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    if not shown and not may(user, Action.SEE_NAME):
        st.caption("Your classmates are shown by their place on the board; the teacher may show their names.")
    st.caption(
        "Two runs whose 95% intervals overlap may not really differ on this test split: Compare's paired test tells."
    )
    label_noise_note()
    together_ui(rows, summaries, user)


def lesson_ui(place, summaries, viewer: Viewer) -> None:
    """The run the class started from, beside the class's results: its figure, and how many runs started from it
    beat it."""
    base = lesson_base(RunStore(get_settings().runs_dir))
    if base is None or not base.has_test_results:
        return
    runs, above = started_from(summaries, base)
    place.metric(
        f"The class started from {plain(viewer.owner_label(base))}'s run {plain(base.name)}",
        f"{base.test_balanced_accuracy:.1%}",
        help="Test balanced accuracy of the run the teacher chose as the lesson's starting point.",
    )
    place.caption(f"{above} of the {runs} tested run(s) started from it score above it.")


def together_ui(rows, summaries, user) -> None:
    """The class together: one button makes the ensemble of each person's best run; the ensembles made so far beside
    their members' figures."""
    st.subheader("The class together")
    members = class_ensemble_members(rows)
    if len(members) >= 2:
        st.markdown(
            f"Each person's best run ({len(members)} of them, on the classes of the class's best) can answer as one "
            "model: its answer the mean of theirs."
        )
        make_ensemble_ui(members, user, key="board_make_ensemble", label="Make the class ensemble")
    else:
        st.caption("An ensemble needs the best runs of at least two people, on the same classes and images.")
    made = class_ensembles(summaries)
    if made:
        st.dataframe(together_table(made), hide_index=True, column_config=FIGURE_COLUMNS)
        st.caption(
            "Each ensemble's test balanced accuracy beside its members' (on the same test images). Evaluate's Members "
            "tab shows where they split and what each adds."
        )


FIGURE_COLUMNS = {
    name: st.column_config.NumberColumn(format="%.3f") for name in ("ensemble", "its best member", "members' mean")
}


def together_table(ensembles) -> pd.DataFrame:
    rows = []
    for summary in ensembles:
        view = members_view(summary)
        scores = view.member_scores() if view else []
        rows.append(
            {
                "ensemble": summary.test_balanced_accuracy,
                "its best member": max(scores, default=None),
                "members' mean": sum(scores) / len(scores) if scores else None,
                "members": len(summary.options.get("members") or ()),
                "run": summary.name,
            }
        )
    return pd.DataFrame(rows)


if __name__ == "__main__":  # a session that starts on this page's URL right after a server start
    run_router()
