"""Evaluation metrics: AUCs, best-of-N, ProcessBench F1, T1 rows, T2/T3 rows, student pass@k."""

from __future__ import annotations

import itertools

import pytest

from glore_engine.evaluation.metrics import (
    auc,
    best_of_n,
    fmt,
    markdown_table,
    predicted_first_error,
    processbench,
    random_pick,
    within_question_auc,
)
from glore_engine.evaluation.pipeline_eval import refinement_tables, t2_rows, t3_rows
from glore_engine.evaluation.reward import evaluate_reward_models, evaluate_scores, logprob_baseline, random_baseline
from glore_engine.evaluation.student import evaluate_student, pass_at_k
from glore_engine.generation.base import Sample
from glore_engine.labelling.postprocess import LabelRules, apply_rules
from glore_engine.pipeline import Candidate, GloreResult
from glore_engine.records import LabelledSolution, PrefixRollouts


def brute_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)) / (len(pos) * len(neg))


# ---- AUC and ranking -----------------------------------------------------------------------------
def test_auc_perfect_inverse_and_all_ties():
    assert auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auc([0.5] * 4, [True, False, True, False]) == 0.5


def test_auc_counts_ties_half():
    # one positive tied with one negative at 0.5, beating the other: (1 + 0.5) / 2
    assert auc([0.5, 0.5, 0.1], [True, False, False]) == 0.75
    scores = [0.3, 0.3, 0.7, 0.1, 0.7, 0.7, 0.2, 0.3]
    labels = [True, False, True, False, False, True, True, False]
    assert auc(scores, labels) == pytest.approx(brute_auc(scores, labels))


def test_auc_needs_both_classes():
    assert auc([0.1, 0.2], [True, True]) is None
    assert auc([], []) is None


def test_within_question_auc_only_compares_samples_of_one_question():
    groups = [
        [(0.9, True), (0.1, False)],  # right
        [(0.2, True), (0.8, False), (0.2, False)],  # wrong, tie
        [(0.99, True)],
    ]  # no pair
    # pairs: 1 + (0 + 0.5) = 1.5 of 3
    assert within_question_auc(groups) == pytest.approx(0.5)
    # pooled AUC of the same scores would differ: question difficulty is not within-question skill
    assert within_question_auc([[(0.5, True)], [(0.1, False)]]) is None


def test_best_of_n_picks_the_top_score_and_breaks_ties_by_duplicates():
    groups = [
        [(0.9, True, 1), (0.5, False, 3)],
        [(0.7, False, 1), (0.7, True, 2)],  # tie on score: the more frequent sample wins
        [(0.2, False, 5), (0.1, True, 1)],
    ]
    assert best_of_n(groups) == pytest.approx(2 / 3)
    assert best_of_n([[(0.7, True, 1), (0.7, False, 2)]]) == 0.0
    assert best_of_n([]) == 0.0


def test_random_pick_is_the_duplicate_weighted_sample_accuracy():
    assert random_pick([[(0, True, 3), (0, False, 1)], [(0, False, 2)]]) == pytest.approx((0.75 + 0.0) / 2)


def test_predicted_first_error():
    assert predicted_first_error([0.9, 0.6, 0.4, 0.2]) == 2
    assert predicted_first_error([0.9, 0.6], threshold=0.7) == 1
    assert predicted_first_error([0.5, 0.9]) == -1  # at the threshold is not below it
    assert predicted_first_error([]) == -1


