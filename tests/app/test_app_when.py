"""The Runs tab's "when to refine" plot: its data from hand-made points and stored cases, and in the app."""

from __future__ import annotations

import pytest

from glore_app.runs_tab import WHEN_COLUMNS, when_frame, when_plot_data
from glore_engine.evaluation.when import WhenCase, when_curve

CASES = [
    WhenCase(0.9, True, ((0.95, False), (0.2, False))),  # refined above 0.9, then broken
    WhenCase(0.3, False, ((0.8, True), (0.1, False))),  # refined above 0.3, then fixed
    WhenCase(0.6, True, ((0.4, False), (0.6, False))),  # a tie keeps the draft
    WhenCase(0.1, False, ((0.05, True), (0.0, False))),  # the ORM keeps its wrong draft
]


def values(frame, series):
    rows = frame[frame["series"] == series]
    return dict(zip(rows["threshold"], rows["percent"]))


def test_when_frame_has_five_series_in_percent():
    frame = when_frame(when_curve(CASES, [0.2, 0.5, 0.95]))
    assert list(frame.columns) == WHEN_COLUMNS
    assert values(frame, "accuracy") == {0.2: 50.0, 0.5: 75.0, 0.95: 50.0}
    assert values(frame, "drafts refined") == {0.2: 25.0, 0.5: 50.0, 0.95: 100.0}
    assert values(frame, "correct drafts broken") == {0.2: 0.0, 0.5: 0.0, 0.95: 50.0}
    assert values(frame, "wrong drafts fixed") == {0.2: 0.0, 0.5: 50.0, 0.95: 50.0}
    assert values(frame, "accuracy, always refine") == {0.2: 50.0, 0.5: 50.0, 0.95: 50.0}  # a flat line
    assert len(frame) == 15


def test_when_plot_data_of_a_stored_run_and_of_a_run_without_cases(tmp_path):
    from glore_db import Store
    from glore_engine.evaluation.when import PLOT_THRESHOLDS

    def stored(c):
        from glore_engine.pipeline import Candidate, GloreResult, to_case

        def cand(kind, score, ok):
            return Candidate(kind, "a\n#### 1", ["a", "#### 1"], "1", orm_steps=[score], correct=ok)

        (gs, gc), (ls, lc) = c.refinements
        trio = [cand("draft", c.draft_score, c.draft_correct), cand("global", gs, gc), cand("local", ls, lc)]
        choice = max(trio, key=lambda x: x.orm_score).kind
        return to_case(GloreResult("Q", "1", 0.5, trio[0], -1, -1, False, trio[1], trio[2], choice), 0).to_json()

    with Store(f"sqlite:///{tmp_path / 'g.db'}") as store:
        with store.run("eval") as run:
            store.add_cases(run.id, [{**stored(c), "index": i} for i, c in enumerate(CASES)])
        with store.run("sft") as sft:
            pass
        frame = when_plot_data(store, run.id)
        assert len(frame) == 5 * len(PLOT_THRESHOLDS)
        accuracy = values(frame, "accuracy")
        assert accuracy[0.0] == 50.0 and accuracy[0.5] == 75.0 and accuracy[1.0] == 50.0
        assert when_plot_data(store, sft.id).empty


@pytest.mark.e2e
def test_runs_tab_plots_the_when_curve_of_an_eval_run(app_server, client):
    plot, status = client.predict(app_server["run_id"], api_name="/run_when")
    assert status == ""
    rows = plot["value"]["data"] if "value" in plot else plot["data"]
    assert {row[2] for row in rows} == {
        "accuracy",
        "drafts refined",
        "correct drafts broken",
        "wrong drafts fixed",
        "accuracy, always refine",
    }
    assert all(0.0 <= row[1] <= 100.0 for row in rows)
