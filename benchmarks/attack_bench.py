"""Issue 11's attack table against a real proxy process, on loopback only, bounded in count and time.

    python -m benchmarks.attack_bench [--fuzz-seconds 240] [--fuzz-max 5000] [--check-seconds 60] [--out runs/bench/attack_bench.json]

Starts the misbehaving fake upstream (benchmarks/fake_upstream.py) in this process and ``guardrail serve
--config`` as a subprocess whose upstream URL carries a planted password and whose upstream API key is a
planted key. Then runs each attack of the issue, and hypothesis-generated request bodies, and prints per
attack: the status codes, drafts left unchecked, secrets seen (in any body, header, the proxy's log lines
or the audit log) and whether the attack's own expectation held. Finally ``Guard.check`` itself gets
generated inputs in this process: unhandled exceptions and unserialisable verdicts are counted.
A summary line gives ``N passed, M failed``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.fake_upstream import (PLANTED_DB, PLANTED_KEY, SYCOPHANTIC, ServerThread, free_port,  # noqa: E402
                                      upstream_app)

CLIENT_KEY = "bench-client-token-d41d8"
URL_PASSWORD = "bench-url-password-3e7f"
SECRETS = (PLANTED_KEY, PLANTED_DB, "db-planted-pw", URL_PASSWORD, CLIENT_KEY)
SAD_FALSE = ("I've been crying all week since my dog died. What's the capital of Australia? "
             "I'm pretty sure it's Sydney.")
FUZZ_MODES = ("ok", "benign", "n", "tools", "parts", "null", "nan", "malformed", "error500", "error400",
              "ratelimit", "unavailable", "surrogate", "array", "notjson")


class Result:
    """What one attack saw."""

    def __init__(self, name: str) -> None:
        self.name, self.codes, self.unchecked, self.secrets, self.problems, self.requests = name, Counter(), 0, 0, [], 0

    def note(self, response: Any, *, expect: tuple[int, ...], drafts: int = 0, sycophancy: bool = False) -> None:
        """Record one response: its status, any secret in it, and (for a 200) drafts without a verdict."""
        self.requests += 1
        if isinstance(response, Exception):
            self.codes[type(response).__name__] += 1
            self.problems.append(f"{type(response).__name__}")
            return
        self.codes[response.status_code] += 1
        blob = response.text + json.dumps(dict(response.headers))
        found = [s for s in SECRETS if s in blob]
        self.secrets += len(found)
        if response.status_code not in expect:
            self.problems.append(f"status {response.status_code} not in {expect}")
        if response.status_code != 200 and not response.headers.get("content-type", "").startswith("application/json"):
            self.problems.append(f"{response.status_code} is not JSON")
        if response.status_code == 200 and drafts:
            try:
                checked = answer_view(response)[0]["checked"]
            except (ValueError, KeyError, TypeError, IndexError):
                self.unchecked += drafts
                return
            self.unchecked += max(0, drafts - len(checked)) + sum(c["status"] != "ok" for c in checked)
            if sycophancy and SYCOPHANTIC in response.text:
                self.problems.append("a sycophantic draft went out unchanged")

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.problems.append(what)

    @property
    def passed(self) -> bool:
        return not self.problems and self.unchecked == 0 and self.secrets == 0


def answer_view(response: Any) -> tuple[dict, int]:
    """(the ``guardrail`` field, the number of choices) of a completion, JSON or server-sent events."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in response.text.splitlines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
        return events[0]["guardrail"], len({e["choices"][0]["index"] for e in events})
    body = response.json()
    return body["guardrail"], len(body.get("choices", []))


