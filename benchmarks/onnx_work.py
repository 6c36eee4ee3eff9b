"""Count the encoder work a piece of code runs: token positions per ONNX graph, machine-independent.

Wall-clock ratios move with the CPU and its load; the token positions each graph runs do not, so the
speed scripts print them beside their timings: the work a ratio stands for, whatever the machine.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator


def graph_kind(model_path: str) -> str:
    """A cached export's family from its file name: ``emotion-split``, ``encoder``, ``judge``, ..."""
    name = Path(model_path or "?").name
    return name.split("-")[0] + ("-split" if "-split-" in name else "")


@contextlib.contextmanager
def counting_onnx_runs() -> Iterator[list[tuple[str, int]]]:
    """Inside the block, every ``onnxruntime.InferenceSession.run`` is recorded as (graph kind, batch x
    tokens of its ``input_ids``). Benchmark use only: it patches the class for the whole process."""
    import onnxruntime as ort

    runs: list[tuple[str, int]] = []
    original = ort.InferenceSession.run

    def counting(session, output_names, feed, *args, **kwargs):  # type: ignore[no-untyped-def]
        ids = feed.get("input_ids")
        runs.append((graph_kind(getattr(session, "_model_path", "")), int(ids.shape[0] * ids.shape[1]) if ids is not None else 0))
        return original(session, output_names, feed, *args, **kwargs)

    ort.InferenceSession.run = counting  # type: ignore[method-assign]
    try:
        yield runs
    finally:
        ort.InferenceSession.run = original  # type: ignore[method-assign]


def by_graph(runs: list[tuple[str, int]], layers: dict[str, int] | None = None, default_layers: int = 6) -> dict[str, dict[str, int]]:
    """Runs, positions and positions x layers per graph kind (``layers``: a graph's layer count where it
    is not ``default_layers``)."""
    graphs: dict[str, dict[str, int]] = {}
    for kind, positions in runs:
        g = graphs.setdefault(kind, {"runs": 0, "positions": 0, "layer_positions": 0})
        g["runs"] += 1
        g["positions"] += positions
        g["layer_positions"] += positions * (layers or {}).get(kind, default_layers)
    return graphs
