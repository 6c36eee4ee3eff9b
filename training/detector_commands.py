"""`guardrail train-detector`: fine-tune the emotion or stance detector on your own labelled file."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer


class DetectorKind(str, Enum):
    emotion = "emotion"
    stance = "stance"


def register(app: typer.Typer) -> None:
    """Add this package's commands to the CLI."""

    @app.command("train-detector")
    def train_detector_command(
        kind: DetectorKind = typer.Argument(..., help="Which detector: emotion (text -> label) or stance (claim + draft -> label)."),
        data: Path = typer.Option(..., "--data", help="Labelled file: .csv, .tsv or .jsonl (UTF-8)."),
        out: Path = typer.Option(..., "--out", help="Folder to write the weights, metrics.json and README.md data card into."),
        text_col: str = typer.Option("text", help="emotion: column with the user message."),
        label_col: str = typer.Option("label", help="Column with the label (emotion names or 0/1; stance: endorses/corrects/hedges/ignores)."),
        claim_col: str = typer.Option("claim", help="stance: column with the claim."),
        draft_col: str = typer.Option("draft", help="stance: column with the draft reply."),
        question_col: Optional[str] = typer.Option(None, help="stance: optional column with the question."),
        target: str = typer.Option("sadness", help="emotion: which score 0/1 labels train (sadness, anger, joy, fear, distress)."),
        test_fraction: float = typer.Option(0.2, help="Share of rows held out for the metrics."),
        method: str = typer.Option("head", help="stance: 'head' (fast, over frozen features; continues the default) or 'lora' (cross-encoder; GPU advised)."),
        max_steps: int = typer.Option(200, help="stance: most optimiser steps (lora) or epochs, capped at 60 (head)."),
        time_limit: float = typer.Option(900, help="stance: wall-clock cap in seconds."),
        seed: int = typer.Option(0, help="Random seed for the split and the training."),
    ) -> None:
        """Train a detector on your labelled file, evaluate it on a held-out split, and write weights that
        load with EmotionDetector(path=OUT) / StanceDetector(path=OUT). The file is checked first."""
        from training.detector_training import DetectorDataError, train_detector

        try:
            metrics = train_detector(kind.value, data, out, text_col=text_col, label_col=label_col, claim_col=claim_col,
                                     draft_col=draft_col, question_col=question_col, target=target,
                                     test_fraction=test_fraction, max_steps=max_steps, time_limit_s=time_limit, seed=seed,
                                     method=method)
        except DetectorDataError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        typer.echo(json.dumps(metrics, indent=2))
        typer.echo(f"wrote {out} (weights, metrics.json, README.md)")
