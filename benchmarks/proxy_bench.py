"""Proxy overhead and reliability under concurrency, on loopback.

    python -m benchmarks.proxy_bench [--n 200] [--concurrency 200] [--out runs/bench/proxy_bench.json]

Starts a canned OpenAI-compatible upstream and the proxy (`guardrail serve`) as real uvicorn processes,
then measures (1) per request, proxy latency minus the direct upstream latency minus the guard's own
check time (the proxy's overhead; target p50 <= 5 ms), and (2) 200 concurrent requests: none lost
(all answered 200, all in the audit log, all seen by the upstream) and none duplicated.
"""


import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ANSWER = "I'm sorry you're feeling low. You're right, Sydney is the capital of Australia."
USER = "I feel so alone lately. What's the capital of Australia? I think it's Sydney. (request {i})"


def upstream_app():
    """A minimal OpenAI-compatible upstream that answers instantly and counts what it saw."""
    from fastapi import FastAPI, Request

    app = FastAPI()
    seen: list[str] = []

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/seen")
    async def seen_endpoint():
        return {"n": len(seen), "unique": len(set(seen))}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        seen.append(body["messages"][-1]["content"])
        return {"id": "c", "object": "chat.completion", "model": "canned", "created": 0,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}]}

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 300) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="sequential requests for the overhead figure")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--out", default="runs/bench/proxy_bench.json")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        import uvicorn

        uvicorn.run(upstream_app(), host="127.0.0.1", port=args.serve_upstream, log_level="warning")
        return {}

    import httpx

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    audit = out.with_name("proxy_bench_audit.jsonl")
    audit.unlink(missing_ok=True)
    up_port, proxy_port = free_port(), free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.proxy_bench", "--serve-upstream", str(up_port)])]
    procs.append(subprocess.Popen([sys.executable, "-m", "guardrail.commands", "serve", "--upstream",
                                   f"http://127.0.0.1:{up_port}/v1", "--port", str(proxy_port), "--audit-log", str(audit),
                                   "--log-level", "warning"]))
    try:
        wait_ready(f"http://127.0.0.1:{up_port}/healthz")
        wait_ready(f"http://127.0.0.1:{proxy_port}/healthz")
        direct_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        proxy_url = f"http://127.0.0.1:{proxy_port}/v1/chat/completions"
        body = lambda i: {"model": "canned", "messages": [{"role": "user", "content": USER.format(i=i)}]}  # noqa: E731
        overheads, direct, proxied, checks = [], [], [], []
        with httpx.Client(timeout=60) as client:
            for i in range(10):
                client.post(direct_url, json=body(i)), client.post(proxy_url, json=body(i))
            for i in range(args.n):
                t = time.perf_counter()
                client.post(direct_url, json=body(i)).raise_for_status()
                d = (time.perf_counter() - t) * 1000
                t = time.perf_counter()
                r = client.post(proxy_url, json=body(i))
                p = (time.perf_counter() - t) * 1000
                r.raise_for_status()
                check = r.json()["guardrail"]["timings_ms"]["total"]
                direct.append(d), proxied.append(p), checks.append(check)
                overheads.append(p - d - check)
        seen_before = httpx.get(f"http://127.0.0.1:{up_port}/seen").json()["n"]
        audit_before = sum(1 for _ in audit.open())

        async def burst():
            async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=args.concurrency)) as c:
                return await asyncio.gather(*[c.post(proxy_url, json=body(100000 + i)) for i in range(args.concurrency)],
                                            return_exceptions=True)

        t = time.perf_counter()
        responses = asyncio.run(burst())
        burst_s = time.perf_counter() - t
        ok = [r for r in responses if not isinstance(r, Exception) and r.status_code == 200]
        ids = [r.json()["guardrail"]["request_id"] for r in ok]
        from guardrail.audit import read_audit

        records = [rec["request_id"] for rec in read_audit(audit)][audit_before:]
        seen = httpx.get(f"http://127.0.0.1:{up_port}/seen").json()
        concurrent_result = {
            "requests": args.concurrency, "answered_200": len(ok), "unique_request_ids": len(set(ids)),
            "audit_records": len(records), "audit_matches_responses": sorted(records) == sorted(ids),
            "upstream_saw": seen["n"] - seen_before, "seconds": round(burst_s, 2),
            "errors": [repr(r)[:200] for r in responses if isinstance(r, Exception)][:5],
        }
        concurrent_result["none_lost_or_duplicated"] = (
            len(ok) == args.concurrency and len(set(ids)) == args.concurrency and concurrent_result["audit_matches_responses"]
            and concurrent_result["upstream_saw"] == args.concurrency)
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
    result = {
        "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
        "sequential": {"n": args.n, "direct_p50_ms": round(percentile(direct, 50), 2),
                       "proxy_p50_ms": round(percentile(proxied, 50), 2), "check_p50_ms": round(percentile(checks, 50), 2),
                       "overhead_p50_ms": round(percentile(overheads, 50), 2), "overhead_p99_ms": round(percentile(overheads, 99), 2),
                       "overhead_mean_ms": round(statistics.fmean(overheads), 2)},
        "concurrent": concurrent_result,
        "targets": {"overhead_p50_ms": 5},
    }
    out.write_text(json.dumps(result, indent=2))
    s = result["sequential"]
    print(f"direct upstream p50 {s['direct_p50_ms']:.1f} ms; through proxy p50 {s['proxy_p50_ms']:.1f} ms; check p50 {s['check_p50_ms']:.1f} ms")
    print(f"proxy overhead beyond the check: p50 {s['overhead_p50_ms']:.2f} ms, p99 {s['overhead_p99_ms']:.2f} ms (target p50 <= 5)")
    c = concurrent_result
    print(f"{c['requests']} concurrent: {c['answered_200']} answered, {c['unique_request_ids']} unique ids, "
          f"{c['audit_records']} audit records, upstream saw {c['upstream_saw']} -> none lost or duplicated: "
          f"{c['none_lost_or_duplicated']} ({c['seconds']} s)")
    print(f"written {out}")
    return result


if __name__ == "__main__":
    main()
