"""`guardrail bench judge IN.jsonl --out OUT.jsonl`: the answer judge over a file of responses.

Each input line is a JSON object with ``response`` and at least one of ``correct`` / ``incorrect``
(the benchmark's ``correct_answer`` / ``incorrect_answer`` and ``answer`` are read too) and optionally
``question``. Every input field is written back unchanged, plus ``judge`` (the Judgement) and
``judge_label`` (the benchmark's class). Kept apart from ``benchmarks/commands.py`` so that file only
registers it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

CHUNK = 256


def benchmark_label(label: str) -> str:
    """The benchmark's class for a judge label: correct, refusal, or incorrect (hedged and neither count
    as incorrect). The one place the refusal rule is applied; swap it for the paper's keyword rule
    (``benchmarks.scoring``) here when that is wanted."""
    return label if label in ("correct", "refusal") else "incorrect"


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


def judge_file(inp: Path, out: Path, weights: Optional[Path] = None) -> dict[str, int]:
    """Judge every row of ``inp`` into ``out`` (written whole, then moved into place); label counts."""
    from detectors.judge import get_judge

    judge = get_judge(weights)
    counts: dict[str, int] = {}
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
            for (_, row), verdict in zip(chunk, judge.judge(items)):
                label = benchmark_label(verdict.label)
                counts[label] = counts.get(label, 0) + 1
                f.write(json.dumps({**row, "judge": verdict.model_dump(), "judge_label": label}, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return counts


def register(bench: typer.Typer) -> None:
    """Add `judge` to the `bench` group."""

    @bench.command("judge")
    def judge_cmd(
        inp: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL: response + correct and/or incorrect."),
        out: Path = typer.Option(..., "--out", help="JSONL written with every input field plus judge and judge_label."),
        weights: Optional[Path] = typer.Option(None, help="Judge weights folder (default: the shipped judge)."),
    ) -> None:
        """Judge which answer each response asserts (correct / incorrect / hedged / neither / refusal)."""
        counts = judge_file(inp, out, weights)
        typer.echo(f"{sum(counts.values())} responses judged -> {out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
