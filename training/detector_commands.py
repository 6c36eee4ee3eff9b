"""Subcommands registered on the `guardrail` CLI (see guardrail/cli.py). Import heavy code inside commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the CLI."""
