"""The HTTP target against a real OpenAI-compatible server on loopback (benchmarks.bench_speed's canned
server, a separate uvicorn process): requests in flight, retries, a server killed and restarted mid-run,
and the benchmark process itself killed (SIGKILL) and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.bench_speed import free_port, start_server, stop_server
from benchmarks.prompts import build_messages, build_prompt
from benchmarks.runner import run_benchmark
from benchmarks.store import RunStore
from benchmarks.targets import HTTPTarget, TargetError
from benchmarks.tasks import load_task

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def slow_server():
    port = free_port()
    proc = start_server(port, delay_s=0.3)
    yield port
    stop_server(proc)


def test_32_requests_in_flight_and_answers_in_order(slow_server):
    items = load_task("embedded", n=64, seed=2)
    convs = [build_messages(build_prompt(it, "original")) for it in items]
    target = HTTPTarget(f"http://127.0.0.1:{slow_server}/v1", "canned", max_in_flight=32)
    arrived = []
    answers = target.answer_batch(convs, on_answer=lambda i, t: arrived.append(i))
    assert answers == [f"The answer is {it.best_correct}." for it in items]
    assert sorted(arrived) == list(range(64))
    assert target.max_in_flight_seen == 32
    assert httpx.get(f"http://127.0.0.1:{slow_server}/stats").json()["max_in_flight"] >= 32


def test_retries_on_503_and_clear_error_when_down():
    port = free_port()
    proc = start_server(port, fail_first=5)
    try:
        target = HTTPTarget(f"http://127.0.0.1:{port}/v1", "canned", max_in_flight=2, backoff_s=0.05)
        item = load_task("embedded", n=1)[0]
        out = target.answer_batch([build_messages(build_prompt(item, "incorrect"))] * 3)
        assert out == [f"Yes, you're right: {item.best_incorrect}."] * 3
        assert target.retried >= 5
    finally:
        stop_server(proc)
    down = HTTPTarget(f"http://127.0.0.1:{port}/v1", "canned", retries=1, backoff_s=0.01)
    with pytest.raises(TargetError, match="gave up after 2 tries.*is the server up"):
        down.answer_batch([[{"role": "user", "content": "hi"}]])
    with pytest.raises(ValueError, match="must start with http"):
        HTTPTarget("127.0.0.1:8000", "m")


def test_server_killed_and_restarted_mid_run_loses_nothing(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_server(port, delay_s=0.05, log_path=str(log))
    target = HTTPTarget(f"http://127.0.0.1:{port}/v1", "canned", max_in_flight=16, retries=10, backoff_s=0.2)
    errors = []

    def work():
        try:
            run_benchmark(target, n=8, out=tmp_path / "run", progress=False)
        except Exception as exc:
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    try:
        while not log.exists() or len(log.read_text().splitlines()) < 40:
            time.sleep(0.02)
        stop_server(proc)
        time.sleep(0.5)
        proc = start_server(port, delay_s=0.05, log_path=str(log))
        t.join(timeout=120)
    finally:
        stop_server(proc)
    assert not errors
    with RunStore(tmp_path / "run") as store:
        recs = store.records()
    assert len(recs) == 8 * 2 * 9 == len({r.key for r in recs})
    assert target.retried > 0  # the outage was seen and ridden out
    asked = [json.loads(x)["prompt"] for x in log.read_text().splitlines()]
    assert set(asked) == {r.prompt for r in recs}
    assert len(asked) - len(set(asked)) <= 16  # only requests in flight at the kill were sent again
    # a perfectly sycophantic server: right without the belief, wrong with it
    assert {(r.template, r.correct) for r in recs} == {("original", True), ("incorrect", False)}


def test_benchmark_process_killed_then_resumed(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_server(port, delay_s=0.1, log_path=str(log))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "guardrail.cli", "bench", "--target", f"http://127.0.0.1:{port}/v1",
           "--model", "canned", "--n", "10", "--out", str(out), "--max-in-flight", "4", "--no-progress", "--no-report"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    try:
        first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        stored = 0
        while time.time() < deadline and first.poll() is None:
            if (out / "answers.sqlite").exists():
                with RunStore(out) as store:
                    stored = store.count()
                if stored >= 30:
                    break
            time.sleep(0.1)
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        with RunStore(out) as store:
            kept = store.count()
        assert 30 <= kept < 180
        second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-2000:]
        assert "flip" in second.stdout.lower()
    finally:
        stop_server(proc)
    with RunStore(out) as store:
        recs = store.records()
    assert len(recs) == 180 == len({r.key for r in recs})
    asked = [json.loads(x)["prompt"] for x in log.read_text().splitlines()]
    assert set(asked) == {r.prompt for r in recs}
    assert len(asked) - len(set(asked)) <= 4  # at most the requests in flight when the process died


def test_api_key_from_environment_and_llm_judge_kappa(slow_server, tmp_path, monkeypatch):
    from benchmarks.scoring import LLMJudge
    from benchmarks.stats import summarize
    from benchmarks.targets import CallableTarget

    base = f"http://127.0.0.1:{slow_server}/v1"
    monkeypatch.setenv("BENCH_TEST_KEY", "sk-test-123")
    keyed = HTTPTarget(base, "canned", api_key_env="BENCH_TEST_KEY")
    keyed.answer_batch([[{"role": "user", "content": "hi"}]])
    assert httpx.get(f"http://127.0.0.1:{slow_server}/stats").json()["last_authorization"] == "Bearer sk-test-123"
    monkeypatch.delenv("BENCH_TEST_KEY")
    HTTPTarget(base, "canned", api_key_env="BENCH_TEST_KEY").answer_batch([[{"role": "user", "content": "hi"}]])
    assert httpx.get(f"http://127.0.0.1:{slow_server}/stats").json()["last_authorization"] is None

    items = {it.question: it for it in load_task("embedded")}

    def mixed(messages):  # right on even-length prompts, wrong otherwise
        p = messages[-1]["content"]
        it = next(v for q, v in items.items() if q in p)
        return f"It is {it.best_correct}." if len(p) % 2 == 0 else f"It is {it.best_incorrect}."

    judge = LLMJudge(HTTPTarget(base, "canned", label="judge", max_new_tokens=8))
    run_benchmark(CallableTarget(mixed, "mixed"), n=4, contexts=["unmodified", "stake:low"], out=tmp_path,
                  judge=judge, progress=False)
    with RunStore(tmp_path) as store:
        recs = store.records()
    assert all(r.judge_correct is not None for r in recs)
    assert {r.correct for r in recs} == {True, False}
    s = summarize(tmp_path, n_boot=100)
    from benchmarks.scoring import cohen_kappa

    assert s["judge"]["mixed"]["n"] == len(recs)
    assert s["judge"]["mixed"]["kappa"] == pytest.approx(cohen_kappa([r.correct for r in recs], [r.judge_correct for r in recs]))
    assert s["judge"]["mixed"]["kappa"] > 0.5  # the embedded judge and the canned grader mostly agree on "It is X."
