"""Where the shared public datasets live (``../shared/data`` beside the project), found in one place."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def in_hash_share(text: str, percent: int) -> bool:
    """Whether ``text`` falls in the first ``percent`` of 100 buckets by its SHA-1: a dev split that stays
    stable as a corpus grows and never depends on row order."""
    import hashlib

    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 100 < percent


class SharedDataMissing(FileNotFoundError):
    """The shared data folder (or a file in it) is absent; the message says where it was looked for."""


def shared_data_dir() -> Path | None:
    """``$GUARDRAIL_DATA`` if set, else ``../shared/data`` beside the project (or the working directory)."""
    env = os.environ.get("GUARDRAIL_DATA")
    candidates = [Path(env)] if env else []
    candidates += [PROJECT_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


def shared_file(relative: str) -> Path:
    """A file under the shared data folder, or a clear error naming where it should be."""
    root = shared_data_dir()
    if root is None:
        raise SharedDataMissing(
            "The shared data folder was not found: expected ../shared/data beside the project, "
            "or set GUARDRAIL_DATA to its path."
        )
    path = root / relative
    if not path.exists():
        raise SharedDataMissing(f"{path} is missing from the shared data folder {root}.")
    return path


def parse_jsonl(text: str, source: object, error: type[Exception] = ValueError) -> list[dict]:
    """Objects of a JSONL text, one per non-blank line; a bad line raises ``error`` naming the source and line."""
    import json

    rows = []
    for lineno, line in enumerate(text.split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{source}, line {lineno}: not valid JSON ({exc.msg}); JSONL needs one object per line.") from None
        if not isinstance(row, dict):
            raise error(f"{source}, line {lineno}: expected a JSON object per line, got {type(row).__name__}.")
        rows.append(row)
    return rows
