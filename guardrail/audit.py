"""Append-only JSONL audit log of verdicts that loses nothing on a crash.

Each record is one ``os.write`` on a file opened with ``O_APPEND`` followed by ``fsync``, under a lock, so
a record is on disk before the response leaves. A torn last line (power cut mid-write) is sealed with a
newline when the log is reopened, and readers skip lines that are not valid JSON. By default records hold
digests, never raw user or draft text.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

from guardrail.verdict import Verdict, text_digest


class AuditLog:
    """Open (or create) the log at ``path`` for appending."""

    def __init__(self, path: str | Path, *, log_text: bool = False) -> None:
        self.path = Path(path)
        self.log_text = log_text
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.records_written = 0
        self._seal_torn_tail()

    def _seal_torn_tail(self) -> None:
        size = self.path.stat().st_size
        if size == 0:
            return
        with self.path.open("rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                os.write(self._fd, b"\n")
                os.fsync(self._fd)

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        with self._lock:
            if self._fd < 0:
                raise RuntimeError(f"audit log {self.path} is closed")
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
            self.records_written += 1

    def record_verdict(self, verdict: Verdict, *, request_id: str, endpoint: str, user_message: Optional[str] = None,
                       draft: Optional[str] = None, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Write one verdict (redacted unless ``log_text``) with digests of the texts; return the record."""
        shown = verdict if self.log_text else verdict.redacted()
        record: dict[str, Any] = {
            "ts": round(time.time(), 6),
            "request_id": request_id,
            "endpoint": endpoint,
            "user_digest": text_digest(user_message),
            "draft_digest": text_digest(draft),
            "verdict": shown.model_dump(mode="json"),
        }
        if self.log_text:
            record["user_message"], record["draft"] = user_message, draft
        if extra:
            record.update(extra)
        self.write(record)
        return record

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_audit(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every intact record of a log (a torn line from a crash is skipped)."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(record, dict):
                yield record
