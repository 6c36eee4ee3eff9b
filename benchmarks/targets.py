"""What the benchmark asks: a local Hugging Face model, an OpenAI-compatible endpoint, or a Python callable.

Every target has a ``label`` (the name used in run keys and reports) and
``answer_batch(conversations, on_answer=None) -> list[str]``. ``on_answer(i, text)`` is called as each
answer arrives, so the runner can write it to the store before the rest of the batch is done.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from typing import Any, Callable, Optional, Sequence

from detectors.generation import BATCH_SIZE

Message = dict[str, str]
OnAnswer = Optional[Callable[[int, str], None]]


class TargetError(RuntimeError):
    """A target could not answer; the message says which requests failed and what to try."""


def _check_conversations(conversations: Sequence[Sequence[Message]]) -> None:
    for i, conv in enumerate(conversations):
        if not isinstance(conv, (list, tuple)) or not conv or not all(isinstance(m, dict) for m in conv):
            raise TypeError(
                f"conversation {i} must be a non-empty list of {{'role', 'content'}} dicts, got {type(conv).__name__}."
            )


class LocalTarget:
    """A local causal LM with true batched generation (left padding, chat template).

    ``chat`` reuses an already loaded ``ChatModel``; ``lm`` swaps in another torch model (a peft-wrapped
    warm copy) used with ``chat``'s tokenizer. Greedy when ``temperature == 0``, else sampled with ``seed``.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        chat: Any = None,
        lm: Any = None,
        label: str | None = None,
        system: str | None = None,
        max_new_tokens: int = 64,
        batch_size: int = BATCH_SIZE,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> None:
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be at least 1.")
        self.model_name = model
        self._chat = chat
        self.lm = lm
        self.system = system
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.temperature = temperature
        self.seed = seed
        self.label = label or (model.rstrip("/").split("/")[-1] if model else "embedded-smollm2")

    @property
    def chat(self) -> Any:
        if self._chat is None:
            from detectors.models import load_chat_model

            self._chat = load_chat_model(self.model_name)
        return self._chat

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "model": self.model_name or "embedded", "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "seed": self.seed, "system": self.system}

    def answer_batch(self, conversations: Sequence[Sequence[Message]], on_answer: OnAnswer = None) -> list[str]:
        from detectors.generation import generate

        _check_conversations(conversations)
        convs = [list(c) for c in conversations]
        # Group similar lengths so padding stays small; answers go back in the caller's order.
        order = sorted(range(len(convs)), key=lambda i: sum(len(m.get("content", "")) for m in convs[i]))
        answers = [""] * len(convs)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out = generate(
                self.chat,
                [convs[i] for i in idx],
                system=self.system,
                max_new_tokens=self.max_new_tokens,
                batch_size=self.batch_size,
                temperature=self.temperature,
                seed=self.seed + start,
                model=self.lm,
            )
            for i, text in zip(idx, out):
                answers[i] = text
                if on_answer:
                    on_answer(i, text)
        return answers


