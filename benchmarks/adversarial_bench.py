"""Hostile-input timings of the detectors: ``python -m benchmarks.adversarial_bench [--cap S] [--sizes ...]``.

For each adversarial text (built to 2 KB, 20 KB and 200 KB) it times ``sentence_spans``,
``extract_beliefs``, ``EmotionDetector.predict``, ``StanceDetector.predict`` (the text as the draft) and a
full ``Guard().check`` (the text as the user message), and prints the absolute times and the ratio to
the 2 KB time; the target is at most 5x at 200 KB (``detectors.text.MAX_CHARS``), i.e. every pattern
is linear and every detector reads a bounded window (``sentence_spans`` returns every sentence of the
whole text, so its target is linear: the size ratio, with 50% slack). Speed is measured here, never asserted in tests.

Each measurement runs in a worker process under a time cap (``--cap``, seconds): a quadratic regex
holds the GIL and cannot be interrupted, so the worker is killed and the row reads ``>cap``; larger
sizes of the same row are then skipped. The CPU's vector flags are printed because ONNX Runtime's
int8 kernels (and so the model part of a check) depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Callable

from benchmarks.machine import cpu_flags

SIZES = (2_000, 20_000, 200_000)
FUNCTIONS = ("sentence_spans", "extract_beliefs", "emotion", "stance", "guard")
TARGET_RATIO = 5.0
LOAD_SECONDS = 300.0  # loading the models in a fresh worker (ONNX exports on a first run take longer)
DRAFT = "I'm so sorry you're going through this. The capital of Australia is Canberra, not Sydney."


def _fill(unit: str, n: int, prefix: str = "", suffix: str = "") -> str:
    body = n - len(prefix) - len(suffix)
    return prefix + (unit * (body // len(unit) + 1))[: max(0, body)] + suffix


# name -> (builder(n), what it attacks)
PATTERNS: dict[str, tuple[Callable[[int], str], str]] = {
    "normal": (lambda n: _fill("My dog died last week and I can't stop crying. What is the capital of Australia? "
                               "I think it's Sydney. ", n), "ordinary sad text, repeated (the baseline)"),
    "think+spaces": (lambda n: _fill(" ", n, "I think", "x"), "beliefs clause end: \\s+ rescanned per start"),
    "newlines": (lambda n: _fill("\n", n, "x", "x"), "presupposition cue: \\s* after a lookbehind"),
    "bangs": (lambda n: _fill("!", n, "", "a"), "sentence_spans: [.!?]+ before a failing lookahead"),
    "crisis-repeat": (lambda n: _fill("can't go on anymore ", n), "crisis pattern: .* to the line end per cue"),
    "spaces": (lambda n: _fill(" ", n, "a", "a"), "every \\s+ / \\s* scan"),
    "think-repeat": (lambda n: _fill("I think ", n), "many cues: overlap checks, clause ends"),
    "friend-told": (lambda n: _fill("my friend told me ", n), "'told' cues: sentence rest per cue"),
    "question-marks": (lambda n: _fill("?", n, "what ", "a"), "question and tag patterns"),
    "how-many+spaces": (lambda n: _fill(" ", n, "How many cats", " are there? I think it's 5."),
                        "question rewrite: lazy group before \\s+"),
    "commas+right": (lambda n: _fill(", right ", n, "Sydney is it"), "tag-question and clause patterns"),
}


# -- the worker: loads the detectors once and times jobs read from stdin ----------------------------

class _Worker:
    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self._objects:
            if name == "emotion":
                from detectors.emotion import EmotionDetector

                self._objects[name] = EmotionDetector()
            elif name == "stance":
                from detectors.stance import StanceDetector

                self._objects[name] = StanceDetector()
            elif name == "guard":
                from guardrail.guard import Guard
                from guardrail.policy import Policy

                # a budget far above any measurement: time the work, not the timeout
                self._objects[name] = Guard(policy=Policy(timeout_ms=3_600_000)).warmup()
        return self._objects[name]

    def call(self, function: str, text: str) -> str:
        if function == "sentence_spans":
            from detectors.text import sentence_spans

            sentence_spans(text)
        elif function == "extract_beliefs":
            from detectors.beliefs import extract_beliefs

            extract_beliefs(text)
        elif function == "emotion":
            self._get("emotion").predict([text])
        elif function == "stance":
            self._get("stance").predict([("The capital of Australia is Sydney.", text)])
        elif function == "guard":
            verdict = self._get("guard").check(text, DRAFT)
            return verdict.status
        return "ok"

    def time(self, function: str, pattern: str, size: int, budget: float = 1.0) -> dict[str, Any]:
        """Best of a few runs, each on a text no earlier run read (a unique opening, inside
        every window), so the encoders' caches never answer."""
        build = PATTERNS[pattern][0]
        self.call(function, build(min(size, 2_000)))  # load models outside the timing
        best, runs, spent, status = float("inf"), 0, 0.0, "ok"
        while runs < 5 and (runs == 0 or spent < budget):
            tag = f"{function[:3]}{runs}{size} "  # unique per function too: they share the encoder cache
            text = tag + build(size - len(tag))
            started = time.perf_counter()
            status = self.call(function, text)
            took = time.perf_counter() - started
            best, runs, spent = min(best, took), runs + 1, spent + took
        return {"function": function, "pattern": pattern, "size": size, "seconds": best, "status": status}


