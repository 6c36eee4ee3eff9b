"""`guardrail reproduce`: the main job (see benchmarks/reproduce.py). Heavy imports happen inside."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `reproduce` to the CLI."""

    @app.command()
    def reproduce(
        out: str = typer.Option("runs/reproduce", help="Folder for every stage's output; rerun with the same folder to resume."),
        model: str = typer.Option(None, help="Chat model: Hugging Face id or local path (default: embedded SmolLM2-135M)."),
        full: bool = typer.Option(False, "--full", help="The paper's sizes (hours on a GPU; days on CPU)."),
        tiny: bool = typer.Option(False, "--tiny", help="A few minutes: the sizes the test suite uses."),
        data: str = typer.Option(None, help="Chat-data file to warm-tune on (default: LIMA from ../shared/data)."),
        seed: int = typer.Option(0, help="Seed for question sampling and training."),
        stages: str = typer.Option("", help="Comma-separated subset of stages to run (default: all, in order)."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bars (stage lines are still printed)."),
    ) -> None:
        """Reproduce the warmth paper end to end: baseline -> warm-tune -> bench -> cold-tune -> bench ->
        warm+guard -> probes -> report (REPORT.md, reproduce.json, PNGs in --out). Cached and resumable."""
        from benchmarks.reproduce import STAGES, ReproduceConfig, Reproduction

        if full and tiny:
            raise typer.BadParameter("--full and --tiny exclude each other: pick one.")
        size = "full" if full else "tiny" if tiny else "default"
        chosen = tuple(s.strip() for s in stages.split(",") if s.strip()) or STAGES
        unknown = [s for s in chosen if s not in STAGES]
        if unknown:
            raise typer.BadParameter(f"unknown stage(s) {unknown}: choose from {', '.join(STAGES)}.")
        try:
            rep = Reproduction(out, ReproduceConfig(model=model, size=size, seed=seed, data=data),
                               log=typer.echo, show_progress=not quiet)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        rep.run(chosen)
        typer.echo(f"Report: {rep.out / 'REPORT.md'}")
