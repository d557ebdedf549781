import json
from fractions import Fraction
from pathlib import Path

import pytest

from glore_engine.errors import DataError
from glore_engine.tasks import load_problems
from glore_engine.tasks.answers import canonical, extract_answer
from glore_engine.tasks.calculator import evaluate, format_number
from glore_engine.tasks.steps import split_steps, step_result
from glore_engine.tasks.svamp import ANSWER_ERRATA, derive_steps, load_svamp, question_text, split_order

SVAMP_FILE = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "svamp" / "SVAMP.json").resolve()


@pytest.fixture
def svamp_file():
    if not SVAMP_FILE.is_file():
        pytest.skip(f"SVAMP copy not found at {SVAMP_FILE}")
    return SVAMP_FILE


def _record(i, equation, answer, body="Tom has 6 pens", question="How many pens?"):
    return {"ID": f"t-{i}", "Body": body, "Question": question, "Equation": equation, "Answer": answer, "Type": "x"}


def test_every_problem_derives_its_published_answer(svamp_file):
    raw = {r["ID"]: r for r in json.loads(svamp_file.read_text(encoding="utf-8"))}
    problems = load_svamp(svamp_file, split="all")
    assert len(problems) == len(raw) == 1000
    for problem in problems:
        record = raw[problem.id.removeprefix("svamp-")]
        published = canonical(format_number(Fraction(str(record["Answer"]))))
        assert problem.answer == ANSWER_ERRATA.get(record["ID"], published)
        assert extract_answer(problem.solution) == problem.answer
        steps = split_steps(problem.solution)
        # one step per operation; an Equation that is one number (chal-555) gives the lone "#### n" step
        assert len(steps) == problem.meta["n_steps"] == max(record["Equation"].count("("), 1)
        for step in (s for s in steps if "<<" in s):
            expr, result = step.split("<<", 1)[1].split(">>", 1)[0].split("=")
            assert format_number(evaluate(expr)) == result == step_result(step)  # the calculator agrees
        assert steps[-1].splitlines()[-1] == f"#### {problem.answer}"
    # the one erratum is still what the file says (if the file is fixed, the erratum must go)
    assert {i: raw[i]["Answer"] for i in ANSWER_ERRATA} == {"chal-680": 1.0}


def test_split_is_seeded_disjoint_and_stable(svamp_file):
    train, test = load_svamp(svamp_file, "train"), load_svamp(svamp_file, "test")
    assert (len(train), len(test)) == (700, 300)
    assert not {p.id for p in train} & {p.id for p in test}
    assert [p.id for p in load_svamp(svamp_file, "test")] == [p.id for p in test]  # same order each run
    assert [p.id for p in load_svamp(svamp_file, "test", limit=5)] == [p.id for p in test[:5]]
    # through the common loader, by name and by path
    assert [p.id for p in load_problems(str(svamp_file), "test", limit=3)] == [p.id for p in test[:3]]
    assert [p.id for p in load_problems(str(svamp_file.parent), "train", limit=3)] == [p.id for p in train[:3]]


def test_split_order_is_a_permutation_pinned_by_hash():
    ids = [f"chal-{i}" for i in range(1, 11)]
    order = split_order(ids, 0)
    assert sorted(order) == sorted(ids) and order != ids
    assert split_order(ids, 0) == order and split_order(ids, 1) != order
    assert order[:3] == split_order(list(reversed(ids)), 0)[:3]  # input order does not matter


def test_derived_steps_innermost_first_and_exact():
    steps, value = derive_steps("( ( 4.0 + 13.0 ) * 15.0 )")
    assert steps == ["4+13=<<4+13=17>>17", "17*15=<<17*15=255>>255"] and value == 255
    steps, value = derive_steps("( 60.0 - ( 89.0 - 60.0 ) )")
    assert steps == ["89-60=<<89-60=29>>29", "60-29=<<60-29=31>>31"] and value == 31
    steps, _ = derive_steps("( ( 4.0 - 8.0 ) + 5.0 )")  # a negative intermediate is written as such
    assert steps == ["4-8=<<4-8=-4>>-4", "-4+5=<<-4+5=1>>1"]
    # 55/15 has no short decimal: the product is taken first so every written number is exact
    steps, value = derive_steps("( 60.0 * ( 55.0 / 15.0 ) )")
    assert steps == ["60*55=<<60*55=3300>>3300", "3300/15=<<3300/15=220>>220"] and value == 220
    assert derive_steps("8.0") == ([], 8)  # the answer is stated in the text
    steps, _ = derive_steps("( 28.0 * ( 24.0 / 16.0 ) )")  # 1.5 is exact: the equation's order is kept
    assert steps == ["24/16=<<24/16=1.5>>1.5", "28*1.5=<<28*1.5=42>>42"]


