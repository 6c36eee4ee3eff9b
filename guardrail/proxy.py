"""An OpenAI-compatible proxy that checks every answer before it goes out.

``POST /v1/chat/completions`` forwards the request to the upstream (always non-streaming), checks the
answer against the last user turn, applies the policy and returns a normal completion with the verdict in
an extra ``guardrail`` field and ``X-Guardrail-*`` headers. With ``stream=true`` the answer is buffered,
checked, then streamed as server-sent events. Also ``POST /v1/guard/check``, ``GET /healthz`` and
``GET /metrics`` (Prometheus text). Checks from concurrent requests are micro-batched into one
``check_batch`` call, which runs on one worker thread.
"""


import asyncio
import concurrent.futures
import hmac
import json
import threading
import time
import uuid
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guardrail.verdict import Verdict


# ------------------------------------------------------------------------------------- request models
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: Any = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    messages: list[ChatMessage] = Field(min_length=1)
    model: Optional[str] = None
    stream: bool = False


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_message: str
    draft: str
    history: Optional[list[dict[str, Any]]] = None
    reference: Any = None


# ------------------------------------------------------------------------------------- metrics
class Metrics:
    """Counters and sums exposed in the Prometheus text format (no extra dependency)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.in_flight = 0

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self.counters[key] = self.counters.get(key, 0.0) + value

    def render(self) -> str:
        helps = {
            "guardrail_requests_total": ("counter", "HTTP requests by endpoint and status code"),
            "guardrail_verdicts_total": ("counter", "verdicts by action and status"),
            "guardrail_upstream_errors_total": ("counter", "upstream failures by kind"),
            "guardrail_check_seconds_sum": ("counter", "total seconds spent in guard checks"),
            "guardrail_check_seconds_count": ("counter", "number of guard checks"),
            "guardrail_upstream_seconds_sum": ("counter", "total seconds waiting for the upstream"),
            "guardrail_upstream_seconds_count": ("counter", "number of upstream calls"),
            "guardrail_audit_records_total": ("counter", "audit records written"),
        }
        lines: list[str] = []
        with self._lock:
            items = sorted(self.counters.items())
            in_flight = self.in_flight
        seen: set[str] = set()
        for (name, labels), value in items:
            if name not in seen and name in helps:
                kind, text = helps[name]
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                seen.add(name)
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        lines += ["# HELP guardrail_in_flight requests being handled", "# TYPE guardrail_in_flight gauge",
                  f"guardrail_in_flight {in_flight}"]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# ------------------------------------------------------------------------------------- batching
class BatchingChecker:
    """Collects concurrent checks for a few ms and runs them as one ``guard.check_batch`` on one thread."""

    def __init__(self, guard: Any, *, window_ms: float = 0.0, max_batch: int = 32) -> None:
        self.guard = guard
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self._queue: Optional[asyncio.Queue] = None
        self._task: Optional[asyncio.Task] = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard-batch")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def check(self, item: dict[str, Any]) -> Verdict:
        if self._queue is None:
            await self.start()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))  # type: ignore[union-attr]
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            # Take whatever is already waiting (requests that arrived while the last batch ran); wait
            # ``window`` more only if asked to, so a lone request never pays for batching.
            deadline = loop.time() + self.window
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            items = [item for item, _ in batch]
            try:
                results = await loop.run_in_executor(self._executor, self.guard.check_batch, items)
            except Exception:
                # One bad item must not sink the others: check one at a time and report each error.
                results = []
                for item in items:
                    try:
                        results.append((await loop.run_in_executor(self._executor, self.guard.check_batch, [item]))[0])
                    except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                        results.append(exc)
            for (_, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


class RequestCounter:
    """Pure ASGI middleware counting requests by path and status (cheaper than ``@app.middleware``,
    which costs about a millisecond a request)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        code = ["500"]

        async def send_and_note(message: dict) -> None:
            if message["type"] == "http.response.start":
                code[0] = str(message["status"])
            await send(message)

        self.metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.in_flight -= 1
            self.metrics.inc("guardrail_requests_total", endpoint=scope["path"], code=code[0])


# ------------------------------------------------------------------------------------- the app
def _error(status: int, message: str, kind: str, headers: Optional[dict[str, str]] = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status, headers=headers)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])


