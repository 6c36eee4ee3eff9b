"""`guardrail bench judge IN.jsonl --out OUT.jsonl`: score answers a user already has.

Each input line is a JSON object with ``response`` and at least one of ``correct_answer`` /
``incorrect_answer`` (``correct``, ``incorrect``, ``claim``, ``answer``, ``draft`` are read too), and
optionally ``id``, ``task``, ``question``, ``prompt``. Every input field is written back unchanged, plus
``label`` (the benchmark's class: ``correct`` | ``incorrect`` | ``refusal``, the paper's refusal rule: one
of its phrases anywhere in the response), ``scores`` (the judge's calibrated probabilities) and
``judge`` (its whole verdict: 5-way label, decisive sentence). An input ``label`` (a gold label, say) is
kept as ``input_label``. With ``--judge-url``, an LLM grades every response with the project's rubric
(``benchmarks.scoring.JUDGE_RUBRIC``) into ``llm_label``, and the command reports Cohen's κ between the
two judges. Kept apart from ``benchmarks/commands.py`` so that file only registers it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

CHUNK = 256


def benchmark_label(label: str) -> str:
    """The benchmark's class for a 5-way judge label: correct, refusal, or incorrect (hedged and neither
    count as incorrect)."""
    return label if label in ("correct", "refusal") else "incorrect"


def paper_label(judge_label: str, response: str) -> str:
    """The paper's class: refusal when one of its refusal phrases is anywhere in the response (whatever
    the judge read), else correct only when the judge says the response asserts the correct answer."""
    from benchmarks.scoring import is_refusal

    if is_refusal(response):
        return "refusal"
    return "correct" if judge_label == "correct" else "incorrect"


def item_from_row(row: dict[str, Any]) -> Any:
    """A JudgeItem from a row in either naming (judge fields or the benchmark's answer-example fields)."""
    from detectors.judge import JudgeItem

    pick = lambda *names: next((row[n] for n in names if row.get(n) not in (None, "")), None)  # noqa: E731
    return JudgeItem(question=pick("question"), correct=pick("correct", "correct_answer"),
                     incorrect=pick("incorrect", "incorrect_answer", "claim"), response=pick("response", "answer", "draft") or "")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise typer.BadParameter(f"{path}:{n} is not JSON ({exc.msg}); one object per line.") from None
                if not isinstance(row, dict):
                    raise typer.BadParameter(f"{path}:{n} is not a JSON object.")
                yield n, row


def llm_labels(llm: Any, items: list[Any], rows: list[dict[str, Any]]) -> list[Optional[str]]:
    """The LLM judge's class per row (None where its reply was not CORRECT/INCORRECT)."""
    from benchmarks.tasks import Item

    tasks = [Item(task=str(r.get("task") or "answers"), question_id=str(r.get("id") or k), question=it.question or "",
                  best_correct=it.correct or "(not given)", best_incorrect=it.incorrect or "(not given)",
                  correct_answers=[it.correct or "(not given)"], incorrect_answers=[it.incorrect] if it.incorrect else [],
                  scoring="stance") for k, (it, r) in enumerate(zip(items, rows))]
    graded = llm.judge_batch(tasks, [it.response for it in items])
    return [None if g is None else ("correct" if g else "incorrect") for g in graded]


def judge_file(inp: Path, out: Path, weights: Optional[Path] = None, llm: Any = None) -> dict[str, Any]:
    """Judge every row of ``inp`` into ``out`` (written whole, then moved into place); label counts, and
    with an LLM judge its counts and κ against the embedded judge."""
    from benchmarks.scoring import cohen_kappa
    from detectors.judge import get_judge

    judge = get_judge(weights)
    counts: dict[str, int] = {}
    pairs: list[tuple[Optional[bool], Optional[bool]]] = []
    tmp = out.with_name(out.name + ".tmp")
    rows = list(_rows(inp))
    with tmp.open("w", encoding="utf-8") as f:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            items = []
            for n, row in chunk:
                try:
                    items.append(item_from_row(row))
                except ValueError as exc:
                    raise typer.BadParameter(f"{inp}:{n}: {exc}") from None
            plain = [row for _, row in chunk]
            graded = llm_labels(llm, items, plain) if llm is not None else [None] * len(items)
            for row, item, verdict, other in zip(plain, items, judge.judge(items), graded):
                label = paper_label(verdict.label, item.response)
                counts[label] = counts.get(label, 0) + 1
                extra: dict[str, Any] = {"label": label, "scores": verdict.scores, "judge": verdict.model_dump()}
                if llm is not None:
                    extra["llm_label"] = other
                    if label != "refusal":  # refusals follow the phrase rule for both judges
                        pairs.append((label == "correct", None if other is None else other == "correct"))
                kept = {("input_label" if k == "label" else k): v for k, v in row.items()}
                f.write(json.dumps({**kept, **extra}, ensure_ascii=False) + "\n")
    tmp.replace(out)
    report: dict[str, Any] = {"counts": counts}
    if llm is not None:
        report["llm_graded"] = sum(b is not None for _, b in pairs)
        report["kappa_embedded_vs_llm"] = cohen_kappa([a for a, _ in pairs], [b for _, b in pairs])
    return report


def register(bench: typer.Typer) -> None:
    """Add `judge` to the `bench` group."""

    @bench.command("judge")
    def judge_cmd(
        inp: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL: response + correct and/or incorrect."),
        out: Path = typer.Option(..., "--out", help="JSONL written with every input field plus label, scores and judge (and llm_label)."),
        weights: Optional[Path] = typer.Option(None, help="Judge weights folder (default: the shipped judge)."),
        judge_url: Optional[str] = typer.Option(None, help="Also grade with an LLM at this OpenAI-compatible base URL "
                                                "(the project's CORRECT/INCORRECT rubric); reports kappa between the judges."),
        judge_model: Optional[str] = typer.Option(None, help="Model name for --judge-url."),
        api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the LLM judge's API key."),
    ) -> None:
        """Score answers you already have: which answer each response asserts, as the benchmark's label
        (correct / incorrect / refusal, the paper's refusal rule) with the judge's scores; every input field
        passes through."""
        llm = None
        if judge_url:
            if not judge_model:
                raise typer.BadParameter("--judge-url needs --judge-model.", param_hint="--judge-model")
            from benchmarks.scoring import LLMJudge
            from benchmarks.targets import HTTPTarget

            llm = LLMJudge(HTTPTarget(judge_url, judge_model, label="judge", max_new_tokens=8, api_key_env=api_key_env))
        report = judge_file(inp, out, weights, llm)
        counts = report["counts"]
        typer.echo(f"{sum(counts.values())} responses judged -> {out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if llm is not None:
            k = report["kappa_embedded_vs_llm"]
            typer.echo(f"LLM judge graded {report['llm_graded']}; Cohen's kappa, embedded vs LLM (refusals apart): "
                       + ("n/a" if k is None else f"{k:.3f}"))
