"""Two processes (`torchrun --nproc_per_node 2`, gloo on CPU), one result: one run recorded, one
checkpoint, the weights of one process at the same global batch, resume after a kill, and data
stages whose merged records equal one process's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
SFT = ("sft", "--base", "tiny", "--n-train", 64, "--batch-size", 8, "--max-steps", 40, "--save-every", 5,
       "--warmup-steps", 2, "--log-every", 5)  # fmt: skip
SAMPLE = ("--sample-n-questions", 4, "--sample-n", 2, "--sample-max-new-tokens", 8, "--sample-shard-size", 1)
LABEL = ("--label-k", 2, "--label-max-new-tokens", 4, "--label-shard-size", 1)
TRAIN = ("--max-steps", 3, "--batch-size", 4, "--warmup-steps", 1, "--no-mixed-only")


class Launch:
    """glore-train under one process or `torchrun --standalone --nproc_per_node 2 -- glore-train`."""

    def __init__(self, root: Path):
        self.root = root
        self.url = f"sqlite:///{root / 'glore.db'}"
        self.env = {**os.environ, "GLORE_HOME": str(root / "home"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def command(self, args, procs: int) -> list[str]:
        cli = [str(BIN / "glore-train"), "--db", self.url, *map(str, args)]
        if procs == 1:
            return cli
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "--", *cli]

    def __call__(self, *args, procs: int = 2) -> str:
        done = subprocess.run(
            self.command(args, procs), env=self.env, capture_output=True, text=True, timeout=900, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self, *args, procs: int = 2) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(args, procs), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def runs(self, kind: str):
        from glore_db import Store

        with Store(self.url) as store:
            return store.list_runs(kind=kind)


def max_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    x, y = load_file(str(a)), load_file(str(b))
    assert x.keys() == y.keys()
    return max(float((x[k].float() - y[k].float()).abs().max()) for k in x)


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    return Launch(tmp_path_factory.mktemp("multi"))


@pytest.fixture(scope="module")
def one_process(launch):
    launch(*SFT, "--out", launch.root / "one", procs=1)
    return launch.root / "one" / "model" / "model.safetensors"


def test_sft_two_processes_one_run_one_checkpoint_one_process_weights(launch, one_process):
    before = len(launch.runs("sft"))
    out = launch(*SFT, "--out", launch.root / "two")
    assert out.count("student saved to") == 1  # one line per job, not per rank
    runs = launch.runs("sft")
    assert len(runs) == before + 1 and runs[0].status == "FINISHED"
    folder = launch.root / "two"
    assert sorted(p.name for p in folder.iterdir()) == ["model", "tokenizer"]  # the training state is cleared
    assert max_diff(folder / "model" / "model.safetensors", one_process) < 1e-5
    from glore_db import Store

    with Store(launch.url) as store:
        one, two = (store.metric_series(r.id)["train/loss"] for r in runs[:2][::-1])
    assert [s for s, _ in one] == [s for s, _ in two] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert max(abs(a - b) for (_, a), (_, b) in zip(one, two)) < 1e-4, (one, two)


def test_sft_two_processes_resume_after_a_kill(launch, one_process):
    folder = launch.root / "killed"
    job = launch.start(*SFT, "--out", folder)
    state = folder / "train_state" / "step.json"
    deadline = time.time() + 600
    while not state.is_file() and job.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert state.is_file() and not (folder / "model").exists(), "the run ended before its first checkpoint"
    launch(*SFT, "--out", folder, "--resume")
    assert max_diff(folder / "model" / "model.safetensors", one_process) < 1e-5


@pytest.fixture(scope="module")
def data_one(launch, student):
    out = launch.root / "orm-one"
    launch("orm", "--base", student, *SAMPLE, *TRAIN, "--out", out, procs=1)
    return out


def test_orm_two_processes_sample_the_same_data_and_train_the_same_model(launch, student, data_one):
    out = launch.root / "orm-two"
    launch("orm", "--base", student, *SAMPLE, *TRAIN, "--out", out)
    assert launch.runs("orm")[0].status == "FINISHED" and len(launch.runs("orm")) == 2
    assert (out / "orm-data" / "orm-data.jsonl").read_text() == (data_one / "orm-data" / "orm-data.jsonl").read_text()
    heads = "model/value_head.safetensors"
    assert max_diff(out / heads, data_one / heads) < 1e-5


def test_sorm_and_refine_two_processes(launch, student, crafted):
    samples = crafted / "orm-data"  # samples with steps and both outcomes (the random student's have few)
    one, two = launch.root / "sorm-one", launch.root / "sorm-two"
    launch("sorm", "--base", student, *LABEL, *TRAIN, "--log-every", 1, "--samples", samples, "--out", one, procs=1)
    launch("sorm", "--base", student, *LABEL, *TRAIN, "--log-every", 1, "--samples", samples, "--out", two)
    labels = "sorm-labels/sorm-labels.jsonl"
    assert (two / labels).read_text() == (one / labels).read_text()
    # the loss, not the weights: SORM heads start at zero and balanced labels make some gradients
    # cancel to rounding noise, which Adam's first steps turn into lr-sized moves of either sign
    from glore_db import Store

    with Store(launch.url) as store:
        first, second = (store.metric_series(r.id)["train/loss"] for r in launch.runs("sorm")[:2][::-1])
    assert [s for s, _ in first] == [s for s, _ in second] == [1, 2, 3]
    assert max(abs(a - b) for (_, a), (_, b) in zip(first, second)) < 1e-4, (first, second)
    refined = launch.root / "refine"
    launch("refine", "--kind", "global", "--base", student, *TRAIN[:6], "--samples", samples, "--out", refined)
    runs = launch.runs("refine")
    assert len(runs) == 1 and runs[0].status == "FINISHED" and (refined / "model" / "model.safetensors").is_file()


def test_eval_two_processes_share_the_batches_and_equal_one_process(launch, tiny_family):
    """T2/T3 under torchrun: rank r runs batches r, r + 2, ...; one run, the same cases as one process."""
    args = ("eval", "--family", tiny_family, "--limit", 7, "--batch-size", 2, "--best-of", 2)
    one = launch(*args, procs=1)
    two = launch(*args, procs=2)
    runs = launch.runs("eval")
    assert len(runs) == 2 and all(r.status == "FINISHED" for r in runs)
    tables = [out.split("cases stored")[0] for out in (one, two)]
    assert tables[0] == tables[1]
    from glore_db import Store

    with Store(launch.url) as store:
        cases = [
            [
                (c.index, c.question, c.draft, {k: v for k, v in c.data.items() if k != "timings"})
                for c in store.cases(r.id)
            ]
            for r in runs
        ]
    assert len(cases[0]) == 7 and cases[0] == cases[1]


def test_eval_student_and_sample_two_processes_share_the_shards_and_equal_one_process(launch, student):
    """5 problems in shards of 2: rank 0 runs shards 0 and 2, rank 1 shard 1; one run per launch, and
    the metrics and the samples file of one process (the random student's samples, logprobs included,
    show that every shard was drawn exactly as in one process; its accuracies are 0 either way)."""
    common = ("--model", student, "--limit", 5, "--shard-size", 2, "--max-new-tokens", 8, "--batch-size", 4)
    files = {procs: launch.root / f"samples-{procs}.jsonl" for procs in (1, 2)}
    for procs in (1, 2):
        launch("eval-student", *common, "--k", 2, procs=procs)
        launch("sample", *common, "--n", 2, "--out", files[procs], procs=procs)
    from glore_db import Store

    for kind in ("eval-student", "sample"):
        runs = launch.runs(kind)
        assert len(runs) == 2 and all(r.status == "FINISHED" for r in runs)
        with Store(launch.url) as store:
            two, one = ({k: v for k, v in store.metric_series(r.id).items() if not k.endswith("_per_s")} for r in runs)
        assert one == two and one, kind
        if kind == "eval-student":
            assert {"greedy_accuracy", "pass@2", "n_problems"} <= one.keys()
    lines = files[1].read_text().splitlines()
    assert len(lines) == 5 and files[2].read_text() == files[1].read_text()