def test_processbench_definition():
    # gold: two wrong solutions (first errors 1 and 3), three right ones (-1)
    gold = [1, 3, -1, -1, -1]
    predicted = [1, 2, -1, 0, -1]
    out = processbench(predicted, gold)
    assert out["error_acc"] == 0.5  # exact index on wrong solutions
    assert out["correct_acc"] == pytest.approx(2 / 3)  # -1 on right solutions
    assert out["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert (out["n_wrong"], out["n_right"]) == (2, 3)


def test_processbench_edge_cases():
    assert processbench([-1, -1], [-1, -1]) == {
        "error_acc": None,  # no wrong solutions: undefined, not 0
        "correct_acc": 1.0,
        "f1": None,
        "n_wrong": 0,
        "n_right": 2,
    }
    assert processbench([0, 0], [0, -1])["f1"] == 0.0
    assert processbench([2, -1], [2, -1])["f1"] == 1.0


def test_fmt_and_markdown_table():
    assert fmt(None) == "-" and fmt(3) == "3" and fmt(0.12345) == "0.123" and fmt(0.5, pct=True) == "50.0"
    assert markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"


# ---- T1 ---------------------------------------------------------------------------------------------
def labelled_record(pid, correct, labels_from_rollouts, steps=None, logprob=None, count=1):
    """A rollout-labelled solution whose V* labels (propagation off) are labels_from_rollouts + [correct]."""
    steps = steps or [f"s{i}" for i in range(len(labels_from_rollouts) + 1)]
    rollouts = [PrefixRollouts(k=2, correct=y, consistent_correct=y) for y in labels_from_rollouts]
    return LabelledSolution(
        problem_id=pid,
        question=f"Q{pid}",
        gold="",
        steps=steps,
        correct=correct,
        rollouts=rollouts,
        logprob=logprob,
        count=count,
    )


def test_evaluate_scores_on_hand_made_labels():
    records = apply_rules(
        [labelled_record("a", True, [1]), labelled_record("a", False, [1, 0]), labelled_record("b", False, [0])],
        LabelRules(propagate=False, balance=False),
    )
    assert [r.labels for r in records] == [[1, 1], [1, 0, 0], [0, 0]]
    scores = [[0.9, 0.8], [0.7, 0.3, 0.6], [0.6, 0.2]]
    row = evaluate_scores("RM", records, scores)
    # step hits: (1,1) (1,0,0:0.6 wrong) (0:0.6 wrong, 0) -> 5 of 7
    assert row.step_accuracy == pytest.approx(5 / 7)
    assert row.final_accuracy == pytest.approx(2 / 3)  # finals 0.8 (right), 0.6 (wrong but >= 0.5), 0.2 (wrong)
    assert row.auc == 1.0  # finals: correct 0.8 above both incorrect (0.6, 0.2)
    assert row.within_auc == 1.0 and row.best_of_n == pytest.approx(0.5)
    # first errors: gold [-1, 1, 0]; predicted [-1, 1, 1]
    assert row.first_error["error_acc"] == 0.5 and row.first_error["correct_acc"] == 1.0
    assert set(row.metrics()) >= {"step_accuracy", "final_accuracy", "auc", "first_error/f1"}
    assert len(row.row()) == 9


def test_evaluate_scores_respects_the_balancing_mask():
    records = apply_rules([labelled_record("a", True, [1])], LabelRules(balance=False))
    records[0].mask = [0.0, 1.0]
    assert evaluate_scores("RM", records, [[0.1, 0.9]]).step_accuracy == 1.0  # the masked wrong step does not count


def test_reference_rows():
    records = apply_rules(
        [
            labelled_record("a", True, [1], logprob=-1.0, count=3),
            labelled_record("a", False, [0], logprob=-5.0, count=1),
        ],
        LabelRules(balance=False),
    )
    lp = logprob_baseline(records)
    assert lp.auc == 1.0 and lp.best_of_n == 1.0 and lp.step_accuracy is None
    rnd = random_baseline(records)
    assert rnd.best_of_n == pytest.approx(0.75) and rnd.within_auc == 0.5


class ConstantScorer:
    def __init__(self, value):
        self.value = value
        self.items = None

    def score(self, items):
        self.items = items
        return [[self.value] * len(steps) for _, steps in items]


def test_evaluate_reward_models_table_has_a_row_per_scorer():
    labelled = [labelled_record("a", True, [1]), labelled_record("a", False, [0]), labelled_record("b", False, [1, 0])]
    high = ConstantScorer(0.9)
    rows, table = evaluate_reward_models(
        {"ORM": high, "SORM": ConstantScorer(0.1)}, labelled, LabelRules(balance=False)
    )
    assert [r.name for r in rows] == ["random sample", "student log-prob (no training)", "ORM", "SORM"]
    assert high.items == [("Qa", ["s0", "s1"]), ("Qa", ["s0", "s1"]), ("Qb", ["s0", "s1", "s2"])]
    assert rows[2].final_accuracy == pytest.approx(1 / 3) and rows[3].final_accuracy == pytest.approx(2 / 3)
    assert "T1 on 3 distinct held-out samples of 2 questions" in table
    assert table.count("\n| ") == 5  # header + 4 rows


# ---- T2 / T3 ------------------------------------------------------------------------------------------
def cand(kind, correct, score, steps=("a", "#### 1")):
    n = len(steps)
    return Candidate(
        kind,
        "\n".join(steps),
        list(steps),
        "1",
        orm_steps=[0.5] * (n - 1) + [score],
        sorm_steps=[0.5] * n,
        correct=correct,
    )


def result(draft, glob, loc, samples=(), local_orm=None):
    trio = [draft, glob, loc]
    choice = max(trio, key=lambda c: c.orm_score).kind
    return GloreResult(
        "Q",
        "1",
        0.5,
        draft,
        -1,
        -1,
        draft.orm_score < 0.5,
        glob,
        loc,
        choice,
        local_orm_critique=local_orm,
        samples=list(samples),
    )


@pytest.fixture
def results():
    return [
        # draft right, kept: ORM prefers the draft
        result(
            cand("draft", True, 0.9),
            cand("global", False, 0.2),
            cand("local", True, 0.3),
            samples=[cand("sample", True, 0.6), cand("sample", False, 0.4)],
        ),
        # draft wrong, global fixes it and the ORM picks it
        result(
            cand("draft", False, 0.1),
            cand("global", True, 0.8),
            cand("local", False, 0.3),
            samples=[cand("sample", False, 0.9), cand("sample", True, 0.2)],
            local_orm=cand("local", True, 0.5),
        ),
        # draft wrong, local fixes it but the ORM picks the (wrong) global
        result(
            cand("draft", False, 0.2),
            cand("global", False, 0.7),
            cand("local", True, 0.6),
            samples=[cand("sample", True, 0.7)],
            local_orm=cand("local", False, 0.1),
        ),
        # draft right, the ORM picks a wrong refinement (broken)
        result(cand("draft", True, 0.3), cand("global", False, 0.4), cand("local", False, 0.35)),
    ]


def test_rerank_picks_the_max_orm_score(results):
    assert [r.choice for r in results] == ["draft", "global", "global", "global"]
    assert [r.chosen.correct for r in results] == [True, True, False, False]


def test_t2_rows(results):
    rows, n_wrong = t2_rows(results)
    assert n_wrong == 2
    assert dict(rows) == {
        "global": 0.5,
        "local (ORM critique)": 0.5,
        "local (SORM critique)": 0.5,
        "global + local": 1.0,
    }


def test_t2_without_wrong_drafts_has_no_rates(results):
    rows, n_wrong = t2_rows([results[0]])
    assert n_wrong == 0 and all(v is None for _, v in rows)


def test_t3_rows(results):
    rows = dict(t3_rows(results))
    assert rows["greedy draft"] == 0.5
    assert rows["best-of-3 (ORM)"] == 0.5  # picks the 0.6 (right), 0.9 (wrong), 0.7 (right); none for the last
    assert rows["draft + global (ORM)"] == 0.5  # draft, global (right), global (wrong), global (wrong)
    assert rows["draft + local (ORM)"] == 0.5  # draft, local 0.3 > 0.1 (wrong), local 0.6 (right), local 0.35 (wrong)
    assert rows["draft + global + local (ORM) = GLoRe"] == 0.5
    assert rows["oracle (any of the three)"] == 1.0


def test_refinement_tables_markdown_and_metrics(results):
    tables = refinement_tables(results)
    m = tables["metrics"]
    assert m["T2/n_wrong_drafts"] == 2 and m["T3/n_problems"] == 4
    assert m["T3/oracle (any of the three)"] == 1.0 and m["T2/global + local"] == 1.0
    assert m["rerank/broken_correct_drafts"] == 1
    assert m["rerank/when_precision"] == pytest.approx(2 / 3)  # flagged: drafts 2, 3 (wrong) and 4 (right)
    assert "2 of 4 drafts were wrong" in tables["T2"] and "| global + local | 100.0 | ~41 |" in tables["T2"]
    assert "| draft + global + local (ORM) = GLoRe | 50.0 | 65 |" in tables["T3"]


# ---- student ------------------------------------------------------------------------------------------
def test_pass_at_k():
    assert pass_at_k(4, 0, 2) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)
    assert pass_at_k(5, 4, 2) == 1.0