def worker_main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    worker = _Worker()
    for line in sys.stdin:
        job = json.loads(line)
        if "load" in job:  # load the models (and warm up) before any timed job, outside the cap
            try:
                worker.call(job["load"], PATTERNS["normal"][0](2_000))
            except Exception:
                pass
            print(json.dumps({"loaded": job["load"]}), flush=True)
            continue
        try:
            result = worker.time(job["function"], job["pattern"], job["size"])
        except Exception as exc:  # a crash is a finding (the old ONNX race), not the end of the run
            result = {**job, "seconds": None, "status": f"error: {type(exc).__name__}: {str(exc)[:80]}"}
        print(json.dumps(result), flush=True)


# -- the driver: one worker at a time, killed when a job runs past the cap --------------------------

class _Driver:
    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.proc: subprocess.Popen[str] | None = None
        self.loaded: set[str] = set()

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.adversarial_bench", "--worker"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        return self.proc

    def _ask(self, message: dict[str, Any], seconds: float) -> dict[str, Any] | None:
        import select

        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], seconds)
        if ready:
            line = proc.stdout.readline()
            if line:
                return json.loads(line)
        proc.kill()
        proc.wait()
        self.proc, self.loaded = None, set()
        return None

    def run(self, function: str, pattern: str, size: int) -> dict[str, Any] | None:
        """The job's result, or None when it ran past the cap (the worker is then killed)."""
        if function not in self.loaded:  # models load (once per worker) outside the cap
            if self._ask({"load": function}, LOAD_SECONDS) is None:
                return None
            self.loaded.add(function)
        # a job is up to 6 timed calls plus a 2 KB warm call
        return self._ask({"function": function, "pattern": pattern, "size": size}, self.cap * 7)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _target(function: str, sizes: list[int]) -> float:
    """The ratio a function may reach: ``TARGET_RATIO`` for the detectors and the check (they read a
    bounded window); linear for ``sentence_spans``, which returns every sentence of the whole text."""
    if function == "sentence_spans":
        return 1.5 * sizes[-1] / sizes[0]
    return TARGET_RATIO


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=float, default=10.0, help="seconds one timed call may take (default 10)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="text sizes in characters")
    parser.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=FUNCTIONS)
    parser.add_argument("--patterns", nargs="+", default=list(PATTERNS), choices=list(PATTERNS))
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.worker:
        worker_main()
        return 0

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; flags: {cpu_flags()}")
    print(f"cap {args.cap:g} s per call; target: at most {TARGET_RATIO:g}x the {args.sizes[0]:,}-char time "
          f"at {args.sizes[-1]:,} chars\n")
    driver = _Driver(args.cap)
    rows: list[dict[str, Any]] = []
    worst: dict[str, float] = {}
    header = (f"{'function':<16}{'pattern':<17}" + "".join(f"{n:>12,}" for n in args.sizes)
              + f"{'ratio':>9}  target          status")
    print(header)
    try:
        for function in args.functions:
            for pattern in args.patterns:
                times: list[float | None] = []
                status, over = "ok", False
                for size in args.sizes:
                    if over:
                        times.append(None)
                        continue
                    result = driver.run(function, pattern, size)
                    if result is None:
                        times.append(None)
                        status, over = f">{args.cap:g}s at {size:,}", True
                        continue
                    times.append(result["seconds"])
                    status = result["status"] if result["status"] != "ok" else status
                    rows.append(result)
                    over = result["seconds"] is None
                base, last = times[0], times[-1]
                ratio = (last / base) if base and last else None
                if ratio is not None:
                    worst[function] = max(worst.get(function, 0.0), ratio)
                cells = "".join(f"{_fmt(t):>12}" for t in times)
                ratio_text = f"{ratio:8.1f}x" if ratio is not None else f"{'-':>9}"
                target = _target(function, args.sizes)
                verdict = "meets" if ratio is not None and ratio <= target else "MISSES"
                print(f"{function:<16}{pattern:<17}{cells}{ratio_text}  {verdict} (<= {target:g}x)  {status}", flush=True)
    finally:
        driver.close()
    print("\nworst ratio per function: " + ", ".join(f"{k} {v:.1f}x" for k, v in worst.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu_flags": cpu_flags(), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