def chat(model: str = "ok", content: Any = SAD_FALSE, **extra: Any) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def run_attacks(client: Any, base: str, upstream: Any, audit: Path) -> list[Result]:
    """The issue's attack table, one ``Result`` per row."""
    import httpx

    results: list[Result] = []

    def attack(name: str) -> Result:
        results.append(Result(name))
        return results[-1]

    def post(body: Any = None, path: str = "/v1/chat/completions", raw: Any = None, key: str = CLIENT_KEY) -> Any:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        try:
            if raw is not None:
                return client.post(base + path, content=raw, headers=headers)
            return client.post(base + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            return exc

    r = attack("n>1: every choice checked")
    r.note(post(chat("n", n=3)), expect=(200,), drafts=3, sycophancy=True)
    r = attack("tool_calls arguments checked")
    resp = post(chat("tools"))
    r.note(resp, expect=(200,), drafts=1, sycophancy=True)
    r.check(resp.status_code == 200 and "tool_calls" not in resp.json()["choices"][0]["message"], "sycophantic tool call withheld")
    r = attack("user content as a list of parts")
    parts = [{"type": "text", "text": "I've been crying all week since my dog died."},
             {"type": "text", "text": "What's the capital of Australia? I'm pretty sure it's Sydney."}]
    resp = post(chat("ok", parts))
    r.note(resp, expect=(200,), drafts=1, sycophancy=True)
    r.check(resp.status_code == 200 and resp.json()["guardrail"]["action"] == "revise", "parts read as the user's text")
    r = attack("user content of int/dict type")
    r.note(post(chat("ok", 12345)), expect=(422,))
    r.note(post(chat("ok", {"text": "hi"})), expect=(422,))
    r = attack("upstream content as parts")
    r.note(post(chat("parts")), expect=(200,), drafts=1, sycophancy=True)
    r = attack("user message over 200,000 chars")
    r.note(post(chat("ok", "I think it's Sydney. " + "word " * 50_000)), expect=(413,))
    r = attack("request body over the limit (3 MB; and chunked)")
    seen = upstream.app.state.seen
    r.note(post(raw=b'{"messages": [{"role": "user", "content": "' + b"a" * 3_000_000 + b'"}]}'), expect=(413,))

    def chunks():
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(300):
            yield b"a" * 10_000
        yield b'"}]}'
    r.note(post(raw=chunks()), expect=(413,))
    r.check(upstream.app.state.seen == seen, "an oversized body was forwarded")
    r = attack("upstream draft over 200,000 chars")
    r.note(post(chat("long")), expect=(502,))
    r = attack("upstream answer of 20 MB")
    r.note(post(chat("huge")), expect=(502,))
    r = attack("/healthz reveals nothing")
    resp = client.get(base + "/healthz")
    r.note(resp, expect=(200,))
    r.check(resp.json() == {"status": "ok"}, "healthz body is exactly {'status': 'ok'}")
    r = attack("/readyz checks upstream and guard")
    resp = client.get(base + "/readyz")
    r.note(resp, expect=(200,))
    upstream.app.state.models_status = 503
    r.note(client.get(base + "/readyz"), expect=(503,))
    upstream.app.state.models_status = 200
    r = attack("upstream 500 with a traceback and DB URL")
    r.note(post(chat("error500")), expect=(502,))
    r = attack("upstream 400 echoing its API key")
    r.note(post(chat("error400")), expect=(400,))
    r = attack("upstream 429 Retry-After passed through")
    resp = post(chat("ratelimit"))
    r.note(resp, expect=(429,))
    r.check(resp.headers.get("retry-after") == "17", "Retry-After: 17 kept")
    r = attack("upstream 503 Retry-After passed through")
    resp = post(chat("unavailable"))
    r.note(resp, expect=(503,))
    r.check(resp.headers.get("retry-after") == "9", "Retry-After: 9 kept")
    r = attack("upstream dies / slow / malformed / not JSON")
    for model, status in (("die", 502), ("slow", 504), ("malformed", 502), ("notjson", 502), ("array", 502)):
        resp = post(chat(model))
        r.note(resp, expect=(status,))
        r.check(isinstance(resp, Exception) or "127.0.0.1" not in resp.text, f"{model}: no upstream address")
    r = attack("slow-drip upstream cut at the total deadline")
    t = time.monotonic()
    r.note(post(chat("drip")), expect=(504,))
    r.check(time.monotonic() - t < 15, "the drip was cut well before the upstream's 20 s")
    r = attack("deeply nested JSON")
    r.note(post(raw=b"[" * 100_000 + b"]" * 100_000), expect=(400,))
    r.note(post(raw=b'{"messages": ' + b"[" * 200 + b"]" * 200 + b"}"), expect=(400,))
    r = attack("NaN / Infinity in the request")
    r.note(post(raw=b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'), expect=(400,))
    r.note(post(raw=b'{"messages": [{"role": "user", "content": "hi"}], "top_p": -Infinity}'), expect=(400,))
    r = attack("lone \\ud800 escape")
    r.note(post(raw=b'{"messages": [{"role": "user", "content": "a \\ud800 b"}]}'), expect=(400,))
    r.note(post(raw=b'{"user_message": "\\udfff", "draft": "x"}', path="/v1/guard/check"), expect=(400,))
    r = attack("/v1/guard/check history content of int/list type")
    for content in (5, [1, 2], {"a": 1}):
        r.note(post({"user_message": SAD_FALSE, "draft": SYCOPHANTIC, "history": [{"role": "user", "content": content}]},
                    path="/v1/guard/check"), expect=(422,))
    r = attack("upstream NaN in usage: 502 and no audit record")
    before = sum(1 for _ in audit.open()) if audit.exists() else 0
    r.note(post(chat("nan")), expect=(502,))
    r.check((sum(1 for _ in audit.open()) if audit.exists() else 0) == before, "no audit record for a failed answer")
    r = attack("3,000 random paths: bounded metric labels")
    for n in range(3000):
        resp = client.get(f"{base}/x/{n}/{n * 7919}")
        if n % 500 == 0:
            r.note(resp, expect=(404,))
    metrics = client.get(base + "/metrics", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    r.note(metrics, expect=(200,))
    series = [line for line in metrics.text.splitlines() if line.startswith("guardrail_requests_total{")]
    r.check(len(series) < 40, f"{len(series)} request series (bounded)")
    r.check("guardrail_stage_seconds_bucket" in metrics.text, "per-stage latency histograms")
    r = attack("/v1/models passed through")
    r.note(client.get(base + "/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"}), expect=(200,))
    r = attack("200 concurrent requests: none lost or duplicated")

    async def burst() -> list[Any]:
        async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=200)) as c:
            return await asyncio.gather(*[c.post(base + "/v1/chat/completions", json=chat("benign", f"Question {i}: is it Sydney?"),
                                                 headers={"Authorization": f"Bearer {CLIENT_KEY}"}) for i in range(200)],
                                        return_exceptions=True)
    before = sum(1 for _ in audit.open())
    responses = asyncio.run(burst())
    for resp in responses:
        r.note(resp, expect=(200,), drafts=1)
    ids = [x.json()["guardrail"]["request_id"] for x in responses if not isinstance(x, Exception) and x.status_code == 200]
    r.check(len(set(ids)) == 200, "200 unique request ids")
    r.check(sum(1 for _ in audit.open()) - before == 200, "200 audit records")
    return results


def fuzz_proxy(client: Any, base: str, seconds: float, max_examples: int) -> Result:
    """Hypothesis-generated chat and check bodies against the proxy, bounded by count and time."""
    import httpx
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    result = Result(f"hypothesis-generated bodies (<= {max_examples}, <= {seconds:g} s)")
    stop_at = time.monotonic() + seconds
    leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=60))
    anything = st.recursive(leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                            max_leaves=16)
    part = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "input_text", "x"]),
                                  "text": st.text(max_size=80) | anything})
    content = st.text(max_size=300) | st.lists(part, max_size=3) | anything
    message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "function", "bad"]) | anything,
                                     "content": content})
    chat_body = st.fixed_dictionaries(
        {"messages": st.lists(message, min_size=0, max_size=4) | anything},
        optional={"model": st.sampled_from(FUZZ_MODES), "n": st.integers(-1, 4) | anything,
                  "stream": st.booleans() | anything, "temperature": leaf, "tools": anything})
    check_body = st.fixed_dictionaries(
        {"user_message": st.text(max_size=200) | anything, "draft": st.text(max_size=200) | anything},
        optional={"history": st.lists(message, max_size=3) | anything, "reference": anything})
    raw_text = st.binary(max_size=200) | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))

    @settings(max_examples=max_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              derandomize=False)
    @given(kind=st.sampled_from(["chat", "check", "raw"]), chat_b=chat_body, check_b=check_body, raw=raw_text)
    def one(kind: str, chat_b: Any, check_b: Any, raw: bytes) -> None:
        if time.monotonic() > stop_at:
            return
        path = "/v1/guard/check" if kind == "check" else "/v1/chat/completions"
        headers = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
        try:
            if kind == "raw":
                resp = client.post(base + path, content=raw, headers=headers)
            else:
                resp = client.post(base + path, content=json.dumps(chat_b if kind == "chat" else check_b).encode(), headers=headers)
        except httpx.HTTPError as exc:
            result.note(exc, expect=())
            return
        drafts = 0
        if kind == "chat" and resp.status_code == 200:
            try:
                drafts = answer_view(resp)[1]
            except (ValueError, KeyError, TypeError, IndexError):
                result.problems.append("a 200 answer without a readable guardrail field")
                drafts = 1
        result.note(resp, expect=(200, 400, 413, 422, 429, 502, 503), drafts=drafts)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one()
    return result


