"""Issue 11: the proxy against hostile input and a misbehaving upstream, on loopback (a real uvicorn proxy
in this process, the real guard, the fake upstream of benchmarks/fake_upstream.py).

Each attack of the issue has an assertion here: unchecked output (n > 1, tool calls, content parts, oversized
text, huge upstream answers), leaking secrets (health, error bodies, upstream bodies, audit digests, error
text), malformed input (deep nesting, NaN, lone surrogates, bad history), upstream NaN / slow drip /
Retry-After, and the operator features (config, readiness, access log, metrics, models)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fake_upstream import (BENIGN, PLANTED_DB, PLANTED_KEY, SYCOPHANTIC, ServerThread, upstream_app)
from guardrail.audit import AuditLog, key_path_for, read_audit

KEY = "client-token-5b1e"
URL_PASSWORD = "url-pw-planted-91c2"
SAD_FALSE = ("I've been crying all week since my dog died. What's the capital of Australia? "
             "I'm pretty sure it's Sydney.")
SECRETS = (PLANTED_KEY, PLANTED_DB, "db-planted-pw", URL_PASSWORD, "Traceback", "sqlalchemy")


@pytest.fixture(scope="module")
def guard():
    from guardrail import Guard

    return Guard().warmup()


@pytest.fixture(scope="module")
def upstream():
    server = ServerThread(upstream_app())
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(guard, upstream, tmp_path_factory):
    from guardrail.proxy import create_app
    from guardrail.proxy_config import LimitsConfig

    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    base = upstream.url.replace("http://", f"http://operator:{URL_PASSWORD}@") + "/v1"
    app = create_app(base, guard, api_key=KEY, upstream_api_key=PLANTED_KEY, audit_path=str(audit),
                     upstream_timeout_s=1.5, limits=LimitsConfig(max_body_bytes=600_000))
    server = ServerThread(app, ready_path="/healthz")
    server.audit, server.upstream = audit, upstream
    yield server
    server.close()


def post(server, body=None, path="/v1/chat/completions", key=KEY, content=None, headers=None):
    h = {"Authorization": f"Bearer {key}"} if key else {}
    h.update(headers or {})
    if content is not None:
        h.setdefault("Content-Type", "application/json")
        r = httpx.post(server.url + path, content=content, headers=h, timeout=30)
    else:
        r = httpx.post(server.url + path, json=body, headers=h, timeout=30)
    assert_no_secret(r)
    return r


def get(server, path, key=KEY):
    r = httpx.get(server.url + path, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=30)
    assert_no_secret(r)
    return r


def assert_no_secret(r: httpx.Response) -> None:
    blob = r.text + json.dumps(dict(r.headers))
    for secret in SECRETS:
        assert secret not in blob, (secret, r.status_code)
    assert r.status_code != 500 and r.headers.get("content-type", "").startswith(("application/json", "text/event-stream", "text/plain; version"))


def chat(model="ok", content=SAD_FALSE, **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def audit_ids(server) -> list[str]:
    return [rec["request_id"] for rec in read_audit(server.audit)]


def openai_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "code"}
    return error["message"]


# ------------------------------------------------------------------------------------- unchecked output
def test_every_choice_is_checked_when_n_is_above_one(proxy):
    r = post(proxy, chat(model="n", n=3))
    assert r.status_code == 200
    body = r.json()
    checked = body["guardrail"]["checked"]
    assert [(c["choice"], c["part"]) for c in checked] == [(0, "content"), (1, "content"), (2, "content")]
    assert body["choices"][0]["message"]["content"] == BENIGN
    for choice in body["choices"][1:]:
        assert choice["message"]["content"] != SYCOPHANTIC and "Canberra" in choice["message"]["content"]
    assert r.headers["x-guardrail-action"] == "revise"


def test_stream_true_streams_every_checked_choice(proxy):
    with httpx.stream("POST", proxy.url + "/v1/chat/completions", json=chat(model="n", n=2, stream=True),
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as r:
        assert r.status_code == 200 and r.headers["x-guardrail-action"] == "revise"
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    texts = {i: "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"][0]["index"] == i)
             for i in (0, 1)}
    assert texts[0] == BENIGN and "Canberra" in texts[1] and SYCOPHANTIC not in texts[1]
    assert len(chunks[0]["guardrail"]["checked"]) == 2


def test_tool_call_arguments_are_checked_and_a_sycophantic_call_is_withheld(proxy):
    r = post(proxy, chat(model="tools"))
    assert r.status_code == 200
    body = r.json()
    assert body["guardrail"]["checked"] == [{"choice": 0, "part": "tool_call", "tool_call": 0,
                                             "action": "revise", "status": "ok", "risk": body["guardrail"]["checked"][0]["risk"]}]
    message = body["choices"][0]["message"]
    assert "tool_calls" not in message and "Canberra" in message["content"]
    assert body["choices"][0]["finish_reason"] == "stop"


def test_user_content_parts_are_read_not_treated_as_empty(proxy):
    first, rest = SAD_FALSE.split(". ", 1)
    parts = [{"type": "text", "text": first + "."}, {"type": "image_url", "image_url": {"url": "data:,"}},
             {"type": "text", "text": rest}]
    r = post(proxy, chat(content=parts))
    assert r.status_code == 200 and r.json()["guardrail"]["action"] == "revise"
    r = post(proxy, chat(content=[{"type": "text", "text": 5}]))
    assert "text must be a string" in openai_error(r, 422)


def test_upstream_content_parts_are_checked(proxy):
    r = post(proxy, chat(model="parts"))
    assert r.status_code == 200 and r.json()["guardrail"]["action"] == "revise"
    assert "Canberra" in r.json()["choices"][0]["message"]["content"]


def test_oversized_text_and_bodies_are_refused_not_passed(proxy):
    seen = proxy.upstream.app.state.seen
    r = post(proxy, chat(content="I think it's Sydney. " + "word " * 50_000))  # 250k chars, under the body limit
    assert "over the guard's limit" in openai_error(r, 413)
    r = post(proxy, content=b'{"messages": [' + b'{"role": "user", "content": "x"},' * 40_000 + b"]}")
    assert "max_body_bytes" in openai_error(r, 413)

    def chunks():  # no Content-Length: the limit holds while streaming
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"a" * 10_000
        yield b'"}]}'
    r = httpx.post(proxy.url + "/v1/chat/completions", content=chunks(),
                   headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}, timeout=30)
    assert_no_secret(r)
    assert "max_body_bytes" in openai_error(r, 413)
    assert proxy.upstream.app.state.seen == seen  # nothing was forwarded
    assert "cannot be checked" in openai_error(post(proxy, chat(model="long")), 502)
    assert "max_response_bytes" in openai_error(post(proxy, chat(model="huge")), 502)


# ------------------------------------------------------------------------------------- secrets
def test_healthz_reveals_nothing_and_readyz_checks_the_upstream(proxy):
    r = get(proxy, "/healthz", key=None)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = get(proxy, "/readyz", key=None)
    assert r.status_code == 200 and r.json() == {"status": "ready", "checks": {"guard": "ok", "upstream": "ok"}}
    proxy.upstream.app.state.models_status = 503
    try:
        r = get(proxy, "/readyz", key=None)
        assert r.status_code == 503 and r.json()["checks"]["upstream"] == "http_503"
    finally:
        proxy.upstream.app.state.models_status = 200
    for r in (get(proxy, "/healthz", key=None), get(proxy, "/readyz", key=None)):
        assert str(proxy.upstream.port) not in r.text and "audit" not in r.text


def test_upstream_error_bodies_are_never_relayed(proxy):
    message = openai_error(post(proxy, chat(model="error500")), 502)
    assert "HTTP 500" in message
    r = post(proxy, chat(model="error400"))
    openai_error(r, 400)
    assert r.json()["error"]["type"] == "invalid_request_error" and r.json()["error"]["code"] == 400
    for model, status in (("die", 502), ("slow", 504), ("malformed", 502), ("notjson", 502), ("drip", 504)):
        r = post(proxy, chat(model=model))
        openai_error(r, status)
        assert str(proxy.upstream.port) not in r.text and "127.0.0.1" not in r.text and "operator" not in r.text


def test_retry_after_is_passed_through_for_429_and_503(proxy):
    r = post(proxy, chat(model="ratelimit"))
    openai_error(r, 429)
    assert r.headers["retry-after"] == "17" and r.json()["error"]["code"] == "rate_limit_exceeded"
    r = post(proxy, chat(model="unavailable"))
    openai_error(r, 503)
    assert r.headers["retry-after"] == "9"


def test_audit_digests_are_keyed_with_a_private_key_beside_the_log(proxy):
    r = post(proxy, chat(model="ok"))
    record = next(rec for rec in read_audit(proxy.audit) if rec["request_id"] == r.json()["guardrail"]["request_id"])
    key_file = key_path_for(proxy.audit)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    assert record["digest"] == "hmac-sha256"
    assert record["user_digest"] == hmac.new(key, SAD_FALSE.encode(), hashlib.sha256).hexdigest()
    assert record["user_digest"][:16] != hashlib.sha256(SAD_FALSE.encode()).hexdigest()[:16]
    unkeyed_claims = {hashlib.sha256(c.encode()).hexdigest()[:16] for c in ("It is Sydney.", "it's Sydney")}
    for finding in record["verdict"]["beliefs"]:
        assert finding["claim"] is None and finding["claim_digest"] not in unkeyed_claims
    with AuditLog(proxy.audit) as again:  # a restart keeps the key: digests still match
        assert again.digest(SAD_FALSE) == record["user_digest"]


def test_redacted_verdict_and_audit_drop_a_detectors_error_text(guard, tmp_path):
    from guardrail import Guard

    class LeakyEmotion:
        def predict(self, texts, histories=None):
            raise RuntimeError("could not reach db with password=hunter2")

    leaky = Guard(detectors={"emotion": LeakyEmotion(), "stance": guard.detectors.stance})
    v = leaky.check(SAD_FALSE, SYCOPHANTIC)
    assert v.status == "error" and "hunter2" not in (v.error or "")  # the guard never copies exception text
    assert v.redacted().error == "RuntimeError"
    from fastapi.testclient import TestClient

    from guardrail.proxy import create_app

    with TestClient(create_app(None, leaky, warmup=False)) as client:
        r = client.post("/v1/guard/check", json={"user_message": SAD_FALSE, "draft": SYCOPHANTIC})
    assert r.status_code == 200 and r.json()["status"] == "error" and r.json()["error"] == "RuntimeError"
    assert "hunter2" not in r.text
    with AuditLog(tmp_path / "a.jsonl") as log:
        log.record_verdict(v, request_id="r1", endpoint="/v1/guard/check", user_message=SAD_FALSE, draft=SYCOPHANTIC)
    text = (tmp_path / "a.jsonl").read_text()
    assert "hunter2" not in text and "RuntimeError" in text and "Sydney" not in text


# ------------------------------------------------------------------------------------- malformed input
@pytest.mark.parametrize("raw, needle", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"messages": ' + b"[" * 70 + b"]" * 70 + b"}", "nested too deeply"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "NaN"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": Infinity}', "NaN"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}', "finite"),
    (b'{"messages": [{"role": "user", "content": "I think \\ud800 it is Sydney"}]}', "surrogate"),
    (b"{not json", "not valid JSON"),
    (b'{"messages": "\xff"}', "UTF-8"),
])
def test_malformed_json_is_a_400_in_the_openai_shape(proxy, raw, needle):
    assert needle in openai_error(post(proxy, content=raw), 400)
    assert needle in openai_error(post(proxy, path="/v1/guard/check", content=raw), 400)


@pytest.mark.parametrize("body, needle", [
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ({"messages": [{"role": "user", "content": 12}]}, "content"),
    ({"messages": [{"role": "user", "content": {"text": "hi"}}]}, "content"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 10_000}, "n:"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream"),
    ({"messages": [{"role": "system", "content": "be nice"}]}, "no user turn"),
    ([1, 2, 3], "JSON object"),
])
def test_malformed_chat_requests_are_a_422(proxy, body, needle):
    assert needle in openai_error(post(proxy, body), 422)


@pytest.mark.parametrize("history, status", [
    ([{"role": "user", "content": 5}], 422),
    ([{"role": "user", "content": [1, 2]}], 422),
    ([{"role": "user", "content": [{"type": "text", "text": "I lost my job."}]}], 200),
    ([{"role": "user"}], 200),
    ("not a list", 422),
    ([{"role": 7, "content": "x"}], 422),
])
def test_guard_check_history_of_any_type_is_never_a_500(proxy, history, status):
    r = post(proxy, {"user_message": SAD_FALSE, "draft": SYCOPHANTIC, "history": history}, path="/v1/guard/check")
    assert r.status_code == status, r.text
    if status == 422:
        assert "history" in r.json()["error"]["message"]


def test_upstream_nan_is_a_502_and_writes_no_audit_record(proxy):
    before = audit_ids(proxy)
    assert "malformed" in openai_error(post(proxy, chat(model="nan")), 502)
    assert "malformed" in openai_error(post(proxy, chat(model="deep")), 502)
    assert audit_ids(proxy) == before


def test_upstream_lone_surrogate_is_cleaned_and_checked(proxy):
    r = post(proxy, chat(model="surrogate"))
    assert r.status_code == 200 and r.json()["guardrail"]["checked"][0]["status"] == "ok"


def test_unknown_paths_and_methods_answer_in_the_openai_shape(proxy):
    r = httpx.get(proxy.url + "/v1/../../etc/passwd", timeout=10)
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.get(proxy.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert r.status_code == 405 and "error" in r.json()


# ------------------------------------------------------------------------------------- operator features
def test_models_are_passed_through(proxy):
    r = get(proxy, "/v1/models")
    assert r.status_code == 200 and r.json()["data"][0]["id"] == "fake"
    assert get(proxy, "/v1/models", key="wrong").status_code == 401


def test_metrics_use_prometheus_client_with_stage_histograms_and_bounded_labels(proxy):
    post(proxy, chat())
    for n in range(300):
        httpx.get(f"{proxy.url}/random/{n}/path-{n * 7919}", timeout=10)
    r = get(proxy, "/metrics")
    assert r.status_code == 200
    text = r.text
    assert 'guardrail_stage_seconds_bucket{le="0.01",stage="emotion"}' in text or \
           'guardrail_stage_seconds_bucket{stage="emotion",le="0.01"}' in text
    assert 'guardrail_verdicts_total{action="revise",status="ok"}' in text
    series = [line for line in text.splitlines() if line.startswith("guardrail_requests_total{")]
    assert len(series) < 40, series
    assert "random" not in text and "path-" not in text
    routes = {line.split('route="')[1].split('"')[0] for line in series}
    assert routes <= {"/v1/chat/completions", "/v1/guard/check", "/v1/models", "/healthz", "/readyz", "/metrics", "other"}


def test_access_log_is_json_with_route_templates_and_no_text(proxy):
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger("guardrail.access")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        post(proxy, chat())
        httpx.get(proxy.url + "/secret/I-think-its-Sydney", timeout=10)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    records = [json.loads(line) for line in lines]
    chat_rec = next(r for r in records if r["route"] == "/v1/chat/completions")
    assert chat_rec["method"] == "POST" and chat_rec["status"] == 200 and chat_rec["action"] == "revise"
    assert isinstance(chat_rec["latency_ms"], float) and len(chat_rec["request_id"]) == 32
    assert any(r["route"] == "other" and r["status"] == 404 for r in records)
    assert "Sydney" not in "".join(lines) and "dog" not in "".join(lines)


def test_config_file_with_flags_overriding(tmp_path):
    from guardrail.proxy_config import ConfigError, ProxyConfig

    (tmp_path / "policy.yaml").write_text("risk_threshold: 0.6\n")
    path = tmp_path / "proxy.yaml"
    path.write_text("upstream: {url: 'http://127.0.0.1:9/v1', timeout_s: 5}\nserver: {port: 9000, log_level: debug}\n"
                    "policy: policy.yaml\naudit: {path: runs/a.jsonl}\nlimits: {max_body_bytes: 50000}\n")
    cfg = ProxyConfig.load(path)
    assert cfg.upstream.timeout_s == 5 and cfg.limits.max_body_bytes == 50_000 and cfg.server.port == 9000
    assert cfg.load_policy().risk_threshold == 0.6  # relative to the config file
    over = cfg.merged({"upstream.timeout_s": 2.0, "server.port": None, "server.log_level": "warning"})
    assert over.upstream.timeout_s == 2.0 and over.server.port == 9000 and over.server.log_level == "warning"
    path.write_text("upstream: {url: x, timeout: 5}\n")
    with pytest.raises(ConfigError, match="upstream.timeout"):
        ProxyConfig.load(path)
    with pytest.raises(ConfigError, match="does not exist"):
        ProxyConfig.load(tmp_path / "nope.yaml")


def test_serve_refuses_a_bad_config_with_a_clear_message(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("limits: {max_body_bytes: -1}\n")
    out = subprocess.run([sys.executable, "-m", "guardrail.commands", "serve", "--config", str(bad)],
                         capture_output=True, text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 2 and "limits.max_body_bytes" in out.stderr
    out = subprocess.run([sys.executable, "-m", "guardrail.commands", "serve"], capture_output=True, text=True,
                         timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 2 and "--upstream" in out.stderr


# ------------------------------------------------------------------------------------- generated bodies
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                     | st.text(max_size=40), lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                     max_leaves=12)
_message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "x", 3]),
                                  "content": _json | st.text(max_size=200)})
_chat = st.fixed_dictionaries({"messages": st.lists(_message, max_size=3) | _json},
                              optional={"model": st.sampled_from(["ok", "benign", "n", "tools", "parts", "null"]) | _json,
                                        "n": st.integers(-2, 4) | _json, "stream": st.booleans() | _json})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=_chat | _json)
def test_generated_bodies_never_get_a_500_or_leak(proxy, body):
    r = post(proxy, body)
    assert r.status_code in (200, 400, 413, 422, 502), r.text
    if r.status_code == 200 and r.headers.get("content-type", "").startswith("text/event-stream"):
        assert '"guardrail"' in r.text  # a streamed reply carries its verdict too
    elif r.status_code == 200 and isinstance(body.get("messages") if isinstance(body, dict) else None, list):
        checked = r.json()["guardrail"]["checked"]
        assert len(checked) >= len(r.json()["choices"])


def test_serve_with_a_config_file_flags_override_and_logs_hold_no_secret(upstream, tmp_path):
    """The real command: config file + overriding flags, JSON log lines on stderr, nothing secret in them."""
    import signal
    import subprocess
    import sys
    import time

    from benchmarks.fake_upstream import free_port

    port = free_port()
    config = tmp_path / "proxy.yaml"
    config.write_text(f"upstream: {{url: 'http://operator:{URL_PASSWORD}@127.0.0.1:{upstream.port}/v1', timeout_s: 5}}\n"
                      f"server: {{port: 9, log_level: error}}\naudit: {{path: '{tmp_path / 'audit.jsonl'}'}}\n")
    log_path = tmp_path / "stderr.log"
    env = {**os.environ, "GUARDRAIL_API_KEY": KEY, "UPSTREAM_API_KEY": PLANTED_KEY}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "guardrail.commands", "serve", "--config", str(config),
                                 "--port", str(port), "--log-level", "info"], env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.25)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(), timeout=60,
                       headers={"Authorization": f"Bearer {KEY}"})
        assert_no_secret(r)
        assert r.status_code == 200 and r.json()["guardrail"]["action"] == "revise"
        assert_no_secret(httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(model="error400"),
                                    timeout=60, headers={"Authorization": f"Bearer {KEY}"}))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log_path.read_text()
    for secret in SECRETS + (KEY,):
        assert secret not in text, secret
    assert f"127.0.0.1:{upstream.port}/v1" in text  # the start-up line names the upstream without credentials
    access = [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"route"' in line]
    assert {(a["route"], a["status"]) for a in access} >= {("/v1/chat/completions", 200), ("/v1/chat/completions", 400)}
    assert "Sydney" not in text
