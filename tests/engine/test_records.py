"""The typed records read the JSONL files the stages have always written, and write them back byte for byte."""

from __future__ import annotations

import json

from glore_engine.records import (
    EvalCase,
    GradedSample,
    LabelledSolution,
    PrefixRollouts,
    QuestionSamples,
    samples_from_json,
    solutions_from_json,
)

# Lines as the dict-based stages wrote them (orm-data.jsonl, sorm-labels.jsonl and their shards).
ORM_LINE = (
    '{"problem_id": "syn-train-1-0", "question": "Tom has 3 bags of 4 apples. He eats 2. How many are left?", '
    '"gold": "10", "n_samples": 3, "samples": ['
    '{"text": "3*4=12\\n12-2=10\\n#### 10", "steps": ["3*4=12", "12-2=10\\n#### 10"], "answer": "10", '
    '"correct": true, "logprob": -1.5, "n_tokens": 20, "finished": true, "count": 2}, '
    '{"text": "3*4=13\\n#### 13", "steps": ["3*4=13\\n#### 13"], "answer": "13", "correct": false, '
    '"logprob": -4.25, "n_tokens": 12, "finished": false, "count": 1}]}'
)
SORM_LINE = (
    '{"problem_id": "syn-train-1-0", "question": "Q?", "gold": "10", "text": "3*4=12\\n12-2=10\\n#### 10", '
    '"steps": ["3*4=12", "12-2=10\\n#### 10"], "correct": true, "count": 2, "logprob": -1.5, '
    '"results": ["12", "10"], "rollouts": [{"k": 8, "correct": 7, "consistent_correct": 6, '
    '"pos": "12-2=10\\n#### 10", "neg": null}]}'
)


def test_orm_data_lines_round_trip_unchanged():
    (record,) = samples_from_json([json.loads(ORM_LINE)])
    assert isinstance(record, QuestionSamples) and isinstance(record.samples[0], GradedSample)
    assert record.samples[0].count == 2 and record.samples[1].finished is False and record.mixed
    assert json.dumps(record.to_json(), ensure_ascii=False) == ORM_LINE


def test_sorm_label_lines_round_trip_unchanged():
    (solution,) = solutions_from_json([json.loads(SORM_LINE)])
    assert isinstance(solution.rollouts[0], PrefixRollouts) and solution.rollouts[0].consistent_correct == 6
    assert json.dumps(solution.to_json(), ensure_ascii=False) == SORM_LINE


def test_older_records_without_count_or_logprob_still_load():
    old = {
        "problem_id": "p",
        "question": "Q",
        "gold": "1",
        "samples": [{"text": "#### 1", "steps": ["#### 1"], "correct": True}],
    }
    sample = QuestionSamples.from_json(old).samples[0]
    assert (sample.count, sample.logprob, sample.finished) == (1, None, True)
    solution = LabelledSolution.from_json(
        {"problem_id": "p", "question": "Q", "gold": "1", "steps": ["#### 1"], "correct": True, "extra": 1}
    )
    assert (solution.count, solution.logprob, solution.rollouts) == (1, None, [])


def test_applied_labels_are_written_only_once_present():
    solution = LabelledSolution(problem_id="p", question="Q", gold="1", steps=["a", "#### 1"], correct=True)
    assert "labels" not in solution.to_json()
    ruled = LabelledSolution.from_json(
        {**solution.to_json(), "labels": [1, 1], "soft_labels": [0.5, 1.0], "mask": [1.0, 0.0]}
    )
    assert ruled.to_json()["labels"] == [1, 1] and ruled.mask == [1.0, 0.0]


def test_eval_cases_keep_the_store_format():
    case = EvalCase(
        index=3, problem_id="p", question="Q", gold="2", draft="#### 1", data={"question": "Q"}, draft_correct=False
    )
    assert list(case.to_json()) == [
        "index",
        "problem_id",
        "question",
        "gold",
        "draft",
        "data",
        "tags",
        "draft_correct",
        "global_correct",
        "local_correct",
        "final_correct",
    ]
    assert EvalCase.from_json(case.to_json()) == case
