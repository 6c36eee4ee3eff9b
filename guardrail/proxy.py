"""An OpenAI-compatible proxy that checks every answer before it goes out.

``POST /v1/chat/completions`` forwards the request to the upstream (always non-streaming) through
``detectors.chat_client.AsyncChatClient``, checks *every* draft of the answer (each choice, each content
part, each tool call's arguments) against the last user turn in one ``check_batch`` call, applies the policy
and returns a normal completion with the verdict in an extra ``guardrail`` field and ``X-Guardrail-*``
headers. With ``stream=true`` the answer is buffered, checked, then streamed as server-sent events.
Also ``POST /v1/guard/check``, ``GET /v1/models`` (passed through), ``GET /healthz`` (reveals nothing),
``GET /readyz`` (upstream reachable and guard loaded) and ``GET /metrics`` (Prometheus).

Hostile input: the body is size-limited (413) and parsed as strict JSON (400 for NaN, deep nesting, lone
surrogates); a request or answer the guard cannot read is refused rather than let through unchecked; no
response, log line or metric label carries credentials, upstream internals or raw text; an upstream
error body is never relayed. Configuration: ``guardrail.proxy_config.ProxyConfig``.
"""


import asyncio
import concurrent.futures
import hmac
import json
import logging
import re
import time
import uuid
from typing import Any, Optional

from guardrail.metrics import ACTIONS, METHODS, ProxyMetrics, bounded, route_of
from guardrail.proxy_config import LimitsConfig, ProxyConfig
from guardrail.proxy_io import (Draft, InputProblem, UpstreamProblem, apply_verdicts, check_length, checked_summary,
                                drafts_of, history_of, parse_body, scrub_surrogates, split_chat, stream_chunks,
                                validate_messages, worst)
from guardrail.verdict import Verdict, error_code

log = logging.getLogger("guardrail.proxy")
access_log = logging.getLogger("guardrail.access")
_SAFE_TOKEN = re.compile(r"[a-z][a-z0-9_]{0,47}")
_SAFE_MODEL = re.compile(r"[A-Za-z0-9._:/-]{1,64}")


# ------------------------------------------------------------------------------------- batching
class BatchingChecker:
    """Collects concurrent checks for a few ms and runs them as one ``guard.check_batch`` on one thread.
    A request submits all its drafts as one group, so they are always checked in the same call."""

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
        return (await self.check_many([item]))[0]

    async def check_many(self, items: list[dict[str, Any]]) -> list[Verdict]:
        if self._queue is None:
            await self.start()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((items, future))  # type: ignore[union-attr]
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0])
            # Take whatever is already waiting (requests that arrived while the last batch ran); wait
            # ``window`` more only if asked to, so a lone request never pays for batching.
            deadline = loop.time() + self.window
            while size < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    size += len(batch[-1][0])
                    continue
                except asyncio.QueueEmpty:
                    pass
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                    size += len(batch[-1][0])
                except asyncio.TimeoutError:
                    break
            flat = [item for items, _ in batch for item in items]
            groups: list[Any]
            try:
                results = await loop.run_in_executor(self._executor, self.guard.check_batch, flat)
                groups, start = [], 0
                for items, _ in batch:
                    groups.append(results[start:start + len(items)])
                    start += len(items)
            except Exception:
                # One bad request must not sink the others: check one request at a time.
                groups = []
                for items, _ in batch:
                    try:
                        groups.append(await loop.run_in_executor(self._executor, self.guard.check_batch, items))
                    except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                        groups.append(exc)
            for (_, future), result in zip(batch, groups):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


