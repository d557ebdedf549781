"""e2e: glore-train from a plain HF folder of another family (`--base FOLDER`): sft, sample, orm, sorm,
both refiners and the pipeline's tables, every run recorded as FINISHED."""

from __future__ import annotations

import json

import pytest

from glore_engine.models.checkpoint import read_card

TRAIN = ("--max-steps", 3, "--batch-size", 2, "--warmup-steps", 1, "--log-every", 1)


def add_gold(source, target, student):
    """A copy of an ORM-data folder with each question's gold solution among its samples: a student
    trained for seconds writes no correct one, and the refiners need correct targets."""
    from glore_engine.labelling.manifest import load_records, write_manifest
    from glore_engine.labelling.orm_data import OrmDataConfig
    from glore_engine.labelling.shards import write_jsonl_atomic
    from glore_engine.tasks.model_task import load_eval_problems
    from glore_engine.tasks.steps import split_steps

    records = load_records(source, "orm-data", base=student)
    gold = {p.id: p.solution for p in load_eval_problems("synthetic", "train", len(records), 1, student)}
    for r in records:
        text = gold[r["problem_id"]]
        r["samples"].append(
            {
                "text": text,
                "steps": split_steps(text),
                "answer": r["gold"],
                "correct": True,
                "count": 1,
                "logprob": -1.0,
                "n_tokens": 0,
                "finished": True,
            }
        )
    target.mkdir()
    write_jsonl_atomic(target / "orm-data.jsonl", records)
    write_manifest(target, "orm-data", student, OrmDataConfig(student=student), {"questions": len(records)})
    return target


@pytest.mark.e2e
@pytest.mark.parametrize("family", ["qwen2", "gpt2"])
def test_the_pipeline_from_a_plain_folder_of_another_family(cli, tmp_path, family):
    from glore_engine.models.architectures import make_architecture_model
    from glore_engine.tasks.synthetic import generate
    from glore_engine.training.student import tokenizer_corpus

    base = make_architecture_model(family, tmp_path / "base", tokenizer_corpus(generate("train", 200, seed=0)))
    cli("sft", "--base", base, "--n-train", 200, "--max-steps", 20, "--batch-size", 8, "--out", tmp_path / "sft")
    student = tmp_path / "sft" / "model"
    assert read_card(student).base == str(base) and cli.last("sft").status == "FINISHED"

    cli("sample", "--model", student, "--limit", 3, "--n", 2, "--max-new-tokens", 32, "--out", tmp_path / "s.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(len(r["samples"]) == 2 for r in rows)

    sampling = ("--sample-n-questions", 4, "--sample-n", 2, "--sample-max-new-tokens", 32)
    cli("orm", "--base", student, *sampling, "--no-mixed-only", *TRAIN, "--out", tmp_path / "orm")
    data = add_gold(tmp_path / "orm" / "orm-data", tmp_path / "orm-data+gold", str(student))
    labelling = ("--label-k", 2, "--label-max-new-tokens", 24)
    cli("sorm", "--base", student, "--samples", data, *labelling, *TRAIN, "--out", tmp_path / "sorm")
    cli("refine", "--kind", "global", "--base", student, "--samples", data, *TRAIN, "--out", tmp_path / "global")
    labels = tmp_path / "sorm" / "sorm-labels"
    cli("refine", "--kind", "local", "--base", student, "--labels", labels, *TRAIN, "--out", tmp_path / "local")
    for role, folder in (("orm", "orm"), ("sorm", "sorm"), ("refiner-global", "global"), ("refiner-local", "local")):
        assert read_card(tmp_path / folder / "model").role == role

    result = cli(
        "eval",
        "--student",
        student,
        "--orm",
        tmp_path / "orm" / "model",
        "--sorm",
        tmp_path / "sorm" / "model",
        "--global-refiner",
        tmp_path / "global" / "model",
        "--local-refiner",
        tmp_path / "local" / "model",
        "--limit",
        3,
        "--best-of",
        2,
    )
    assert "3 cases stored" in result.output
    for kind in ("sft", "sample", "orm", "sorm", "refine", "eval"):
        assert all(run.status == "FINISHED" for run in cli.runs(kind)), kind
