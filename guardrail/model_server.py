"""`guardrail serve-model`: the embedded chat model (or any local/HF model) as an OpenAI-compatible
upstream, so the proxy can be run and tested end to end on one machine with real models.

Concurrent requests with the same ``max_tokens`` are batched into one left-padded ``generate`` call on a
single worker thread. Generation is greedy unless ``temperature`` > 0.
"""


import asyncio
import concurrent.futures
import json
import time
import uuid
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")
    messages: list[_Message] = Field(min_length=1)
    model: Optional[str] = None
    max_tokens: Optional[int] = Field(None, ge=1)
    max_completion_tokens: Optional[int] = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)
    stream: bool = False
    seed: Optional[int] = None


def create_model_app(model: Optional[str] = None, *, max_new_tokens: int = 128, batch_window_ms: float = 10.0,
                     max_batch: int = 16) -> Any:
    """Build the app; the model loads at start-up (``/healthz`` says 'starting' until then)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse

    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
    state: dict[str, Any] = {"chat": None, "queue": None}

    def _generate(prompts: list[list[dict[str, str]]], tokens: int, temperature: float, seed: Optional[int]) -> list[str]:
        from detectors.generation import generate

        return generate(state["chat"], prompts, max_new_tokens=tokens, temperature=temperature, seed=seed,
                        batch_size=max_batch)

    async def worker() -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = state["queue"]
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + batch_window_ms / 1000.0
            while len(batch) < max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            groups: dict[tuple, list] = {}
            for job in batch:
                groups.setdefault(job[1:4], []).append(job)
            for (tokens, temperature, seed), jobs in groups.items():
                try:
                    answers = await loop.run_in_executor(executor, _generate, [j[0] for j in jobs], tokens, temperature, seed)
                    for job, answer in zip(jobs, answers):
                        if not job[4].done():
                            job[4].set_result(answer)
                except Exception as exc:  # noqa: BLE001 - each waiting request gets the error
                    for job in jobs:
                        if not job[4].done():
                            job[4].set_exception(exc)

    @asynccontextmanager
    async def lifespan(app: Any):
        from detectors.models import load_chat_model

        state["chat"] = await asyncio.to_thread(load_chat_model, model)
        state["queue"] = asyncio.Queue()
        task = asyncio.create_task(worker())
        try:
            yield
        finally:
            task.cancel()
            executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="guardrail serve-model", lifespan=lifespan)
    name = model or "smollm2-135m-instruct"

    def error(status: int, message: str):
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": status}}, status_code=status)

    @app.get("/healthz")
    async def healthz():
        ready = state["chat"] is not None
        return JSONResponse({"status": "ok" if ready else "starting", "model": name}, status_code=200 if ready else 503)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "local"}]}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        raw = await request.body()
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return error(400, f"request body is not valid JSON ({exc}).")
        try:
            req = _Request.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            return error(422, f"invalid chat request: {problems}.")
        tokens = min(req.max_completion_tokens or req.max_tokens or max_new_tokens, max_new_tokens)
        messages = [{"role": m.role, "content": m.content} for m in req.messages]
        future = asyncio.get_running_loop().create_future()
        await state["queue"].put((messages, tokens, req.temperature, req.seed, future))
        answer = await future
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if req.stream:
            def events():
                head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name}
                yield "data: " + json.dumps(dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": answer}, "finish_reason": None}])) + "\n\n"
                yield "data: " + json.dumps(dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])) + "\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None},
        }

    return app


def serve_model(model: Optional[str] = None, *, host: str = "127.0.0.1", port: int = 8081, max_new_tokens: int = 128,
                log_level: str = "warning") -> None:
    import uvicorn

    uvicorn.run(create_model_app(model, max_new_tokens=max_new_tokens), host=host, port=port, log_level=log_level)
