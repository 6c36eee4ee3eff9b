"""Runs a researcher can read: the report's paper table cell for cell, the paper's models per pair,
transcripts, run.json and JSON without NaN; canned targets only (no model), paper tasks from ../shared/data."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from benchmarks.jsonsafe import clean, dumps
from benchmarks.runner import run_benchmark
from benchmarks.store import RunStore
from benchmarks.targets import CallableTarget
from benchmarks.tasks import load_task
from tests.conftest import require_shared

TEMPLATES = ("original", "original_neutral", "incorrect", "correct", "mcq")
CONTEXTS = ("unmodified", "emotion:sad")


def _targets():
    items = {it.question_id: it for t in ("triviaqa", "medqa") for it in load_task(t, n=4, seed=1)}
    by_text = {(it.original_question or it.question): it for it in items.values()} | {it.question: it for it in items.values()}

    def find(prompt):
        return next(it for q, it in by_text.items() if q in prompt)

    def right(messages):
        p = messages[-1]["content"]
        return "A" if "(A)" in p else f"It is {find(p).best_correct}."

    def agree(messages):  # right without a belief, the user's answer with one
        p = messages[-1]["content"]
        it = find(p)
        if "(A)" in p:
            return "B"
        return f"You're right, it is {it.best_incorrect}." if "I think the answer is" in p else f"It is {it.best_correct}."

    return CallableTarget(right, "original"), CallableTarget(agree, "warm")


def test_report_samples_and_run_json(tmp_path):
    require_shared("paper/eval_data/questions.jsonl")
    require_shared("medqa/medqa_usmle_4opt_test.jsonl")
    original, warm = _targets()
    for t in (original, warm):
        run_benchmark(t, tasks=("triviaqa", "medqa"), templates=TEMPLATES, contexts=CONTEXTS, n=4, seed=1,
                      out=tmp_path, progress=False)
    with RunStore(tmp_path) as store:
        recs = store.records("original")
    # mcq and original_neutral only unmodified: 4 questions x 2 tasks x (2 + 2 + 2 + 1 + 1) prompts
    assert len(recs) == 4 * 2 * 8
    assert all(r.correct for r in recs), [(r.template, r.method, r.answer) for r in recs if not r.correct][:3]
    meta = json.loads((tmp_path / "run.json").read_text())["runs"]["warm"]
    assert meta["seeds"]["sampling_and_statements"] == 1 and meta["versions"]["statsmodels"]
    assert "git_commit" in meta and "scorer" in meta["judge"] and meta["context_statements"].startswith("paper")
    assert meta["judge"]["judge_weights"].startswith("judge sha1:")  # which answer judge scored the run

    from guardrail.cli import app

    res = CliRunner().invoke(app, ["bench", "report", str(tmp_path), "--baseline", "original"])
    assert res.exit_code == 0, res.output
    report_dir = tmp_path / "report"  # the default, like `bench`
    text = (report_dir / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    report = json.loads(text)
    paper = report["comparisons"][0]["paper"]
    m4 = paper["four_models"]["model4_user_opinion"]["effects"]
    # warm agrees with every false belief (incorrect) and keeps every `correct` belief right: half wrong
    assert m4["user_opinion"]["ame_pp"] > 10
    rows = {(r["dataset"], r["test_type"], r["category"]): r for r in report["paper_side_by_side"]}
    syc = rows[("trivia", "Sycophancy", "emotion:sad")]["ours"]["original → warm"]
    assert syc["n"] == 8 and syc["original_accuracy_pct"] == 100.0 and syc["finetuned_accuracy_pct"] == 50.0
    # a cell the paper ran but we did not (a context we left out) is empty, never borrowed
    assert rows[("trivia", "Sycophancy", "stake:high")]["ours"]["original → warm"] is None
    assert rows[("trivia", "Sycophancy", "stake:high")]["paper"]["llama-8b"]["original_accuracy_pct"] is not None
    assert not any(k[0] in ("truthfulqa", "disinfo") for k in rows)  # tasks not run: no rows
    md = (report_dir / "report.md").read_text()
    assert "The paper's four models" in md and "cell for cell" in md

    res = CliRunner().invoke(app, ["bench", "samples", str(tmp_path), "--label", "warm", "--limit", "5"])
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "samples" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 5 and {"prompt", "answer", "correct", "guard_action"} <= set(json.loads(lines[0]))
    assert "**Prompt:**" in (tmp_path / "samples" / "samples.md").read_text()
    res = CliRunner().invoke(app, ["bench", "samples", str(tmp_path), "--label", "nobody"])
    assert res.exit_code == 2 and "holds no answers of target 'nobody'" in res.output


def test_json_never_holds_nan():
    import numpy as np

    obj = {"a": float("nan"), "b": [np.float64("inf"), 1.5, np.int64(3)], "c": (np.float32(2.0),)}
    assert clean(obj) == {"a": None, "b": [None, 1.5, 3], "c": [2.0]}
    assert json.loads(dumps(obj)) == {"a": None, "b": [None, 1.5, 3], "c": [2.0]}


def test_full_reproduction_runs_the_papers_four_tasks_and_lists_departures():
    from benchmarks.reproduce import SIZES, departures

    assert SIZES["full"].tasks == ["triviaqa", "truthfulqa", "medqa", "disinfo"]
    full = departures({"size": SIZES["full"].model_dump(), "config": {"model": None}})
    assert not any(d.startswith(("tasks:", "questions:", "contexts:", "templates:")) for d in full)
    default = departures({"size": SIZES["default"].model_dump(), "config": {"model": None}})
    assert any(d.startswith("tasks: embedded") for d in default) and any(d.startswith("contexts:") for d in default)
