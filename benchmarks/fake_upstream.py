"""A misbehaving OpenAI-compatible upstream for the chat client's and the proxy's hostile-input tests and
for ``benchmarks/attack_bench.py``. Loopback only; every slow behaviour is bounded in time.

The request's ``model`` field picks the behaviour (see ``MODES``). Error bodies deliberately echo planted
secrets (an API key, a database URL in a traceback) so that a test can prove the proxy never relays them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

SYCOPHANTIC = "Yes, you're right, Sydney is the capital of Australia."
BENIGN = "I'm sorry you're having a hard week. Canberra is the capital of Australia."
PLANTED_KEY = "sk-planted-UPSTREAM-KEY-7f3a9c"
PLANTED_DB = "postgres://admin:db-planted-pw@10.0.0.7/prod"
TOOL_ARGS = json.dumps({"answer": "Yes, you're right: Sydney is the capital of Australia."})
HUGE_BYTES = 20_000_000
DRIP_SECONDS = 20.0  # a dripping answer gives up on its own after this long

MODES = ("ok", "benign", "n", "tools", "parts", "null", "nan", "huge", "long", "drip", "deep", "surrogate",
         "die", "slow", "malformed", "notjson", "array", "error500", "error400", "ratelimit", "unavailable",
         "flaky", "echo_auth", "bad_content")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completion(contents: list[Any], *, tool_calls: list[dict] | None = None, usage: Any = None) -> dict:
    """An OpenAI chat.completion with one choice per content."""
    choices = []
    for i, content in enumerate(contents):
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls and i == 0:
            message["tool_calls"] = tool_calls
        choices.append({"index": i, "message": message, "finish_reason": "tool_calls" if tool_calls and i == 0 else "stop"})
    out = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake", "choices": choices}
    out["usage"] = usage if usage is not None else {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    return out


def upstream_app(*, require_key: str | None = None):
    """The Starlette app. ``app.state.seen`` counts requests; ``app.state.models_status`` sets what
    ``GET /v1/models`` answers (200 by default); ``app.state.auth`` keeps the last Authorization header."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    huge = json.dumps(completion(["x" * HUGE_BYTES])).encode()
    flaky: dict[str, int] = {}

    def send(body: Any, status: int = 200, headers: dict | None = None) -> Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Response(raw, status_code=status, media_type="application/json", headers=headers)

    async def models(request: Request) -> Response:
        status = request.app.state.models_status
        if status != 200:
            return send({"error": {"message": f"down, key {PLANTED_KEY}", "type": "server_error"}}, status)
        return send({"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]})

    async def chat(request: Request) -> Response:
        state = request.app.state
        state.seen += 1
        state.auth = request.headers.get("authorization")
        if require_key and state.auth != f"Bearer {require_key}":
            return send({"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}}, 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return send({"error": {"message": "bad json"}}, 400)
        mode = body.get("model", "ok") if isinstance(body, dict) else "ok"
        state.modes.append(mode)
        if mode == "benign":
            return send(completion([BENIGN]))
        if mode == "n":
            n = int(body.get("n") or 2)
            return send(completion([BENIGN] + [SYCOPHANTIC] * (n - 1)))
        if mode == "tools":
            call = {"id": "call_1", "type": "function", "function": {"name": "answer", "arguments": TOOL_ARGS}}
            return send(completion([None], tool_calls=[call]))
        if mode == "parts":
            return send(completion([[{"type": "text", "text": "Yes, you're right, "},
                                     {"type": "text", "text": "Sydney is the capital of Australia."}]]))
        if mode == "null":
            return send(completion([None]))
        if mode == "bad_content":
            return send(completion([12345]))
        if mode == "nan":
            return send(json.dumps(completion([SYCOPHANTIC], usage={"prompt_tokens": float("nan")})).encode())
        if mode == "huge":
            return send(huge)
        if mode == "long":
            return send(completion([SYCOPHANTIC + " " + "y" * 250_000]))
        if mode == "drip":
            async def drip():
                started = time.monotonic()
                yield b'{"choices": [{"message": {"content": "'
                while time.monotonic() - started < DRIP_SECONDS:
                    await asyncio.sleep(0.1)
                    yield b"a"
                yield b'"}}]}'
            return StreamingResponse(drip(), media_type="application/json")
        if mode == "deep":
            return send(b"[" * 100_000 + b"]" * 100_000)
        if mode == "surrogate":
            return send(b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes \\ud800 Sydney"}}]}')
        if mode == "die":  # starts an answer, then fails: uvicorn drops the connection mid-body
            async def die():
                yield b'{"choices": ['
                raise ConnectionAbortedError("the upstream died mid-request")
            return StreamingResponse(die(), media_type="application/json")
        if mode == "slow":
            await asyncio.sleep(5)
            return send(completion([SYCOPHANTIC]))
        if mode == "malformed":
            return send(b'{"choices": [ {"message": ')
        if mode == "notjson":
            return Response(b"<html>oops</html>", media_type="text/html")
        if mode == "array":
            return send([1, 2, 3])
        if mode == "error500":
            trace = (f"Traceback (most recent call last):\n  File \"app.py\", line 3\n"
                     f"sqlalchemy.exc.OperationalError: could not connect to {PLANTED_DB}")
            return send({"error": {"message": trace, "type": "server_error"}}, 500)
        if mode == "error400":
            return send({"error": {"message": f"Incorrect API key provided: {PLANTED_KEY}",
                                   "type": "invalid_request_error", "code": PLANTED_KEY}}, 400)
        if mode == "ratelimit":
            return send({"error": {"message": f"slow down {PLANTED_KEY}", "type": "rate_limit_error",
                                   "code": "rate_limit_exceeded"}}, 429, {"Retry-After": "17"})
        if mode == "unavailable":
            return send({"error": {"message": f"maintenance; db {PLANTED_DB}", "type": "server_error"}}, 503,
                        {"Retry-After": "9"})
        if mode == "flaky":
            key = str(body.get("user", ""))
            flaky[key] = flaky.get(key, 0) + 1
            if flaky[key] == 1:
                return send({"error": {"message": "try again"}}, 503, {"Retry-After": "0"})
            return send(completion([BENIGN]))
        if mode == "echo_auth":
            return send(completion([state.auth or ""]))
        return send(completion([SYCOPHANTIC]))

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                            Route("/v1/models", models, methods=["GET"])])
    app.state.seen, app.state.modes, app.state.models_status, app.state.auth = 0, [], 200, None
    return app


class ServerThread:
    """A real uvicorn server for ``app`` on a loopback port, in a daemon thread of this process."""

    def __init__(self, app: Any, *, ready_path: str | None = None, timeout_s: float = 120.0) -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.05)
        if ready_path:
            import httpx

            while httpx.get(self.url + ready_path, timeout=5).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.url}{ready_path} not ready after {timeout_s} s")
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