def test_question_joins_body_and_question():
    assert question_text("Tom has 6 pens.", "How many?") == "Tom has 6 pens. How many?"
    assert question_text("If he had $ 4 at the start", "How much  did it cost?") == (
        "If he had $ 4 at the start, how much did it cost?"
    )


@pytest.mark.parametrize(
    "records, message",
    [
        ([_record(1, "( 6.0 - 2.0 )", 5.0)], "gives 4, but Answer is 5"),
        ([_record(1, "( 6.0 ^ 2.0 )", 4.0)], "unsupported term"),
        ([_record(1, "( 6.0 - ", 4.0)], "is not arithmetic"),
        ([_record(1, "( 6.0 / 0.0 )", 4.0)], "division by zero"),
        ([{"ID": "x", "Body": "b"}], "missing Question, Equation, Answer"),
        ([_record(1, "( 6.0 - 2.0 )", 4.0), _record(1, "( 6.0 - 2.0 )", 4.0)], "repeated problem IDs"),
        ([], "non-empty JSON list"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path, records, message):
    path = tmp_path / "SVAMP.json"
    path.write_text(json.dumps(records))
    with pytest.raises(DataError, match=message):
        load_svamp(path, "all")


def test_missing_or_malformed_file_and_unknown_split(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="no such file"):
        load_svamp(tmp_path / "SVAMP.json")
    (tmp_path / "SVAMP.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_svamp(tmp_path)
    with pytest.raises(DataError, match="no split 'dev'"):
        load_svamp(tmp_path, "dev")
    monkeypatch.setenv("GLORE_SVAMP", str(tmp_path / "elsewhere.json"))
    with pytest.raises(DataError, match="elsewhere.json: no such file"):
        load_problems("svamp", "test")


def test_small_file_through_env_path(tmp_path, monkeypatch):
    records = [_record(i, f"( {i}.0 + 2.0 )", i + 2.0) for i in range(1, 11)]
    (tmp_path / "SVAMP.json").write_text(json.dumps(records))
    monkeypatch.setenv("GLORE_SVAMP", str(tmp_path / "SVAMP.json"))
    problems = load_problems("svamp", "all")
    assert len(problems) == 10 and problems[0].meta["source"] == "svamp"
    assert problems[0].question == "Tom has 6 pens, how many pens?"
    assert (len(load_problems("svamp", "train")), len(load_problems("svamp", "test"))) == (7, 3)


def test_svamp_train_split_mixes_into_the_students_sft_data(tmp_path, monkeypatch):
    from glore_engine.training.student import StudentConfig, training_problems

    records = [_record(i, f"( {i}.0 + 2.0 )", i + 2.0) for i in range(1, 11)]
    (tmp_path / "SVAMP.json").write_text(json.dumps(records))
    monkeypatch.setenv("GLORE_SVAMP", str(tmp_path / "SVAMP.json"))
    problems = training_problems(StudentConfig(n_train=5, mix="svamp", mix_repeat=2))
    sources = [p.meta["source"] for p in problems]
    assert sources == ["synthetic"] * 5 + ["svamp"] * 14  # the 7 train problems, twice
    assert not {p.id for p in problems} & {p.id for p in load_problems("svamp", "test")}


def test_mixed_problems_are_spread_evenly():
    from glore_engine.tasks import mix_problems
    from glore_engine.tasks.synthetic import generate

    main, extra = generate("train", 6, seed=0), generate("test", 3, seed=0)
    mixed = mix_problems(main, extra)
    assert sorted(p.id for p in mixed) == sorted(p.id for p in main + extra)
    assert [p.id for p in mixed if p in main] == [p.id for p in main]  # each keeps its order
    assert [p.id for p in mixed][:3] == [main[0].id, extra[0].id, main[1].id]
    assert sum(p in extra for p in mixed[:6]) == 2  # a prefix holds both in proportion
    assert mix_problems(main, []) == main and mix_problems([], extra) == extra