class HTTPTarget:
    """An OpenAI-compatible chat endpoint (vLLM, TGI, llama.cpp server, a hosted API) through httpx.

    Up to ``max_in_flight`` requests run at once; 429, 5xx, timeouts and connection errors are retried
    with exponential backoff (honouring Retry-After), so a server restart mid-run loses nothing.
    The API key is read from the environment variable ``api_key_env`` (sent only when it is set).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_in_flight: int = 32,
        timeout_s: float = 60,
        retries: int = 5,
        label: str | None = None,
        system: str | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = 0,
        backoff_s: float = 0.5,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}.")
        if max_in_flight < 1 or retries < 0:
            raise ValueError("max_in_flight must be >= 1 and retries >= 0.")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self.retries = retries
        self.system = system
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.backoff_s = backoff_s
        self.label = label or model
        self.in_flight = 0
        self.max_in_flight_seen = 0
        self.retried = 0

    @property
    def url(self) -> str:
        from detectors.chat_client import chat_url, redact_url

        return redact_url(chat_url(self.base_url))

    def describe(self) -> dict[str, Any]:
        from detectors.chat_client import redact_url

        return {"kind": "http", "base_url": redact_url(self.base_url), "model": self.model,
                "max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "system": self.system}

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": self.max_new_tokens, "temperature": self.temperature}
        if self.seed is not None:
            params["seed"] = self.seed
        return params

    def _messages(self, messages: list[Message]) -> list[Message]:
        if self.system and not (messages and messages[0].get("role") == "system"):
            return [{"role": "system", "content": self.system}] + messages
        return messages

    async def _one(self, client: Any, sem: asyncio.Semaphore, messages: list[Message]) -> str:
        """One answer through the shared chat client (its URL rule, deadline, size cap and bounded retries).
        Past those, a server that is down or overloaded is waited for with backoff, so a restart mid-run
        loses nothing; a refusal (4xx other than 429) is final."""
        from detectors.chat_client import ChatClientError

        last = ""
        for attempt in range(self.retries + 1):
            wait = min(self.backoff_s * 2**attempt, 8.0) * (0.5 + random.random())
            async with sem:
                self.in_flight += 1
                self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
                try:
                    return await client.text(self._messages(messages), **self._params())
                except ChatClientError as exc:
                    if exc.status in (401, 403):
                        raise TargetError(f"{self.url} refused the request ({exc.status}): set ${self.api_key_env}.") from None
                    if exc.kind == "malformed" or (exc.status is not None and exc.status != 429 and exc.status < 500):
                        raise TargetError(f"{exc} Is it an OpenAI-compatible endpoint?") from None
                    last = str(exc)
                    if exc.retry_after and exc.retry_after.isdigit():
                        wait = min(float(exc.retry_after), 30.0)
                finally:
                    self.in_flight -= 1
            if attempt < self.retries:
                self.retried += 1
                await asyncio.sleep(wait)
        raise TargetError(f"{self.url}: gave up after {self.retries + 1} tries ({last}); is the server up?")

    async def aanswer_batch(self, conversations: Sequence[Sequence[Message]], on_answer: OnAnswer = None) -> list[str]:
        from detectors.chat_client import AsyncChatClient

        _check_conversations(conversations)
        sem = asyncio.Semaphore(self.max_in_flight)
        answers: list[Optional[str]] = [None] * len(conversations)
        errors: list[str] = []
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        # retries=0: this target's own backoff (below) outlasts a server restart and counts every retry
        async with AsyncChatClient(self.base_url, api_key=key, model=self.model, timeout_s=self.timeout_s,
                                   retries=0) as client:

            async def run(i: int) -> None:
                try:
                    text = await self._one(client, sem, list(conversations[i]))
                except TargetError as exc:
                    errors.append(str(exc))
                    return
                answers[i] = text
                if on_answer:
                    on_answer(i, text)

            await asyncio.gather(*(run(i) for i in range(len(conversations))))
        if errors:
            raise TargetError(f"{len(errors)} of {len(conversations)} requests failed (answers that arrived are "
                              f"kept): {errors[0]}")
        return [a or "" for a in answers]

    def answer_batch(self, conversations: Sequence[Sequence[Message]], on_answer: OnAnswer = None) -> list[str]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.aanswer_batch(conversations, on_answer))
        # Called from inside an event loop: run ours on a worker thread.
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["out"] = asyncio.run(self.aanswer_batch(conversations, on_answer))
            except BaseException as exc:  # re-raised in the caller's thread
                box["err"] = exc

        t = threading.Thread(target=work)
        t.start()
        t.join()
        if "err" in box:
            raise box["err"]
        return box["out"]


class CallableTarget:
    """Any Python function ``fn(messages) -> str`` (an in-process assistant, a wrapped SDK client)."""

    def __init__(self, fn: Callable[[list[Message]], str], label: str) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}.")
        if not label:
            raise ValueError("label must be a non-empty name for this target (used in run keys and reports).")
        self.fn = fn
        self.label = label
        self.system = None

    def describe(self) -> dict[str, Any]:
        return {"kind": "callable", "fn": getattr(self.fn, "__qualname__", repr(self.fn))}

    def answer_batch(self, conversations: Sequence[Sequence[Message]], on_answer: OnAnswer = None) -> list[str]:
        _check_conversations(conversations)
        answers = []
        for i, conv in enumerate(conversations):
            text = self.fn(list(conv))
            if not isinstance(text, str):
                raise TypeError(f"{self.label}: fn must return a str, got {type(text).__name__} for conversation {i}.")
            answers.append(text)
            if on_answer:
                on_answer(i, text)
        return answers


def target_from_spec(spec: str, *, model: str | None = None, label: str | None = None, **kwargs: Any) -> Any:
    """Build a target from a CLI string.

    ``embedded`` (default model) | ``hf:NAME_OR_PATH`` | ``http(s)://HOST/v1`` (with ``model``) |
    ``python:package.module:function``.
    """
    if spec in ("embedded", "local"):
        return LocalTarget(None, label=label, **kwargs)
    if spec.startswith("hf:"):
        return LocalTarget(spec[3:], label=label, **kwargs)
    if spec.startswith(("http://", "https://")):
        if not model:
            raise ValueError("An HTTP target needs --model (the model name the endpoint serves).")
        http_kw = {k: v for k, v in kwargs.items() if k in ("system", "max_new_tokens", "temperature", "seed")}
        for k in ("max_in_flight", "timeout_s", "retries", "api_key_env"):
            if kwargs.get(k) is not None:
                http_kw[k] = kwargs[k]
        return HTTPTarget(spec, model, label=label, **http_kw)
    if spec.startswith("python:"):
        import importlib

        mod, _, fn = spec[7:].partition(":")
        if not fn:
            raise ValueError(f"Callable target must look like python:package.module:function, got {spec!r}.")
        return CallableTarget(getattr(importlib.import_module(mod), fn), label or fn)
    raise ValueError(f"Unknown target {spec!r}: use embedded, hf:NAME, http://host/v1 (with --model), "
                     "or python:module:function.")
