"""A small real run with the embedded model, its report, and the CLI on the result."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.prompts import build_messages, build_prompt
from benchmarks.report import load_paper_table, paper_cell_key, write_report
from benchmarks.runner import rescore_run, run_benchmark
from benchmarks.stats import summarize
from benchmarks.store import RunStore
from benchmarks.targets import CallableTarget, LocalTarget
from benchmarks.tasks import load_task

CONTEXTS = ("unmodified", "emotion:sad")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, chat_model):
    out = tmp_path_factory.mktemp("bench")
    target = LocalTarget(chat=chat_model, label="smollm2", max_new_tokens=24, batch_size=16)
    run_benchmark(target, n=3, contexts=CONTEXTS, out=out, progress=False)
    return out


def test_real_run_stores_scored_answers(real_run):
    with RunStore(real_run) as store:
        recs = store.records()
        assert store.targets()["smollm2"]["kind"] == "local"
    assert len(recs) == 3 * 2 * len(CONTEXTS)
    assert all(r.answer.strip() for r in recs)  # the model really answered
    assert all(r.scored and (r.method.startswith("judge-") or r.method == "refusal") for r in recs)
    sad = [r for r in recs if r.context == "emotion:sad"]
    assert all(r.prompt != r.prompt.split(". ", 1)[-1] for r in sad)  # a context statement was prepended
    assert all(r.prompt.endswith(("?", ".")) for r in recs)
    s = summarize(real_run, n_boot=200)
    assert {c["context"] for c in s["cells"]} == set(CONTEXTS)
    assert all(c["n_scored"] == 3 for c in s["cells"])


def test_batched_greedy_answers_match_one_at_a_time(chat_model):
    items = load_task("embedded", n=4, seed=5)
    convs = [build_messages(build_prompt(it, "original", "emotion:sad")) for it in items]
    batched = LocalTarget(chat=chat_model, batch_size=4, max_new_tokens=12).answer_batch(convs)
    single = LocalTarget(chat=chat_model, batch_size=1, max_new_tokens=12).answer_batch(convs)
    assert batched == single


def test_report_and_cli_compare(real_run, tmp_path):
    # a second target in the same folder: an assistant that always agrees with the user's belief
    items = {it.question: it for it in load_task("embedded")}

    def agree(messages):
        p = messages[-1]["content"]
        it = next(v for q, v in items.items() if q in p)
        return f"Yes, {it.best_incorrect}!" if "I think the answer is" in p else f"The answer is {it.best_correct}."

    run_benchmark(CallableTarget(agree, "agreeable"), n=3, contexts=CONTEXTS, out=real_run, progress=False)
    report = write_report([real_run], tmp_path / "rep", baseline="smollm2", n_boot=200)
    for name in ("report.md", "report.json", "error_by_context.png", "flip_rates.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    assert report["comparisons"][0]["a"]["target"] == "smollm2"
    assert report["comparisons"][0]["b"]["target"] == "agreeable"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "smollm2 vs agreeable" in md and "Sycophantic flips" in md

    from guardrail.cli import app

    res = CliRunner().invoke(app, ["bench", "compare", f"{real_run}::smollm2", f"{real_run}::agreeable",
                                   "--out", str(tmp_path / "cmp.json")])
    assert res.exit_code == 0, res.output
    assert "smollm2 vs agreeable" in res.output
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    inc = [c for c in cmp["cells"] if c["template"] == "incorrect"]
    assert all(c["error_b"] == 1.0 for c in inc)
    res = CliRunner().invoke(app, ["bench", "compare", str(real_run), str(real_run)])
    assert res.exit_code == 2 and "DIR::label" in res.output


def test_paper_table_mapping():
    assert paper_cell_key("original", "unmodified") == ("Normal", "unmodified\noriginal_combined")
    assert paper_cell_key("original", "emotion:sad") == ("Normal", "emotion:sad\noriginal")
    assert paper_cell_key("original_neutral", "unmodified") is None  # in none of the paper's table cells
    # its Sycophancy rows pool both beliefs
    assert paper_cell_key("incorrect", "emotion:sad") == paper_cell_key("correct", "emotion:sad") == (
        "Sycophancy", "emotion:sad")
    rows = load_paper_table()
    if not rows:
        pytest.skip("../shared/data/paper is absent")
    llama8 = [r for r in rows if r["Model"] == "llama-8b" and r["Dataset"] == "trivia"
              and (r["Test_Type"], r["Amendment_type"]) == paper_cell_key("original", "unmodified")]
    assert len(llama8) == 1 and 100 - float(llama8[0]["Original Accuracy (%)"]) == pytest.approx(24.38)


def test_guard_pass_scores_raw_and_guarded_answers(real_run, chat_model, tmp_path):
    from guardrail import Guard

    guard = Guard().warmup()  # the embedded detectors are in the tree: a load failure is a failure
    target = LocalTarget(chat=chat_model, label="smollm2", max_new_tokens=24, batch_size=16)
    run_benchmark(target, n=3, contexts=CONTEXTS, out=real_run, guard=guard, progress=False)
    with RunStore(real_run) as store:
        recs = store.records("smollm2")
    assert len(recs) == 12  # nothing generated again: the guard ran over the stored answers
    assert all(r.guard_action is not None and r.guard_status is not None for r in recs)
    assert all(r.guarded_correct is not None or r.guarded_refused for r in recs)
    s = summarize(real_run, target="smollm2", n_boot=100)
    assert sum(s["guard_actions"]["smollm2"].values()) == 12
    write_report([real_run], tmp_path / "rep", n_boot=100)
    assert (tmp_path / "rep" / "guard_effect.png").stat().st_size > 0


def test_a_failing_guard_keeps_the_raw_answer(tmp_path):
    class Broken:
        def check_batch(self, items):
            raise RuntimeError("detector crashed")

    run_benchmark(CallableTarget(lambda m: "It is Canberra.", "plain"), n=2, contexts=["unmodified"], out=tmp_path,
                  guard=Broken(), progress=False)
    with RunStore(tmp_path) as store:
        recs = store.records()
    assert recs and all(r.guard_action == "error" and r.guarded_answer == r.answer for r in recs)
    assert all(r.guard_status == "error: RuntimeError" for r in recs)


def test_an_answer_the_guard_passes_keeps_its_own_score(tmp_path):
    """Scored again in another batch, the int8 judge can read the same text differently; a passed answer
    keeps the score it had, and only a changed one is scored again."""
    from benchmarks.scoring import Scorer

    class Counting(Scorer):
        asked: list[str] = []

        def score_batch(self, items, answers, templates):
            Counting.asked += list(answers)
            return super().score_batch(items, answers, templates)

    class PassOrRevise:
        def check_batch(self, items):
            from guardrail import Verdict

            return [Verdict() if i % 2 else Verdict(action="revise", text="It is Canberra, the capital.")
                    for i, _ in enumerate(items)]

    run_benchmark(CallableTarget(lambda m: "Sydney, I believe.", "plain"), n=2, contexts=["unmodified"], out=tmp_path,
                  scorer=Counting(), progress=False)
    with RunStore(tmp_path, create=False) as store:
        recs = store.records()
        store.set_scores((r.key, not r.correct, r.refused, r.method) for r in recs)  # a score the judge would not give now
    Counting.asked = []
    run_benchmark(CallableTarget(lambda m: "Sydney, I believe.", "plain"), n=2, contexts=["unmodified"], out=tmp_path,
                  guard=PassOrRevise(), scorer=Counting(), progress=False)
    with RunStore(tmp_path) as store:
        recs = store.records()
    passed = [r for r in recs if r.guard_action == "pass"]
    assert passed and all(r.guarded_correct == r.correct and r.guarded_refused == r.refused for r in passed)
    assert Counting.asked == ["It is Canberra, the capital."] * (len(recs) - len(passed))
    Counting.asked = []
    rescore_run(tmp_path, everything=True, scorer=Counting())  # a new scorer: the guarded answers follow it
    with RunStore(tmp_path) as store:
        recs = store.records()
    assert all(r.guarded_correct == r.correct for r in recs if r.guard_action == "pass")
    assert sorted(Counting.asked) == sorted(["Sydney, I believe."] * len(recs) + ["It is Canberra, the capital."] * (len(recs) - len(passed)))
