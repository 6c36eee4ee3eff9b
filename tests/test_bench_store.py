"""The run store: answers written as they arrive, resume after a crash, never the same key twice."""

from __future__ import annotations

import pytest

from benchmarks.runner import run_benchmark
from benchmarks.store import RunStore, StoreConfigError
from benchmarks.targets import CallableTarget
from benchmarks.tasks import load_task


class Crash(RuntimeError):
    pass


def sycophant(asked: list[str], crash_after: int | None = None):
    """A real (if simple) assistant: agrees with a stated belief, else answers correctly."""
    items = {it.question: it for it in load_task("embedded")}

    def answer(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if crash_after is not None and len(asked) >= crash_after:
            raise Crash("process died")
        asked.append(prompt)
        it = next(it for q, it in items.items() if q in prompt)
        return f"Yes, {it.best_incorrect}." if "I think the answer is" in prompt else f"The answer is {it.best_correct}."

    return answer


def test_crash_then_resume_without_redoing_or_duplicating(tmp_path):
    asked: list[str] = []
    n, contexts = 6, ("unmodified", "emotion:sad", "stake:low")
    expected = n * 2 * len(contexts)
    with pytest.raises(Crash):
        run_benchmark(CallableTarget(sycophant(asked, crash_after=13), "syco"), n=n, contexts=contexts,
                      out=tmp_path, progress=False)
    with RunStore(tmp_path) as store:
        assert store.count() == 13  # every answer that arrived before the crash was written
    run_benchmark(CallableTarget(sycophant(asked), "syco"), n=n, contexts=contexts, out=tmp_path, progress=False)
    assert len(asked) == expected  # 13 before the crash + the rest after: nothing asked twice
    assert len(set(asked)) == expected
    with RunStore(tmp_path) as store:
        recs = store.records()
    assert len(recs) == expected and len({r.key for r in recs}) == expected
    assert all(r.scored for r in recs)  # the 13 stored before the crash were scored on resume
    # a third run asks nothing
    run_benchmark(CallableTarget(sycophant(asked), "syco"), n=n, contexts=contexts, out=tmp_path, progress=False)
    assert len(asked) == expected
    assert {(r.template, r.correct) for r in recs} == {("original", True), ("incorrect", False)}


def test_growing_a_run_reuses_answers_and_targets_share_a_folder(tmp_path):
    asked: list[str] = []
    run_benchmark(CallableTarget(sycophant(asked), "a"), n=3, contexts=["unmodified"], out=tmp_path, progress=False)
    run_benchmark(CallableTarget(sycophant(asked), "a"), n=5, contexts=["unmodified"], out=tmp_path, progress=False)
    assert len(asked) == 10 and len(set(asked)) == 10  # the 3-question sample is inside the 5-question one
    other: list[str] = []
    run_benchmark(CallableTarget(sycophant(other), "b"), n=3, contexts=["unmodified"], out=tmp_path, progress=False)
    with RunStore(tmp_path) as store:
        assert store.count("a") == 10 and store.count("b") == 6
        assert set(store.targets()) == {"a", "b"}


def test_label_reused_with_another_configuration_is_refused(tmp_path):
    with RunStore(tmp_path) as store:
        store.register_target("warm", {"kind": "local", "system": None})
        store.register_target("warm", {"kind": "local", "system": None})  # same: fine
        with pytest.raises(StoreConfigError, match="Pass a different label"):
            store.register_target("warm", {"kind": "local", "system": "Be warm."})
    with pytest.raises(FileNotFoundError, match="not a benchmark run folder"):
        RunStore(tmp_path / "nothing", create=False)


def test_put_answer_is_idempotent(tmp_path):
    with RunStore(tmp_path) as store:
        kw = dict(target="t", task="embedded", question_id="q", template="original", context="unmodified", seed=0,
                  prompt="p")
        assert store.put_answer(answer="first", **kw) is True
        assert store.put_answer(answer="second", **kw) is False
        assert [r.answer for r in store.records()] == ["first"]


def test_rescore_command_scores_without_asking(tmp_path):
    from typer.testing import CliRunner

    from guardrail.cli import app

    asked: list[str] = []
    run_benchmark(CallableTarget(sycophant(asked), "syco"), n=2, contexts=["unmodified"], out=tmp_path,
                  progress=False)
    with RunStore(tmp_path) as store:
        store.reset_scores(r.key for r in store.records())
        assert not any(r.scored for r in store.records())
    res = CliRunner().invoke(app, ["bench", "rescore", str(tmp_path)])
    assert res.exit_code == 0 and "Scored 4 answers" in res.output, res.output
    res = CliRunner().invoke(app, ["bench", "rescore", str(tmp_path), "--all"])
    assert "Scored 4 answers" in res.output
    assert len(asked) == 4
    with RunStore(tmp_path) as store:
        assert all(r.scored for r in store.records())
    res = CliRunner().invoke(app, ["bench", "rescore", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "not a benchmark run folder" in res.output
