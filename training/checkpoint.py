"""Resumable hand-written training loops (the LoRA emotion encoder, the answer judge): one checkpoint file
holding the trainable weights, the optimizer and the schedule, written atomically, and refused when it was
written with other settings (a resume must continue the same run, not a different one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def resume(path: Path, settings: dict[str, Any], net: Any, optimizer: Any, schedule: Any) -> tuple[int, float]:
    """(step, seconds already spent) from ``path``, loaded into ``net``/``optimizer``/``schedule``; (0, 0.0)
    when there is no checkpoint yet."""
    import torch

    if not path.is_file():
        return 0, 0.0
    state = torch.load(path, weights_only=False)
    if state.get("settings") != settings:
        raise ValueError(f"{path} was written with {state.get('settings')}, not {settings}: resume with the same "
                         f"settings and data, or delete the checkpoint to start again.")
    net.load_state_dict(state["trainable"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    return state["step"], state["elapsed"]


def save(path: Path, settings: dict[str, Any], net: Any, optimizer: Any, schedule: Any, step: int, elapsed: float) -> None:
    """Write the checkpoint beside ``path`` and move it into place, so a kill never leaves half a file."""
    import torch

    state = {"settings": settings, "trainable": net.trainable_state(), "optimizer": optimizer.state_dict(),
             "schedule": schedule.state_dict(), "step": step, "elapsed": elapsed}
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