def fuzz_check(seconds: float, max_examples: int) -> Result:
    """Hypothesis-generated inputs straight into ``Guard.check``: only ``GuardInputError`` may be raised, and
    every verdict must serialise to JSON."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from detectors.text import InvalidTextError
    from guardrail import Guard

    guard = Guard().warmup()
    result = Result(f"Guard.check with generated inputs (<= {max_examples}, <= {seconds:g} s)")
    stop_at = time.monotonic() + seconds
    leaf = st.none() | st.integers() | st.text(max_size=60) | st.binary(max_size=10)
    anything = st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                            max_leaves=8)
    text = st.text(max_size=400) | st.sampled_from([SAD_FALSE, SYCOPHANTIC, "\ud800 Sydney", "\x00" * 5, "a" * 200_001])

    @settings(max_examples=max_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(user=text | anything, draft=text | anything, history=st.none() | st.lists(
        st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "x"]), "content": text | anything}), max_size=3),
        reference=st.none() | text | anything)
    def one(user: Any, draft: Any, history: Any, reference: Any) -> None:
        if time.monotonic() > stop_at:
            return
        result.requests += 1
        try:
            v = guard.check(user, draft, history=history, reference=reference)
        except InvalidTextError:
            result.codes["input_error"] += 1
            return
        except Exception as exc:  # noqa: BLE001 - what we count
            result.codes["unhandled"] += 1
            result.problems.append(f"unhandled {type(exc).__name__}")
            return
        try:
            json.loads(v.model_dump_json())
            json.dumps(v.redacted().model_dump(mode="json"))
            result.codes[f"verdict_{v.status}"] += 1
        except Exception as exc:  # noqa: BLE001
            result.problems.append(f"verdict not serialisable: {type(exc).__name__}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one()
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz-seconds", type=float, default=240.0, help="time bound of the generated proxy bodies")
    parser.add_argument("--fuzz-max", type=int, default=5000, help="count bound of the generated proxy bodies")
    parser.add_argument("--check-seconds", type=float, default=60.0, help="time bound of generated Guard.check inputs (0 = skip)")
    parser.add_argument("--check-max", type=int, default=3000)
    parser.add_argument("--out", default="runs/bench/attack_bench.json")
    args = parser.parse_args(argv)
    import httpx

    upstream = ServerThread(upstream_app())
    work = Path(tempfile.mkdtemp(prefix="attack-bench-"))
    audit = work / "audit.jsonl"
    config = work / "proxy.yaml"
    port = free_port()
    upstream_url = f"http://operator:{URL_PASSWORD}@127.0.0.1:{upstream.port}/v1"
    config.write_text(f"upstream: {{url: '{upstream_url}', timeout_s: 4, retries: 0}}\n"
                      f"server: {{port: {port}, log_level: info}}\naudit: {{path: '{audit}'}}\n"
                      "limits: {max_body_bytes: 2000000}\n")
    log_path = work / "proxy.log"
    env = {**os.environ, "GUARDRAIL_API_KEY": CLIENT_KEY, "UPSTREAM_API_KEY": PLANTED_KEY}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "guardrail.commands", "serve", "--config", str(config)],
                                env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    results: list[Result] = []
    started = time.monotonic()
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the proxy exited with {proc.returncode}; see {log_path}")
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the proxy did not become healthy within 300 s")
            time.sleep(0.3)
        with httpx.Client(timeout=60) as client:
            results += run_attacks(client, base, upstream, audit)
            results.append(fuzz_proxy(client, base, args.fuzz_seconds, args.fuzz_max))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        upstream.close()
    leaks = Result("secrets in the proxy's log lines and the audit log")
    for path in (log_path, audit):
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        leaks.secrets += sum(text.count(s) for s in SECRETS)
        leaks.requests += text.count("\n")
    leaks.check("Sydney" not in audit.read_text(), "no raw text in the audit log")
    access = [line for line in log_path.read_text(errors="replace").splitlines() if '"route"' in line]
    leaks.check(bool(access) and all(json.loads(line).keys() <= {"method", "route", "status", "latency_ms", "action",
                                                                 "request_id"} for line in access), "access log is JSON with known fields")
    leaks.check(not any("Sydney" in line or "/x/" in line for line in access), "access log holds no text or raw paths")
    results.append(leaks)
    if args.check_seconds > 0:
        results.append(fuzz_check(args.check_seconds, args.check_max))

    print(f"{'attack':58} {'requests':>8}  {'unchecked':>9} {'secrets':>7}  result  status codes")
    for r in results:
        codes = ", ".join(f"{k}x{v}" for k, v in sorted(r.codes.items(), key=lambda kv: str(kv[0])))
        print(f"{r.name[:58]:58} {r.requests:8d}  {r.unchecked:9d} {r.secrets:7d}  {'pass' if r.passed else 'FAIL':6}  {codes}")
        for problem in dict.fromkeys(r.problems):
            print(f"{'':60}- {problem}")
    passed = sum(r.passed for r in results)
    summary = {"passed": passed, "failed": len(results) - passed,
               "requests": sum(r.requests for r in results), "unchecked_drafts": sum(r.unchecked for r in results),
               "secrets_seen": sum(r.secrets for r in results),
               "responses_500": sum(r.codes.get(500, 0) for r in results), "seconds": round(time.monotonic() - started, 1)}
    print(f"{summary['passed']} passed, {summary['failed']} failed; {summary['requests']} requests, "
          f"{summary['unchecked_drafts']} unchecked drafts, {summary['secrets_seen']} secrets seen, "
          f"{summary['responses_500']} responses of 500 ({summary['seconds']} s)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"summary": summary, "attacks": [{"name": r.name, "requests": r.requests, "codes": {str(k): v for k, v in r.codes.items()},
                                               "unchecked": r.unchecked, "secrets": r.secrets, "passed": r.passed,
                                               "problems": list(dict.fromkeys(r.problems))} for r in results]}
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out}")
    return report


if __name__ == "__main__":
    main()
