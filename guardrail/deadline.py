"""The per-request latency budget: a deadline passed into every stage, and a runner that returns at the
deadline whatever the work is doing.

Python cannot kill a thread, so the work runs on a thread of its own (never a shared pool that one slow
check could fill): at the deadline the caller gets its answer and the abandoned thread stops at the next
stage boundary, where ``check`` raises. Calls that can block (HTTP) get the time left as their timeout.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable


class DeadlineExceeded(TimeoutError):
    """The check's latency budget is spent."""


def check(deadline: float, stage: str = "") -> None:
    """Raise at a stage boundary once the deadline has passed."""
    if time.monotonic() > deadline:
        raise DeadlineExceeded(f"latency budget spent{' before ' + stage if stage else ''}")


def run_until(deadline: float, fn: Callable[[], Any]) -> Any:
    """``fn()`` on its own daemon thread; its result, its exception, or ``DeadlineExceeded`` at the deadline."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name="guard-check", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise DeadlineExceeded("latency budget spent")
    if "error" in box:
        raise box["error"]
    return box.get("result")