# ------------------------------------------------------------------------------------- middleware
class AccessAndMetrics:
    """Pure ASGI middleware (cheaper than ``@app.middleware``): counts requests by route *template*, times
    them, writes one JSON access-log line (method, route, status, latency, action; never the raw path or
    text), and turns any exception that escapes a handler into a generic 500 in the OpenAI shape."""

    def __init__(self, app: Any, metrics: ProxyMetrics, enabled: bool = True) -> None:
        self.app, self.metrics, self.enabled = app, metrics, enabled

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        seen = {"status": 500, "action": None, "request_id": None, "sent": False}

        async def send_and_note(message: dict) -> None:
            if message["type"] == "http.response.start":
                seen["status"], seen["sent"] = message["status"], True
                for name, value in message.get("headers", []):
                    if name == b"x-guardrail-action":
                        seen["action"] = value.decode("latin-1")
                    elif name == b"x-request-id":
                        seen["request_id"] = value.decode("latin-1")
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_note)
        except Exception as exc:  # noqa: BLE001 - a bug must not leak a traceback or a text/plain 500
            log.error("unhandled %s in %s", type(exc).__name__, route_of(scope.get("path", "")))
            if not seen["sent"]:
                body = json.dumps({"error": {"message": "internal error in the guardrail proxy; it has been logged.",
                                             "type": "server_error", "code": 500}}).encode()
                await send_and_note({"type": "http.response.start", "status": 500,
                                     "headers": [(b"content-type", b"application/json"),
                                                 (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            route = self.metrics.request(scope.get("path", ""), scope.get("method", ""), seen["status"], seconds)
            if self.enabled and access_log.isEnabledFor(logging.INFO):
                record = {"method": bounded(scope.get("method"), METHODS), "route": route, "status": seen["status"],
                          "latency_ms": round(seconds * 1000, 2), "action": bounded(seen["action"], ACTIONS, None)}
                if seen["request_id"]:
                    record["request_id"] = seen["request_id"]
                access_log.info(json.dumps(record))


# ------------------------------------------------------------------------------------- helpers
def _error(status: int, message: str, kind: str, code: Any = None, headers: Optional[dict[str, str]] = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": code if code is not None else status}},
                        status_code=status, headers=headers)


def _upstream_error(exc: Any, timeout_s: float, max_bytes: int, metrics: ProxyMetrics):
    """A ``ChatClientError`` as the proxy's answer: the status and a generic message, never the upstream's
    body or URL; its ``error.type``/``code`` only when they are short safe tokens; ``Retry-After`` kept."""
    kind = getattr(exc, "kind", "connection")
    if kind == "timeout":
        metrics.upstream_error("timeout")
        return _error(504, f"the upstream did not answer within {timeout_s:g} s: try again later, or raise "
                           "upstream.timeout_s.", "upstream_timeout")
    if kind == "connection":
        metrics.upstream_error("connection")
        return _error(502, "the upstream is unreachable or closed the connection mid-request: try again later.",
                      "upstream_error")
    if kind == "too_large":
        metrics.upstream_error("too_large")
        return _error(502, f"the upstream's answer is over limits.max_response_bytes={max_bytes:,} bytes: ask for "
                           "fewer tokens or choices.", "upstream_error")
    if kind == "malformed":
        metrics.upstream_error("malformed")
        return _error(502, "the upstream returned a malformed completion (not a strict JSON object: invalid JSON, "
                           "NaN/Infinity or nested too deeply): expected an OpenAI chat.completion.", "upstream_error")
    status = exc.status or 502
    etype = exc.error_type if exc.error_type and _SAFE_TOKEN.fullmatch(exc.error_type) else None
    ecode = exc.error_code
    headers = {"Retry-After": exc.retry_after} if exc.retry_after and status in (429, 503) else None
    if status == 429:
        metrics.upstream_error("http_429")
        wait = f"retry after {exc.retry_after} s" if exc.retry_after and exc.retry_after.isdigit() else "retry later"
        return _error(429, f"the upstream is rate-limiting requests (HTTP 429): {wait}.", etype or "rate_limit_error",
                      ecode, headers)
    if status == 503:
        metrics.upstream_error("http_503")
        return _error(503, "the upstream is temporarily unavailable (HTTP 503): retry later.", "upstream_error", ecode, headers)
    if status in (401, 403):
        metrics.upstream_error("http_4xx")
        return _error(502, f"the upstream refused the proxy's credentials (HTTP {status}): the operator should check "
                           "the upstream API key.", "upstream_error")
    if status >= 500:
        metrics.upstream_error("http_5xx")
        return _error(502, f"the upstream failed (HTTP {status}): try again later.", "upstream_error")
    metrics.upstream_error("http_4xx")
    return _error(status, f"the upstream refused the request (HTTP {status}): check the model name and parameters.",
                  etype or "invalid_request_error", ecode)


def _fail_verdicts(guard: Any, n: int, exc: BaseException) -> list[Verdict]:
    """Verdicts for drafts whose check raised: the guard's fail policy, the error as its class only."""
    closed = bool(getattr(getattr(guard, "policy", None), "fail_closed", False))
    message = getattr(getattr(guard, "policy", None), "fail_closed_message", None) if closed else None
    return [Verdict(action="block" if closed else "pass", status="error", error=type(exc).__name__,
                    text=message, flags=["fail_closed" if closed else "fail_open", "proxy_caught"],
                    reasons=["check error: the draft was not fully checked"]) for _ in range(n)]


# ------------------------------------------------------------------------------------- the app
def create_app(upstream: Optional[str] = None, guard: Any = None, *, config: Optional[ProxyConfig] = None,
               api_key: Optional[str] = None, upstream_api_key: Optional[str] = None,
               audit_path: Optional[str] = None, upstream_timeout_s: Optional[float] = None,
               include_text: Optional[bool] = None, batch_window_ms: Optional[float] = None,
               limits: Optional[LimitsConfig] = None, warmup: bool = True) -> Any:
    """Build the proxy app from ``config`` (defaults when None); the keyword arguments override it.
    ``upstream``: base URL of an OpenAI-compatible server (root, ``…/v1`` or the full URL). Secrets
    (``api_key``, ``upstream_api_key``) are passed as values, never stored in the config."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from detectors.chat_client import AsyncChatClient, ChatClientError
    from detectors.text import InvalidTextError
    from guardrail.audit import AuditLog
    from guardrail.guard import Guard

    cfg = (config or ProxyConfig()).merged({
        "upstream.url": upstream, "upstream.timeout_s": upstream_timeout_s, "audit.path": audit_path,
        "audit.include_text": include_text, "server.batch_window_ms": batch_window_ms})
    lim = limits or cfg.limits
    guard = guard if guard is not None else Guard(policy=cfg.load_policy())
    metrics = ProxyMetrics()
    audit = AuditLog(cfg.audit.path, log_text=cfg.audit.include_text) if cfg.audit.path else None
    checker = BatchingChecker(guard, window_ms=cfg.server.batch_window_ms)
    timeout_s = cfg.upstream.timeout_s
    client: Optional[AsyncChatClient] = None
    if cfg.upstream.url:
        client = AsyncChatClient(cfg.upstream.url, api_key=upstream_api_key, timeout_s=timeout_s,
                                 retries=cfg.upstream.retries, max_response_bytes=lim.max_response_bytes)
    secrets = [s for s in (upstream_api_key, api_key) if s]
    state: dict[str, Any] = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: Any):
        await checker.start()
        if warmup:
            await asyncio.to_thread(guard.warmup)
        state["ready"] = True
        try:
            yield
        finally:
            await checker.stop()
            if client is not None:
                await client.aclose()
            if audit:
                audit.close()

    app = FastAPI(title="guardrail proxy", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.guard, app.state.metrics, app.state.audit, app.state.config = guard, metrics, audit, cfg

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, exc: StarletteHTTPException):
        message = {404: "no such endpoint: see /v1/chat/completions, /v1/guard/check, /v1/models.",
                   405: "method not allowed on this endpoint."}.get(exc.status_code, "request refused.")
        return _error(exc.status_code, message, "invalid_request_error")

    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())

    def unauthorised():
        metrics.rejected("unauthorised")
        return _error(401, "missing or wrong bearer token: send 'Authorization: Bearer <key>'.", "authentication_error",
                      headers={"WWW-Authenticate": "Bearer"})

    async def read_body(request: Request) -> Any:
        """The JSON body, read up to ``max_body_bytes`` (413 beyond) and parsed strictly (400)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > lim.max_body_bytes:
            raise InputProblem(413, f"request body is {int(declared):,} bytes, over limits.max_body_bytes="
                                    f"{lim.max_body_bytes:,}: send less history or shorter messages.", "body_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > lim.max_body_bytes:
                raise InputProblem(413, f"request body is over limits.max_body_bytes={lim.max_body_bytes:,} bytes: "
                                        "send less history or shorter messages.", "body_too_large")
            chunks.append(chunk)
        return parse_body(b"".join(chunks), lim.max_json_depth)

    def problem(exc: InputProblem):
        metrics.rejected(exc.reason)
        return _error(exc.status, str(exc), "invalid_request_error")

    def verdict_headers(v: Verdict, request_id: str) -> dict[str, str]:
        return {"X-Guardrail-Action": v.action, "X-Guardrail-Status": v.status,
                "X-Guardrail-Risk": f"{v.risk:.4f}", "X-Request-Id": request_id}

    def safe_model(value: Any) -> Optional[str]:
        if isinstance(value, str) and _SAFE_MODEL.fullmatch(value) and not any(s in value for s in secrets):
            return value
        return None

    async def write_audit(v: Verdict, request_id: str, endpoint: str, user: str, draft: Optional[str],
                          extra: dict[str, Any]) -> None:
        if audit is None:
            return
        await asyncio.to_thread(audit.record_verdict, v, request_id=request_id, endpoint=endpoint,
                                user_message=user, draft=draft, extra=extra)
        metrics.audit_records.inc()

    def shown(v: Verdict) -> dict[str, Any]:
        return (v if cfg.audit.include_text else v.redacted()).model_dump(mode="json")

    async def run_checks(items: list[dict[str, Any]]) -> list[Verdict]:
        started = time.perf_counter()
        try:
            verdicts = await checker.check_many(items)
        except InvalidTextError as exc:  # GuardInputError included: the input's fault
            raise InputProblem(422, str(exc)[:300]) from None
        except Exception as exc:  # noqa: BLE001 - a guard bug: the fail policy, not a 500
            log.error("guard check raised %s; fail policy applied", type(exc).__name__)
            verdicts = _fail_verdicts(guard, len(items), exc)
        metrics.check_seconds.observe(time.perf_counter() - started)
        return verdicts

    app.add_middleware(AccessAndMetrics, metrics=metrics, enabled=cfg.server.access_log)

    @app.get("/healthz")
    async def healthz():
        """Liveness only: says nothing about the upstream, the paths or the configuration."""
        return JSONResponse({"status": "ok" if state["ready"] else "starting"}, status_code=200 if state["ready"] else 503)

    @app.get("/readyz")
    async def readyz():
        """Ready when the guard's models are loaded and the upstream answers ``GET /v1/models``."""
        checks = {"guard": "ok" if state["ready"] else "loading", "upstream": "not_configured"}
        if client is not None:
            try:
                await client.models(timeout_s=cfg.upstream.ready_timeout_s)
                checks["upstream"] = "ok"
            except ChatClientError as exc:
                checks["upstream"] = exc.kind if exc.kind != "http" else f"http_{exc.status}"
        ready = checks["guard"] == "ok" and checks["upstream"] == "ok"
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics_endpoint(request: Request):
        if not authorised(request):
            return unauthorised()
        from guardrail.metrics import CONTENT_TYPE

        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models(request: Request):
        if not authorised(request):
            return unauthorised()
        if client is None:
            return _error(503, "this proxy has no upstream: start it with --upstream URL.", "server_error")
        try:
            listing = await client.models()
        except ChatClientError as exc:
            return _upstream_error(exc, timeout_s, lim.max_response_bytes, metrics)
        return JSONResponse(scrub_surrogates(listing))

    @app.post("/v1/guard/check")
    async def guard_check(request: Request):
        if not authorised(request):
            return unauthorised()
        try:
            data = await read_body(request)
            if not isinstance(data, dict):
                raise InputProblem(422, "request body must be a JSON object with user_message and draft.")
            unknown = sorted(set(data) - {"user_message", "draft", "history", "reference"})
            if unknown:
                raise InputProblem(422, f"invalid check request: unknown fields {unknown[:5]}: use user_message, "
                                        "draft, history, reference.")
            for name in ("user_message", "draft"):
                if not isinstance(data.get(name), str):
                    raise InputProblem(422, f"invalid check request: {name}: must be a string, got "
                                            f"{type(data.get(name)).__name__}.")
                check_length(data[name], name, lim.max_text_chars)
            history = history_of(data.get("history"), lim.max_text_chars)
            request_id = uuid.uuid4().hex
            [v] = await run_checks([{"user_message": data["user_message"], "draft": data["draft"],
                                     "history": history, "reference": data.get("reference")}])
        except InputProblem as exc:
            return problem(exc)
        metrics.verdict(v, "content")
        await write_audit(v, request_id, "/v1/guard/check", data["user_message"], data["draft"], {})
        out = v.model_dump(mode="json")  # the caller's own text may come back, a detector's error text may not
        if not cfg.audit.include_text:
            out["error"] = error_code(v.error, v.status)
        out["request_id"] = request_id
        return JSONResponse(scrub_surrogates(out), headers=verdict_headers(v, request_id))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        if not authorised(request):
            return unauthorised()
        if client is None:
            return _error(503, "this proxy has no upstream: start it with --upstream URL.", "server_error")
        try:
            data = await read_body(request)
            if not isinstance(data, dict):
                raise InputProblem(422, "request body must be a JSON object with a 'messages' list.")
            if "messages" not in data:
                raise InputProblem(422, "invalid chat request: messages: field required (a list of {'role', 'content'}).")
            messages = validate_messages(data["messages"])
            stream = data.get("stream", False)
            if not isinstance(stream, bool):
                raise InputProblem(422, "invalid chat request: stream: must be true or false.")
            n = data.get("n", 1)
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= lim.max_items):
                raise InputProblem(422, f"invalid chat request: n: must be an integer from 1 to {lim.max_items}.")
            user, history = split_chat(messages)
            check_length(user, "the last user message", lim.max_text_chars)
            for k, turn in enumerate(history):
                check_length(turn["content"], f"messages[{k}].content", lim.max_text_chars)
        except InputProblem as exc:
            return problem(exc)
        request_id = uuid.uuid4().hex
        forward = {k: v for k, v in data.items() if k not in ("stream", "stream_options", "messages")}
        t0 = time.perf_counter()
        try:
            completion = await client.create(messages, **forward, stream=False)
        except ChatClientError as exc:
            return _upstream_error(exc, timeout_s, lim.max_response_bytes, metrics)
        metrics.upstream_seconds.observe(time.perf_counter() - t0)
        try:
            completion = scrub_surrogates(completion)
            drafts: list[Draft] = drafts_of(completion, lim.max_text_chars, lim.max_items)
        except UpstreamProblem as exc:
            metrics.upstream_error(exc.kind)
            return _error(502, str(exc), "upstream_error")
        try:
            verdicts = await run_checks([{"user_message": user, "draft": d.text, "history": history} for d in drafts])
        except InputProblem as exc:
            return problem(exc)
        for d, v in zip(drafts, verdicts):
            d.verdict = v
            metrics.verdict(v, d.part)
        top = worst(drafts)
        apply_verdicts(completion, drafts)
        completion["guardrail"] = dict(shown(top), request_id=request_id, checked=checked_summary(drafts))
        extra: dict[str, Any] = {"upstream_model": safe_model(completion.get("model")), "stream": stream,
                                 "checked": checked_summary(drafts)}
        if audit is not None and len(drafts) > 1:
            extra["items"] = [{"choice": d.choice, "part": d.part, "draft_digest": audit.digest(d.text),
                               "verdict": audit.shown(d.verdict)} for d in drafts if d.verdict is not None]
        await write_audit(top, request_id, "/v1/chat/completions", user, drafts[0].text, extra)
        headers = verdict_headers(top, request_id)
        if stream:
            return StreamingResponse(stream_chunks(completion, completion["guardrail"]),
                                     media_type="text/event-stream", headers=headers)
        return JSONResponse(completion, headers=headers)

    return app


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the proxy's own loggers at ``level``; httpx/httpcore kept at WARNING so that
    no request URL (which may carry credentials) is ever logged."""
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger("guardrail")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "guardrail.access":
            return message  # already one JSON object
        return json.dumps({"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                           "message": message})


def serve(upstream: Optional[str] = None, *, config: Optional[ProxyConfig] = None, host: Optional[str] = None,
          port: Optional[int] = None, guard: Any = None, log_level: Optional[str] = None, **kwargs: Any) -> None:
    """Run the proxy with uvicorn (blocks). uvicorn's own access log is off: it would log raw paths."""
    import uvicorn

    cfg = (config or ProxyConfig()).merged({"server.host": host, "server.port": port, "server.log_level": log_level})
    configure_logging(cfg.server.log_level)
    app = create_app(upstream, guard, config=cfg, **kwargs)
    uvicorn.run(app, host=cfg.server.host, port=cfg.server.port, log_level=cfg.server.log_level, access_log=False)
