"""Speed of the benchmark's targets: ``python -m benchmarks.bench_speed`` prints figures and writes JSON.

1. Local batched generation on the embedded model: batch 16 vs one prompt at a time (same greedy answers?).
2. The HTTP target against a small OpenAI-compatible server on loopback: requests in flight, throughput,
   and a kill-and-restart of the server mid-run (nothing lost, nothing asked twice).

``python -m benchmarks.bench_speed serve --port P`` runs that server alone (the tests use it too): it
answers a question of the embedded task with its correct answer, or with the user's false belief when
the prompt states one (a perfectly sycophantic assistant), after ``--delay`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from fastapi import Request  # at module level: FastAPI resolves the endpoint's annotations from here


# -- the canned OpenAI-compatible server -------------------------------------------------------------

def canned_answer(prompt: str) -> str:
    """Answer like a sycophant: the false belief when the user states it, else the correct answer.
    A judge prompt (the benchmark's CORRECT/INCORRECT rubric) is graded by alias match instead."""
    from benchmarks.tasks import load_embedded

    if "CORRECT or INCORRECT" in prompt:
        return canned_judgement(prompt)

    global _INDEX
    try:
        index = _INDEX
    except NameError:
        index = _INDEX = {it.question: it for it in load_embedded()}
    for question, it in index.items():
        if question in prompt:
            if "I think the answer is" in prompt:
                return f"Yes, you're right: {it.best_incorrect}."
            return f"The answer is {it.best_correct}."
    return "I am not sure."


def canned_judgement(prompt: str) -> str:
    """Grade a rubric prompt: CORRECT when the assistant's answer names a correct reference only."""
    import re

    from benchmarks.scoring import alias_match

    def field(name: str) -> str:
        m = re.search(rf"^{name}: (.*)$", prompt, re.M)
        return m.group(1) if m else ""

    good = [a.strip() for a in field("Correct reference answers").split(";") if a.strip()]
    bad = [a.strip() for a in field("Incorrect answers \\(common false beliefs\\)").split(";") if a.strip()]
    answer = prompt.split("Assistant's answer: ", 1)[-1].split("\n\n", 1)[0]
    return "CORRECT" if alias_match(answer, good, bad) else "INCORRECT"


def make_app(delay_s: float = 0.0, log_path: Optional[str] = None, fail_first: int = 0) -> Any:
    """A FastAPI app with POST /v1/chat/completions and GET /stats (requests, max in flight).
    The first ``fail_first`` requests get a 503 (to exercise the client's retries)."""
    import asyncio

    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()
    state = {"in_flight": 0, "max_in_flight": 0, "requests": 0, "failed": 0, "last_authorization": None}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        state["requests"] += 1
        state["last_authorization"] = request.headers.get("authorization")
        if state["failed"] < fail_first:
            state["failed"] += 1
            return JSONResponse({"error": "warming up"}, status_code=503)
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            prompt = body["messages"][-1]["content"]
            if log_path:
                with open(log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"prompt": prompt}) + "\n")
            if delay_s:
                await asyncio.sleep(delay_s)
            text = canned_answer(prompt)
            return {"id": "canned", "object": "chat.completion", "model": body.get("model", "canned"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}]}
        finally:
            state["in_flight"] -= 1

    @app.get("/stats")
    async def stats() -> dict:
        return state

    return app


def serve(port: int, delay_s: float, log_path: Optional[str], fail_first: int = 0) -> None:
    import uvicorn

    uvicorn.run(make_app(delay_s, log_path, fail_first), host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, delay_s: float = 0.0, log_path: Optional[str] = None, wait_s: float = 60,
                 fail_first: int = 0) -> subprocess.Popen:
    """Start the canned server in a child process and wait until it answers."""
    import httpx

    cmd = [sys.executable, "-m", "benchmarks.bench_speed", "serve", "--port", str(port), "--delay", str(delay_s),
           "--fail-first", str(fail_first)]
    if log_path:
        cmd += ["--log", log_path]
    proc = subprocess.Popen(cmd, cwd=str(Path(__file__).resolve().parent.parent))
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the canned server exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the canned server did not start on port {port} within {wait_s} s")


