"""`glore-train ei`: a parent run with one finished child run per round, greedy and pass@K per round."""

from __future__ import annotations

ARGS = (
    "--rounds", 2, "--k", 2, "--n-questions", 4, "--shard-size", 2, "--max-steps", 2, "--batch-size", 2,
    "--warmup-steps", 1, "--eval-limit", 2, "--eval-k", 2, "--max-new-tokens", 8, "--sample-batch-size", 8,
)  # fmt: skip


def test_ei_records_a_run_per_round_and_resumes(cli, student):
    out = cli.root / "ei"
    result = cli("ei", "--student", student, *ARGS, "--init", "previous", "--out", out)
    assert "EI student saved to" in result.output and "| round | model | greedy | pass@2 |" in result.output
    run = cli.last("ei")
    assert run.status == "FINISHED" and run.config["rounds"] == 2 and run.config["init"] == "previous"
    assert run.summary["model"] == str(out / "round-2" / "model") and "EI" in run.summary["tables_md"]
    with cli.store() as store:
        children = store.children(run.id)
        assert [(c.kind, c.name, c.status) for c in children] == [
            ("ei-round", "round 1", "FINISHED"),
            ("ei-round", "round 2", "FINISHED"),
        ]
        keys = {m.key for m in store.metrics(children[0].id)}
        assert {"data/kept", "data/train_examples", "eval/greedy_accuracy", "eval/pass@2", "train/loss"} <= keys
        assert children[1].output_dir == str(out / "round-2")
        series = [m for m in store.metrics(run.id) if m.key == "eval/greedy_accuracy"]
        assert [m.step for m in series] == [0, 1, 2]  # round 0 is the SFT student
    # the same folder again needs --resume; with it, nothing is redone
    cli("ei", "--student", student, *ARGS, "--out", out, code=2)
    cli("ei", "--student", student, *ARGS, "--init", "previous", "--out", out, "--resume")
    with cli.store() as store:
        assert store.children(cli.last("ei").id) == []


def test_ei_bad_config_is_one_line(cli, student):
    result = cli("ei", "--student", student, "--init", "scratch", code=2)
    assert "init must be one of ['sft', 'previous']" in result.output
    assert "needs --out" in cli("ei", "--student", student, "--resume", code=2).output
