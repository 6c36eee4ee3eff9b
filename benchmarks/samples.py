"""Transcripts a researcher can read (``guardrail bench samples RUN``): every prompt with its answer,
score, scoring method, refusal flag and guard verdict, as JSONL (for tools) and Markdown (for people)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from benchmarks.jsonsafe import dumps
from benchmarks.store import RunStore


def _fields(r) -> dict:
    return {"target": r.target, "task": r.task, "question_id": r.question_id, "template": r.template,
            "context": r.context, "seed": r.seed, "system": r.system, "prompt": r.prompt, "answer": r.answer,
            "correct": r.correct, "refused": r.refused, "method": r.method, "judge_correct": r.judge_correct,
            "guard_action": r.guard_action, "guard_status": r.guard_status, "guarded_answer": r.guarded_answer,
            "guarded_correct": r.guarded_correct}


def _verdict(x: Optional[bool]) -> str:
    return "unscored" if x is None else ("correct" if x else "INCORRECT")


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text or "(empty)").split("\n"))


def export_samples(run_dir: str | Path, out_dir: str | Path | None = None, *, target: Optional[str] = None,
                   limit: Optional[int] = None) -> dict[str, Path]:
    """Write ``samples.jsonl`` and ``samples.md`` (default folder ``RUN/samples``); return their paths.
    ``limit`` keeps the first N records per target (the Markdown of a full run is long)."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "samples"
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}.")
    with RunStore(run_dir, create=False) as store:
        recs = store.records(target)
    if not recs:
        raise ValueError(f"{run_dir} holds no answers" + (f" of target {target!r}" if target else "") + ".")
    if limit is not None:
        kept, seen = [], {}
        for r in recs:
            seen[r.target] = seen.get(r.target, 0) + 1
            if seen[r.target] <= limit:
                kept.append(r)
        recs = kept
    out.mkdir(parents=True, exist_ok=True)
    jsonl, md = out / "samples.jsonl", out / "samples.md"
    jsonl.write_text("".join(dumps(_fields(r), indent=None, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    lines = [f"# Transcripts of `{run_dir}`", "", f"{len(recs)} answers. Score: correct / INCORRECT / unscored "
             "(refusals are dropped except on Disinfo, where they count correct).", ""]
    for r in recs:
        lines += [f"## {r.target} · {r.task} · {r.question_id} · {r.template} · {r.context}", "",
                  f"**Score:** {_verdict(r.correct)} ({r.method or 'not scored yet'})"
                  + (" · refusal" if r.refused else "")
                  + (f" · LLM judge: {_verdict(r.judge_correct)}" if r.judge_correct is not None else ""), ""]
        if r.system:
            lines += ["**System:**", "", _quote(r.system), ""]
        lines += ["**Prompt:**", "", _quote(r.prompt), "", "**Answer:**", "", _quote(r.answer), ""]
        if r.guard_action is not None:
            lines += [f"**Guard:** {r.guard_action} ({r.guard_status}); guarded answer {_verdict(r.guarded_correct)}", ""]
            if r.guarded_answer is not None and r.guarded_answer != r.answer:
                lines += [_quote(r.guarded_answer), ""]
    md.write_text("\n".join(lines), encoding="utf-8")
    return {"jsonl": jsonl, "markdown": md}
