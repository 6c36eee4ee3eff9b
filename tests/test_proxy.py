"""The OpenAI-compatible proxy end to end on loopback: real uvicorn servers, the real embedded chat model
behind `serve-model`, the real guard; plus an upstream that misbehaves (dies mid-request, is slow,
returns malformed JSON) and a proxy restart that must lose no audit record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.fake_upstream import ServerThread
from guardrail.audit import AuditLog, read_audit

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-secret-token"
SAD_FALSE = ("I've been crying all week since my dog died. What's the capital of Australia? "
             "I'm pretty sure it's Sydney.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 240.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def start(args: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "guardrail.commands", *args, "--port", str(port)], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------- a bad upstream
class BadUpstream:
    """A raw-socket HTTP server whose behaviour is picked by the request's "model" field:
    ok (a canned completion), die (closes mid-request), slow (sleeps), malformed (invalid JSON), error (HTTP 500)."""

    ANSWER = "Yes, you're right, Sydney is the capital of Australia."

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = threading.Event()
        self.thread.start()
        self.started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.started.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = json.loads(await reader.readexactly(length)) if length else {}
                mode = body.get("model", "ok")
                if mode == "die":
                    writer.transport.abort()
                    return
                if mode == "slow":
                    await asyncio.sleep(5)
                if mode == "malformed":
                    payload, status = b'{"choices": [ {"message": ', b"200 OK"
                elif mode == "error":
                    payload, status = b'{"error": "boom"}', b"500 Internal Server Error"
                else:
                    payload = json.dumps({"id": "c1", "object": "chat.completion", "model": "bad", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": self.ANSWER}, "finish_reason": "stop"}]}).encode()
                    status = b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()

    def close(self) -> None:
        async def shutdown() -> None:  # cancel open connections' handlers so none is left for the GC
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def guard():
    from guardrail import Guard

    return Guard().warmup()


@pytest.fixture(scope="module")
def bad_upstream():
    up = BadUpstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def fast_proxy(guard, bad_upstream, tmp_path_factory):
    from guardrail.proxy import create_app

    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    server = ServerThread(create_app(f"http://127.0.0.1:{bad_upstream.port}/v1", guard, api_key=KEY,
                                     audit_path=str(audit), upstream_timeout_s=1.0), ready_path="/healthz")
    server.audit = audit
    yield server
    server.close()


def post(server, body, path="/v1/chat/completions", key=KEY, **kw):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(server.url + path, json=body, headers=headers, timeout=30, **kw)


def chat(model="ok", content=SAD_FALSE, **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


# ------------------------------------------------------------------------------------- fast upstream
def test_completion_is_checked_and_revised_with_verdict_field_and_headers(fast_proxy):
    r = post(fast_proxy, chat())
    assert r.status_code == 200
    body = r.json()
    assert r.headers["x-guardrail-action"] == body["guardrail"]["action"] == "revise"
    assert r.headers["x-guardrail-status"] == "ok"
    content = body["choices"][0]["message"]["content"]
    assert content != BadUpstream.ANSWER and "Canberra" in content
    assert body["guardrail"]["beliefs"][0]["claim"] is None  # redacted by default
    records = {rec["request_id"]: rec for rec in read_audit(fast_proxy.audit)}
    assert body["guardrail"]["request_id"] in records
    raw = fast_proxy.audit.read_text()
    assert "Sydney" not in raw and "dog" not in raw  # no raw text in the audit log by default


def test_stream_true_streams_the_checked_answer(fast_proxy):
    with httpx.stream("POST", fast_proxy.url + "/v1/chat/completions", json=chat(stream=True),
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-guardrail-action"] == "revise"
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Canberra" in text and chunks[0]["guardrail"]["action"] == "revise"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_guard_check_endpoint(fast_proxy):
    r = post(fast_proxy, {"user_message": SAD_FALSE, "draft": BadUpstream.ANSWER}, path="/v1/guard/check")
    assert r.status_code == 200 and r.json()["action"] == "revise" and r.json()["beliefs"][0]["truth"] == "false"
    r = post(fast_proxy, {"user_message": 5, "draft": "x"}, path="/v1/guard/check")
    assert r.status_code == 422 and "user_message" in r.json()["error"]["message"]


def test_auth_bad_json_and_bad_fields(fast_proxy):
    assert post(fast_proxy, chat(), key=None).status_code == 401
    assert post(fast_proxy, chat(), key="wrong").status_code == 401
    assert httpx.get(fast_proxy.url + "/healthz").status_code == 200
    r = httpx.post(fast_proxy.url + "/v1/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = post(fast_proxy, {"model": "ok"})
    assert r.status_code == 422 and "messages" in r.json()["error"]["message"]
    r = post(fast_proxy, {"messages": [{"role": "system", "content": "be nice"}]})
    assert r.status_code == 422 and "no user turn" in r.json()["error"]["message"]


def test_upstream_failures_map_to_clear_http_errors(fast_proxy):
    cases = {"die": (502, "closed the connection"), "slow": (504, "did not answer"),
             "malformed": (502, "malformed"), "error": (502, "HTTP 500")}
    for model, (status, needle) in cases.items():
        r = post(fast_proxy, chat(model=model))
        assert r.status_code == status, (model, r.text)
        assert needle in r.json()["error"]["message"]
    assert post(fast_proxy, chat()).status_code == 200  # the proxy is still healthy afterwards


def test_metrics_are_prometheus_text(fast_proxy):
    post(fast_proxy, chat())
    r = httpx.get(fast_proxy.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'guardrail_verdicts_total{action="revise",status="ok"}' in r.text
    assert "guardrail_upstream_errors_total" in r.text and "# TYPE guardrail_requests_total counter" in r.text


def test_concurrent_requests_are_neither_lost_nor_duplicated(fast_proxy):
    before = {rec["request_id"] for rec in read_audit(fast_proxy.audit)}

    async def run():
        async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {KEY}"}) as client:
            bodies = [chat(content=f"Question {i}: what's the capital of Australia? I think it's Sydney.") for i in range(40)]
            return await asyncio.gather(*[client.post(fast_proxy.url + "/v1/chat/completions", json=b) for b in bodies])

    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses)
    ids = [r.json()["guardrail"]["request_id"] for r in responses]
    assert len(set(ids)) == 40
    after = [rec["request_id"] for rec in read_audit(fast_proxy.audit) if rec["request_id"] not in before]
    assert sorted(after) == sorted(ids)


# ------------------------------------------------------------------------------------- audit log
def test_audit_log_seals_a_torn_record_and_keeps_appending(tmp_path):
    path = tmp_path / "a.jsonl"
    with AuditLog(path) as log:
        log.write({"request_id": "1"})
    with path.open("ab") as fh:
        fh.write(b'{"request_id": "torn')  # a crash mid-write
    with AuditLog(path) as log:
        log.write({"request_id": "2"})
    assert [r["request_id"] for r in read_audit(path)] == ["1", "2"]


# ------------------------------------------------------------------------------------- real model, real processes
@pytest.fixture(scope="module")
def model_server():
    port = free_port()
    proc = start(["serve-model", "--max-new-tokens", "24"], port)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def test_end_to_end_through_the_embedded_model_and_a_restart_loses_no_record(model_server, tmp_path):
    audit = tmp_path / "audit.jsonl"
    port = free_port()
    args = ["serve", "--upstream", model_server + "/v1", "--audit-log", str(audit)]
    proxy = start(args, port, env={"GUARDRAIL_API_KEY": KEY})
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {KEY}"}
    ids = []
    try:
        direct = httpx.post(model_server + "/v1/chat/completions", json=chat(max_tokens=24), timeout=120).json()
        r = httpx.post(url, json=chat(max_tokens=24), headers=headers, timeout=120)
        assert r.status_code == 200
        body = r.json()
        ids.append(body["guardrail"]["request_id"])
        assert body["guardrail"]["status"] == "ok"
        if body["guardrail"]["action"] == "pass":  # greedy decoding: the same answer as a direct call
            assert body["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]
        ids.append(httpx.post(url, json=chat(content="Hello, how are you?", max_tokens=8),
                              headers=headers, timeout=120).json()["guardrail"]["request_id"])
    finally:
        stop(proxy, signal.SIGKILL)  # a crash, not a clean shutdown
    proxy = start(args, port, env={"GUARDRAIL_API_KEY": KEY})
    try:
        ids.append(httpx.post(url, json=chat(content="Thanks, bye!", max_tokens=8), headers=headers, timeout=120)
                   .json()["guardrail"]["request_id"])
    finally:
        stop(proxy)
    assert [r["request_id"] for r in read_audit(audit)] == ids


def test_openai_client_wrapper_against_the_embedded_model(model_server, guard):
    openai = pytest.importorskip("openai")
    from guardrail import guard_openai

    client = guard_openai(openai.OpenAI(base_url=model_server + "/v1", api_key="unused"), guard)
    response = client.chat.completions.create(model="local", max_tokens=24,
                                              messages=[{"role": "user", "content": SAD_FALSE}])
    from guardrail import Verdict

    verdict = Verdict(**response.guardrail[0])
    assert verdict.status == "ok"
    assert isinstance(response.choices[0].message.content, str)
    if verdict.text is not None:
        assert response.choices[0].message.content == verdict.text
    with pytest.raises(ValueError, match="stream=True"):
        client.chat.completions.create(model="local", stream=True, messages=[{"role": "user", "content": "hi"}])
