"""The `guardrail` command line. Each subcommand group lives beside the code it drives and imports its
heavy dependencies only when run, so `guardrail --help` stays fast."""

from __future__ import annotations

import importlib
import json
import os
import sys

import typer

app = typer.Typer(
    name="guardrail",
    help="Catch warm chat models agreeing with a sad user's false belief: guard, benchmark, reproduce.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that add their commands to `app` through a `register(app)` function.
COMMAND_MODULES = [
    "guardrail.commands",  # check, serve, serve-model
    "training.detector_commands",  # train-detector
    "training.commands",  # warm-tune, warmth, probe
    "benchmarks.commands",  # bench, bench compare
    "benchmarks.reproduce_commands",  # reproduce
]


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Check the installation: versions, embedded models, model cache, shared data. Exit 1 if the main job cannot run."""
    from guardrail.doctor import collect, render

    report = collect()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        render(report)
    raise typer.Exit(0 if report["ok"] else 1)


@app.command()
def demo(
    model: str = typer.Option(None, help="Chat model: Hugging Face id or local path (default: embedded SmolLM2)."),
    max_new_tokens: int = typer.Option(48, help="Tokens to generate per answer."),
) -> None:
    """Show the harm on a real model: a neutral question vs. a sad user stating a false belief."""
    from guardrail.demo import run_demo

    run_demo(model=model, max_new_tokens=max_new_tokens)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(app)


_register_commands()


def run_cli(command: typer.Typer) -> None:
    """Run a typer app with errors caught once, here: one line saying what failed and how to fix it, exit 2,
    never a traceback (set GUARDRAIL_DEBUG=1 to see one)."""
    try:
        command()
    except KeyboardInterrupt:  # a long job already wrote what it finished; say how to resume
        typer.echo("Interrupted: finished work is saved; run the same command again to resume.", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("GUARDRAIL_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or "no message"
        typer.echo(f"error: {message[:500]} ({type(exc).__name__}; GUARDRAIL_DEBUG=1 shows the traceback)", err=True)
        sys.exit(2)


def main() -> None:
    """Console-script entry point."""
    run_cli(app)


if __name__ == "__main__":
    main()