def test_evaluate_student_with_a_fake_backend():
    from engine_helpers import problems

    probs = problems(3)

    class Backend:
        def generate(self, prompts, n=1, temperature=0.0, seed=None, **kw):
            out = []
            for i, _ in enumerate(prompts):
                p = probs[i]
                right = Sample(p.solution, 9, -1.0, True)
                wrong = Sample("x\n#### -1", 3, -5.0, True)
                if temperature == 0:
                    out.append([right if i != 1 else wrong])
                else:
                    out.append([right] * i + [wrong] * (n - i))
            return out

    res = evaluate_student(Backend(), probs, k=2)
    assert res.n_problems == 3 and res.greedy_accuracy == pytest.approx(2 / 3)
    assert res.pass_at_k == pytest.approx((0 + 1 + 1) / 3)
    assert res.sample_accuracy == pytest.approx((0 + 1 + 2) / 6)
    metrics = res.metrics()
    assert metrics["pass@2"] == res.pass_at_k and any(k.startswith("greedy_accuracy/steps=") for k in metrics)
    assert sum(row["n"] for row in res.by_steps.values()) == 3


def test_evaluate_student_generates_shard_by_shard_each_seeded_by_its_start():
    """Why a torchrun launch equals one process: a shard's calls depend on its problems and start only."""
    from engine_helpers import problems

    probs = problems(5)
    calls = []

    class Backend:
        def generate(self, prompts, n=1, temperature=0.0, seed=None, **kw):
            calls.append((len(prompts), n, seed if temperature else None))
            return [[Sample("x\n#### -1", 3, -5.0, True)] * n for _ in prompts]

    res = evaluate_student(Backend(), probs, k=2, seed=10, shard_size=2)
    assert res.n_problems == 5 and [r.problem_id for r in res.records] == [p.id for p in probs]
    assert calls == [(2, 1, None), (2, 2, 10), (2, 1, None), (2, 2, 12), (1, 1, None), (1, 2, 14)]
    calls.clear()
    evaluate_student(Backend(), probs, k=2, seed=10)  # no shard size: one shard, the seed as given
    assert calls == [(5, 1, None), (5, 2, 10)]