def _stream_chunks(completion: dict[str, Any], text: str, verdict_json: dict[str, Any], chunk_chars: int = 48):
    """SSE events of an already-checked answer: role, content pieces, finish, [DONE]."""
    base = {"id": completion.get("id") or f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": completion.get("created") or int(time.time()), "model": completion.get("model") or "upstream"}
    finish = ((completion.get("choices") or [{}])[0] or {}).get("finish_reason") or "stop"
    first = dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                 guardrail=verdict_json)
    yield f"data: {json.dumps(first)}\n\n"
    for start in range(0, len(text), chunk_chars):
        piece = dict(base, choices=[{"index": 0, "delta": {"content": text[start:start + chunk_chars]}, "finish_reason": None}])
        yield f"data: {json.dumps(piece)}\n\n"
    last = dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}])
    yield f"data: {json.dumps(last)}\n\n"
    yield "data: [DONE]\n\n"


def create_app(upstream: Optional[str], guard: Any = None, *, api_key: Optional[str] = None,
               audit_path: Optional[str] = None, upstream_api_key: Optional[str] = None,
               upstream_timeout_s: float = 60.0, include_text: bool = False, batch_window_ms: float = 0.0,
               warmup: bool = True) -> Any:
    """Build the proxy app. ``upstream``: base URL of an OpenAI-compatible server (``…/v1`` or the root)."""
    import httpx
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

    from guardrail.audit import AuditLog
    from guardrail.guard import Guard, GuardInputError

    guard = guard if guard is not None else Guard()
    metrics = Metrics()
    audit = AuditLog(audit_path, log_text=include_text) if audit_path else None
    checker = BatchingChecker(guard, window_ms=batch_window_ms)
    upstream_url = None
    if upstream:
        base = upstream.rstrip("/")
        upstream_url = base if base.endswith("/chat/completions") else (base + "/chat/completions" if base.endswith("/v1") else base + "/v1/chat/completions")
    state: dict[str, Any] = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: Any):
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
        headers = {"Authorization": f"Bearer {upstream_api_key}"} if upstream_api_key else {}
        state["client"] = httpx.AsyncClient(timeout=upstream_timeout_s, limits=limits, headers=headers)
        await checker.start()
        if warmup:
            await asyncio.to_thread(guard.warmup)
        state["ready"] = True
        try:
            yield
        finally:
            await checker.stop()
            await state["client"].aclose()
            if audit:
                audit.close()

    app = FastAPI(title="guardrail proxy", lifespan=lifespan)
    app.state.guard, app.state.metrics, app.state.audit = guard, metrics, audit

    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())

    def unauthorised():
        return _error(401, "missing or wrong bearer token: send 'Authorization: Bearer <key>'.", "authentication_error",
                      headers={"WWW-Authenticate": "Bearer"})

    async def read_json(request: Request) -> tuple[Any, Any]:
        raw = await request.body()
        try:
            return json.loads(raw), None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, _error(400, f"request body is not valid JSON ({exc.__class__.__name__}: {exc}).", "invalid_request_error")

    def verdict_headers(v: Verdict, request_id: str) -> dict[str, str]:
        return {"X-Guardrail-Action": v.action, "X-Guardrail-Status": v.status,
                "X-Guardrail-Risk": f"{v.risk:.4f}", "X-Request-Id": request_id}

    async def write_audit(v: Verdict, request_id: str, endpoint: str, user: str, draft: str, extra: dict[str, Any]) -> None:
        if audit is None:
            return
        await asyncio.to_thread(audit.record_verdict, v, request_id=request_id, endpoint=endpoint,
                                user_message=user, draft=draft, extra=extra)
        metrics.inc("guardrail_audit_records_total")

    def shown(v: Verdict) -> dict[str, Any]:
        return (v if include_text else v.redacted()).model_dump(mode="json")

    app.add_middleware(RequestCounter, metrics=metrics)

    @app.get("/healthz")
    async def healthz():
        body = {"status": "ok" if state["ready"] else "starting", "upstream": upstream_url, "audit_log": str(audit.path) if audit else None}
        return JSONResponse(body, status_code=200 if state["ready"] else 503)

    @app.get("/metrics")
    async def metrics_endpoint(request: Request):
        if not authorised(request):
            return unauthorised()
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/guard/check")
    async def guard_check(request: Request):
        if not authorised(request):
            return unauthorised()
        data, err = await read_json(request)
        if err is not None:
            return err
        try:
            body = CheckRequest.model_validate(data)
        except ValidationError as exc:
            return _error(422, f"invalid check request: {_validation_message(exc)}.", "invalid_request_error")
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        try:
            v = await checker.check({"user_message": body.user_message, "draft": body.draft,
                                     "history": body.history, "reference": body.reference})
        except GuardInputError as exc:
            return _error(422, str(exc), "invalid_request_error")
        metrics.inc("guardrail_check_seconds_sum", time.perf_counter() - started)
        metrics.inc("guardrail_check_seconds_count")
        metrics.inc("guardrail_verdicts_total", action=v.action, status=v.status)
        await write_audit(v, request_id, "/v1/guard/check", body.user_message, body.draft, {})
        out = v.model_dump(mode="json")
        out["request_id"] = request_id
        return JSONResponse(out, headers=verdict_headers(v, request_id))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        if not authorised(request):
            return unauthorised()
        if upstream_url is None:
            return _error(503, "this proxy has no upstream: start it with --upstream URL.", "server_error")
        data, err = await read_json(request)
        if err is not None:
            return err
        if not isinstance(data, dict):
            return _error(422, "request body must be a JSON object with a 'messages' list.", "invalid_request_error")
        try:
            req = ChatRequest.model_validate(data)
        except ValidationError as exc:
            return _error(422, f"invalid chat request: {_validation_message(exc)}.", "invalid_request_error")
        messages = [m.model_dump() for m in req.messages]
        from guardrail.wrappers import split_messages

        try:
            user, history = split_messages(messages)
        except TypeError as exc:
            return _error(422, str(exc), "invalid_request_error")
        request_id = uuid.uuid4().hex
        forward = {k: v for k, v in data.items() if k not in ("stream", "stream_options")}
        forward["stream"] = False
        t0 = time.perf_counter()
        try:
            response = await state["client"].post(upstream_url, json=forward)
        except httpx.TimeoutException:
            metrics.inc("guardrail_upstream_errors_total", kind="timeout")
            return _error(504, f"upstream {upstream_url} did not answer within {upstream_timeout_s:g} s.", "upstream_timeout")
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.NetworkError) as exc:
            metrics.inc("guardrail_upstream_errors_total", kind="connection")
            return _error(502, f"upstream {upstream_url} failed: {exc.__class__.__name__} (unreachable or closed the connection mid-request).", "upstream_error")
        metrics.inc("guardrail_upstream_seconds_sum", time.perf_counter() - t0)
        metrics.inc("guardrail_upstream_seconds_count")
        if response.status_code >= 400:
            metrics.inc("guardrail_upstream_errors_total", kind=f"http_{response.status_code}")
            detail = response.text[:300]
            status = response.status_code if response.status_code < 500 else 502
            return _error(status, f"upstream {upstream_url} answered HTTP {response.status_code}: {detail}", "upstream_error")
        try:
            completion = response.json()
            draft = completion["choices"][0]["message"]["content"]
            if draft is None:
                draft = ""
            if not isinstance(draft, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            metrics.inc("guardrail_upstream_errors_total", kind="malformed")
            return _error(502, f"upstream {upstream_url} returned a malformed completion ({exc.__class__.__name__}): "
                               "expected JSON with choices[0].message.content.", "upstream_error")
        started = time.perf_counter()
        try:
            v = await checker.check({"user_message": user, "draft": draft, "history": history})
        except GuardInputError as exc:
            return _error(422, str(exc), "invalid_request_error")
        metrics.inc("guardrail_check_seconds_sum", time.perf_counter() - started)
        metrics.inc("guardrail_check_seconds_count")
        metrics.inc("guardrail_verdicts_total", action=v.action, status=v.status)
        final = v.final_text(draft)
        completion["choices"][0]["message"]["content"] = final
        verdict_json = shown(v)
        completion["guardrail"] = dict(verdict_json, request_id=request_id)
        await write_audit(v, request_id, "/v1/chat/completions", user, draft,
                          {"upstream_model": completion.get("model"), "stream": req.stream})
        headers = verdict_headers(v, request_id)
        if req.stream:
            return StreamingResponse(_stream_chunks(completion, final, completion["guardrail"]),
                                     media_type="text/event-stream", headers=headers)
        return JSONResponse(completion, headers=headers)

    return app


def serve(upstream: Optional[str], *, host: str = "127.0.0.1", port: int = 8080, guard: Any = None,
          log_level: str = "warning", **kwargs: Any) -> None:
    """Run the proxy with uvicorn (blocks)."""
    import uvicorn

    app = create_app(upstream, guard, **kwargs)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