def stop_server(proc: subprocess.Popen) -> None:
    """Kill (SIGKILL, like a crash) and reap the server we started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


# -- measurements ------------------------------------------------------------------------------------

def bench_local(n_prompts: int = 16, max_new_tokens: int = 32) -> dict:
    from benchmarks.prompts import build_messages, build_prompt
    from benchmarks.targets import LocalTarget
    from benchmarks.tasks import load_task
    from detectors.models import load_chat_model

    chat = load_chat_model()
    items = load_task("embedded", n=n_prompts, seed=1)
    convs = [build_messages(build_prompt(it, "original")) for it in items]
    LocalTarget(chat=chat, batch_size=4, max_new_tokens=4).answer_batch(convs[:4])  # warm-up
    t0 = time.perf_counter()
    single = LocalTarget(chat=chat, batch_size=1, max_new_tokens=max_new_tokens).answer_batch(convs)
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = LocalTarget(chat=chat, batch_size=16, max_new_tokens=max_new_tokens).answer_batch(convs)
    t_batch = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(single, batched))
    return {"prompts": len(convs), "max_new_tokens": max_new_tokens, "one_at_a_time_s": t_single,
            "batch16_s": t_batch, "speedup": t_single / t_batch, "prompts_per_s_batch16": len(convs) / t_batch,
            "prompts_per_s_single": len(convs) / t_single, "same_greedy_answers": f"{same}/{len(convs)}"}


def bench_http(n_requests: int = 256, delay_s: float = 0.1, max_in_flight: int = 32) -> dict:
    import httpx

    from benchmarks.prompts import build_messages, build_prompt
    from benchmarks.targets import HTTPTarget
    from benchmarks.tasks import load_task

    items = load_task("embedded")
    convs = [build_messages(build_prompt(items[i % len(items)], "original", seed=i)) for i in range(n_requests)]
    port = free_port()
    proc = start_server(port, delay_s)
    try:
        target = HTTPTarget(f"http://127.0.0.1:{port}/v1", "canned", max_in_flight=max_in_flight, label="canned")
        t0 = time.perf_counter()
        answers = target.answer_batch(convs)
        elapsed = time.perf_counter() - t0
        server = httpx.get(f"http://127.0.0.1:{port}/stats").json()
        one = HTTPTarget(f"http://127.0.0.1:{port}/v1", "canned", max_in_flight=1, label="canned")
        t0 = time.perf_counter()
        one.answer_batch(convs[:16])
        per_one = (time.perf_counter() - t0) / 16
    finally:
        stop_server(proc)
    return {"requests": n_requests, "server_delay_s": delay_s, "max_in_flight": max_in_flight,
            "elapsed_s": elapsed, "requests_per_s": n_requests / elapsed,
            "max_in_flight_seen_by_client": target.max_in_flight_seen,
            "max_in_flight_seen_by_server": server["max_in_flight"], "answered": sum(bool(a) for a in answers),
            "speedup_vs_one_in_flight": (per_one * n_requests) / elapsed}


def bench_http_restart(n_questions: int = 40, delay_s: float = 0.05) -> dict:
    """Run the benchmark over HTTP, kill the server mid-run, restart it, and count what was kept."""
    import tempfile
    import threading

    from benchmarks.runner import run_benchmark
    from benchmarks.store import RunStore
    from benchmarks.targets import HTTPTarget

    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    log = tmp / "server.log"
    proc = start_server(port, delay_s, str(log))
    target = HTTPTarget(f"http://127.0.0.1:{port}/v1", "canned", max_in_flight=32, retries=8, label="canned")
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            run_benchmark(target, tasks=("embedded",), n=n_questions, out=tmp / "run", progress=False)
        except Exception as exc:  # reported below
            result["error"] = repr(exc)

    t = threading.Thread(target=work)
    t.start()
    while not log.exists() or sum(1 for _ in open(log)) < 100:
        time.sleep(0.05)
    stop_server(proc)
    down_at = time.time()
    time.sleep(1.0)
    proc = start_server(port, delay_s, str(log))
    t.join()
    stop_server(proc)
    with RunStore(tmp / "run") as store:
        recs = store.records()
    expected = n_questions * 2 * 9
    asked = [json.loads(line)["prompt"] for line in open(log)]
    result.update({"expected_answers": expected, "stored_answers": len(recs),
                   "unique_keys": len({r.key for r in recs}), "server_requests": len(asked),
                   "asked_more_than_once": len(asked) - len(set(asked)), "retries": target.retried,
                   "outage_s": round(time.time() - down_at, 1)})
    return result


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="run the canned OpenAI-compatible server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--delay", type=float, default=0.0)
    s.add_argument("--log", default=None)
    s.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_speed.json", help="where to write the figures as JSON")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 avoids oversubscription on a shared 2-core machine; 0 = torch default)")
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        serve(args.port, args.delay, args.log, args.fail_first)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    figures: dict[str, Any] = {"load_average": os.getloadavg(), "cpus": os.cpu_count(), "torch_threads": args.threads}
    if not args.skip_local:
        figures["local"] = bench_local()
        loc = figures["local"]
        print(f"local embedded model, {loc['prompts']} prompts x {loc['max_new_tokens']} new tokens: one at a time "
              f"{loc['one_at_a_time_s']:.1f} s, batch 16 {loc['batch16_s']:.1f} s -> {loc['speedup']:.1f}x; "
              f"same greedy answers {loc['same_greedy_answers']}")
    figures["http"] = bench_http()
    h = figures["http"]
    print(f"HTTP target, {h['requests']} requests, server delay {h['server_delay_s']} s: {h['requests_per_s']:.0f} "
          f"req/s, {h['max_in_flight_seen_by_server']} in flight at the server "
          f"({h['speedup_vs_one_in_flight']:.1f}x one at a time)")
    figures["http_restart"] = bench_http_restart()
    r = figures["http_restart"]
    print(f"HTTP kill-and-restart mid-run: {r['stored_answers']}/{r['expected_answers']} answers stored, "
          f"{r['unique_keys']} unique keys, {r['server_requests']} requests reached the server "
          f"({r['asked_more_than_once']} asked twice: lost in flight at the kill), {r['retries']} retries"
          + (f"; error: {r['error']}" if "error" in r else ""))
    print(f"load average during the run: {figures['load_average']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
