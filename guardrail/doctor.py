"""`guardrail doctor`: what is installed, where the embedded models live, and what is missing."""

from __future__ import annotations

import importlib.metadata as md
import platform
from typing import Any

PACKAGES = ["torch", "transformers", "sentence-transformers", "peft", "gguf", "pydantic", "httpx", "fastapi", "onnxruntime"]
SHARED_FOLDERS = ["truthfulqa", "triviaqa", "medqa", "mask", "goemotions", "emotion_carer", "nli", "sft_chat", "paper"]


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def collect() -> dict[str, Any]:
    """Gather the report; ``ok`` is False when the main job cannot run, and ``fixes`` says what to do."""
    from detectors.data import shared_data_dir
    from detectors.models import cache_report

    versions = {name: _version(name) for name in PACKAGES}
    models = cache_report()
    data = shared_data_dir()
    fixes: list[str] = []
    for name, version in versions.items():
        if version is None:
            pin = "torch==2.13.0" if name == "torch" else name
            fixes.append(f"Python package {name} is missing: `pip install {pin}` (or `make setup`).")
    for key in ("chat_gguf_error", "encoder_error"):
        if key in models:
            fixes.append(models[key])
    if models.get("chat_converted") is None and models.get("chat_gguf"):
        models["chat_converted_note"] = "not converted yet: the first load converts the GGUF once (about 30 s)."
    folders = {name: bool(data and (data / name).is_dir()) for name in SHARED_FOLDERS}
    return {
        "ok": not fixes,
        "python": platform.python_version(),
        "versions": versions,
        "models": models,
        "shared_data": str(data) if data else None,
        "shared_folders": folders,
        "notes": [] if data else ["../shared/data not found: data-backed tasks and tests are skipped; the embedded task still runs."],
        "fixes": fixes,
    }


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="guardrail doctor", show_header=False)
    table.add_row("python", report["python"])
    for name, version in report["versions"].items():
        table.add_row(name, version or "[red]missing[/red]")
    models = report["models"]
    table.add_row("cache home", models["home"])
    table.add_row("chat model (GGUF)", models.get("chat_gguf") or "[red]missing[/red]")
    converted = models.get("chat_converted")
    table.add_row(
        "chat model cache",
        f"{converted} ({models['chat_converted_mb']} MB)" if converted else f"[yellow]{models.get('chat_converted_note', 'missing')}[/yellow]",
    )
    table.add_row("sentence encoder", models.get("encoder") or "[red]missing[/red]")
    table.add_row("shared data", report["shared_data"] or "[yellow]absent[/yellow]")
    if report["shared_data"]:
        missing = [k for k, v in report["shared_folders"].items() if not v]
        table.add_row("shared folders missing", ", ".join(missing) or "none")
    console.print(table)
    for note in report["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    for fix in report["fixes"]:
        console.print(f"[red]fix:[/red] {fix}")
    console.print("[green]ready[/green]" if report["ok"] else "[red]not ready: apply the fixes above[/red]")
