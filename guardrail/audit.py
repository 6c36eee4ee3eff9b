"""Append-only JSONL audit log of verdicts that loses nothing on a crash.

Each record is one ``os.write`` on a file opened with ``O_APPEND`` followed by ``fsync``, under a lock, so
a record is on disk before the response leaves. A torn last line (power cut mid-write) is sealed with a
newline when the log is reopened, and readers skip lines that are not valid JSON. By default records hold
digests, never raw user or draft text.

Digests are keyed (HMAC-SHA256) with a per-deployment secret kept beside the log (``<log>.key``, mode 0600,
generated on first start): an unsalted hash would let anyone holding the log confirm a guessed message.
Records written with one key can be matched with each other, and with a text only by whoever holds the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

from guardrail.verdict import Verdict, keyed_digest

log = logging.getLogger("guardrail.audit")
KEY_BYTES = 32


def key_path_for(log_path: str | Path) -> Path:
    """Where the digest key of the log at ``log_path`` lives: beside it, as ``<name>.key``."""
    path = Path(log_path)
    return path.with_name(path.name + ".key")


def load_or_create_key(path: str | Path) -> bytes:
    """The secret at ``path``, created (random, mode 0600) when it does not exist yet. A key file that
    others can read is tightened to 0600 with a warning; a malformed one is an error, never replaced,
    since that would silently break matching against older records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("audit key file was readable by others (mode %o): set to 0600", mode)
        os.chmod(path, 0o600)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    for _ in range(50):  # another worker created it a moment ago and is still writing: wait (bounded)
        if text:
            break
        time.sleep(0.02)
        text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ValueError(f"audit key file {path} is not a hex secret of at least 16 bytes: restore it from backup, "
                         "or move it away to start a new key (old digests will no longer match new ones).")
    return key


class AuditLog:
    """Open (or create) the log at ``path`` for appending."""

    def __init__(self, path: str | Path, *, log_text: bool = False, key_path: str | Path | None = None) -> None:
        self.path = Path(path)
        self.log_text = log_text
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key_path = Path(key_path) if key_path else key_path_for(self.path)
        self._key = load_or_create_key(self.key_path)
        # Names the key without revealing it, so a verifier knows which key a record needs.
        self.key_id = hashlib.sha256(b"guardrail-audit-key-id:" + self._key).hexdigest()[:12]
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

    def digest(self, text: Optional[str]) -> Optional[str]:
        """The keyed digest this log uses (HMAC-SHA256 under the deployment's key)."""
        return keyed_digest(text, self._key)

    def shown(self, verdict: Verdict) -> dict[str, Any]:
        """``verdict`` as this log stores it: redacted with keyed claim digests unless ``log_text``."""
        return (verdict if self.log_text else verdict.redacted(digest=self.digest)).model_dump(mode="json")

    def record_verdict(self, verdict: Verdict, *, request_id: str, endpoint: str, user_message: Optional[str] = None,
                       draft: Optional[str] = None, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Write one verdict (redacted unless ``log_text``) with keyed digests of the texts; return the record."""
        record: dict[str, Any] = {
            "ts": round(time.time(), 6),
            "request_id": request_id,
            "endpoint": endpoint,
            "digest": "hmac-sha256",
            "key_id": self.key_id,
            "user_digest": self.digest(user_message),
            "draft_digest": self.digest(draft),
            "verdict": self.shown(verdict),
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
