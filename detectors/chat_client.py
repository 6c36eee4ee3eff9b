"""One client for OpenAI-compatible chat endpoints, sync (``ChatClient``) and async (``AsyncChatClient``).

Everything in this project that calls a chat model over HTTP (the guard's re-ask probe, the proxy's upstream,
the benchmark's HTTP target, the rewriter) goes through here, so that one set of rules holds everywhere:

- one URL rule (``chat_url``): ``http://h:p``, ``http://h:p/v1`` and ``…/v1/chat/completions`` all work;
- a *total* deadline of ``timeout_s`` per call, so an upstream that drips its body a byte at a time is cut;
- a cap on the response size and strict JSON (``NaN``/``Infinity`` and absurd nesting are rejected);
- retries: connection failures through httpx's transport retries, and a small, bounded retry on
  429/502/503/504 that honours ``Retry-After``;
- errors (``ChatClientError``) that never carry credentials or the upstream's body text, which may echo
  keys or tracebacks: only the status, a redacted URL, ``Retry-After`` and short error tokens.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import re
import threading
import time
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

import httpx

__all__ = ["chat_url", "redact_url", "ChatClientError", "ChatClient", "AsyncChatClient"]

_JSON = {"Content-Type": "application/json"}
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_WAIT_S = 5.0  # a longer Retry-After is handed to the caller instead of waited out
MAX_ERROR_BODY_BYTES = 65_536  # an error body is read only to pick out its short error type/code
_SAFE_TOKEN = re.compile(r"[a-z][a-z0-9_]{0,47}")  # e.g. "rate_limit_exceeded", "invalid_api_key"
_RETRY_AFTER = re.compile(r"[0-9]{1,6}|[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT")


def _split(url: str):
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8081/v1, got {redact_url(url)!r}.")
    return parts


def chat_url(base_url: str) -> str:
    """The chat-completions URL of a server given as its root, its ``/v1`` base or the full URL."""
    parts = _split(base_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path = path + "/chat/completions" if path.endswith("/v1") else path + "/v1/chat/completions"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _api_base(base_url: str) -> str:
    url = chat_url(base_url)
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path[: -len("/chat/completions")], parts.query, ""))


def redact_url(url: str) -> str:
    """``url`` without ``user:password@``, query string or fragment: safe to print and log."""
    try:
        parts = urlsplit(str(url).strip())
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<invalid url>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class ChatClientError(RuntimeError):
    """A chat call failed. ``status``: the upstream's HTTP status (None when there was no answer);
    ``retry_after``: its ``Retry-After`` header when it sent a valid one; ``kind``: one of
    ``connection``, ``timeout``, ``http``, ``too_large``, ``malformed``; ``error_type``/``error_code``: the
    upstream's ``error.type``/``error.code`` when they are short lowercase tokens. The message never holds
    credentials or the upstream's body text."""

    def __init__(self, message: str, *, status: Optional[int] = None, retry_after: Optional[str] = None,
                 kind: str = "http", error_type: Optional[str] = None, error_code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.kind = kind
        self.error_type = error_type
        self.error_code = error_code


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ChatClientError(f"{where} returned JSON nested too deeply to read.", kind="malformed") from None
    except (ValueError, UnicodeDecodeError) as exc:
        reason = "NaN/Infinity are not valid JSON" if "not valid JSON" in str(exc) else "not valid JSON"
        raise ChatClientError(f"{where} returned a body that is {reason}.", kind="malformed") from None


def _retry_after(headers: httpx.Headers) -> Optional[str]:
    value = (headers.get("retry-after") or "").strip()
    return value if _RETRY_AFTER.fullmatch(value) else None


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class _Base:
    """What the twins share: configuration, request bodies, the error rules."""

    def __init__(self, base_url: str, *, api_key: Optional[str] = None, model: Optional[str] = None,
                 timeout_s: float = 60.0, retries: int = 2, max_response_bytes: int = 8_000_000,
                 headers: Optional[dict] = None) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s}.")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}.")
        if max_response_bytes <= 0:
            raise ValueError(f"max_response_bytes must be > 0, got {max_response_bytes}.")
        self.url = chat_url(base_url)
        self.models_url = _api_base(base_url) + "/models"
        self.safe_url = redact_url(self.url)
        self.model = model
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.max_response_bytes = int(max_response_bytes)
        self._headers = dict(headers or {})
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        parts = urlsplit(base_url)
        # Strings that must never appear in an error token we pass on.
        self._secrets = [s for s in (api_key, parts.password, parts.username) if s]
        self._timeout = httpx.Timeout(self.timeout_s)
        self._limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)

    def _body(self, messages: list[dict], params: dict[str, Any]) -> bytes:
        """The request body as UTF-8 JSON, encoded once (and so once for all retries)."""
        if not isinstance(messages, list):
            raise TypeError(f"messages must be a list of {{'role', 'content'}} dicts, got {type(messages).__name__}.")
        body: dict[str, Any] = {"messages": messages, **params}
        if self.model is not None and "model" not in params:
            body["model"] = self.model
        try:
            return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
            raise ValueError(f"the request cannot be sent as JSON ({type(exc).__name__}): use only str, numbers, "
                             "lists and dicts, no NaN/Infinity and no lone surrogates.") from None

    def _safe_token(self, value: Any) -> Optional[str]:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 100_000:
            return str(value)
        if not isinstance(value, str) or not _SAFE_TOKEN.fullmatch(value):
            return None
        if any(value in s or s in value for s in self._secrets if len(s) >= 4):
            return None
        return value

    def _http_error(self, status: int, headers: httpx.Headers, raw: bytes) -> ChatClientError:
        error_type = error_code = None
        try:
            err = json.loads(raw, parse_constant=_reject_constant).get("error")
            if isinstance(err, dict):
                error_type, error_code = self._safe_token(err.get("type")), self._safe_token(err.get("code"))
        except (ValueError, AttributeError, RecursionError, UnicodeDecodeError):
            pass
        return ChatClientError(f"{self.safe_url} answered HTTP {status}.", status=status, kind="http",
                               retry_after=_retry_after(headers), error_type=error_type, error_code=error_code)

    def _timeout_error(self, url: str) -> ChatClientError:
        return ChatClientError(f"{redact_url(url)} did not answer within {self.timeout_s:g} s: raise timeout_s or "
                               "check that the server is not overloaded.", kind="timeout")

    def _connection_error(self, url: str, exc: BaseException) -> ChatClientError:
        return ChatClientError(f"{redact_url(url)} is unreachable or closed the connection ({type(exc).__name__}): "
                               "is the server up?", kind="connection")

    def _too_large(self, url: str) -> ChatClientError:
        return ChatClientError(f"{redact_url(url)} sent more than {self.max_response_bytes:,} bytes: lower max_tokens "
                               "or raise max_response_bytes.", kind="too_large")

    def _declared_too_large(self, headers: httpx.Headers) -> bool:
        length = headers.get("content-length", "")
        return length.isdigit() and int(length) > self.max_response_bytes

    def _decode(self, url: str, raw: bytes) -> dict:
        data = _parse_json(raw, redact_url(url))
        if not isinstance(data, dict):
            raise ChatClientError(f"{redact_url(url)} returned JSON that is not an object.", kind="malformed")
        return data

    def _retry_wait(self, err: ChatClientError, attempt: int, deadline: float) -> Optional[float]:
        """Seconds to wait before retrying ``err``, or None to give up now."""
        if err.status not in RETRY_STATUSES or attempt >= self.retries:
            return None
        wait = _retry_after_seconds(err.retry_after)
        wait = 0.1 * (2 ** attempt) if wait is None else wait
        if wait > MAX_RETRY_WAIT_S or time.monotonic() + wait >= deadline:
            return None
        return wait

    @staticmethod
    def _content(data: dict) -> str:
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ChatClientError("the completion has no choices[0].message.content: is this an OpenAI-compatible "
                                  "chat endpoint?", kind="malformed") from None
        if content is None:
            return ""
        if not isinstance(content, str):
            raise ChatClientError(f"choices[0].message.content must be a string, got {type(content).__name__}.",
                                  kind="malformed")
        return content


class ChatClient(_Base):
    """Synchronous client (``httpx.Client``). The request runs on a small worker pool so that the caller
    gets its answer or a timeout error at the total deadline, however the server drips its bytes."""

    def __init__(self, base_url: str, *, api_key: Optional[str] = None, model: Optional[str] = None,
                 timeout_s: float = 60.0, retries: int = 2, max_response_bytes: int = 8_000_000,
                 headers: Optional[dict] = None) -> None:
        super().__init__(base_url, api_key=api_key, model=model, timeout_s=timeout_s, retries=retries,
                         max_response_bytes=max_response_bytes, headers=headers)
        self._client = httpx.Client(timeout=self._timeout, headers=self._headers,
                                    transport=httpx.HTTPTransport(retries=self.retries, limits=self._limits))
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._pool_lock = threading.Lock()

    def create(self, messages: list[dict], *, timeout_s: Optional[float] = None, **params: Any) -> dict:
        """POST a chat completion and return its JSON (raises ``ChatClientError``); ``timeout_s`` shortens
        this call's deadline (e.g. to what is left of a caller's budget)."""
        return self._call("POST", self.url, self._body(messages, params), timeout_s)

    def text(self, messages: list[dict], *, timeout_s: Optional[float] = None, **params: Any) -> str:
        """The reply text: ``choices[0].message.content`` ("" when null)."""
        return self._content(self.create(messages, timeout_s=timeout_s, **params))

    def models(self, *, timeout_s: Optional[float] = None) -> dict:
        """``GET /v1/models`` (``timeout_s`` shortens the deadline, e.g. for a readiness probe)."""
        return self._call("GET", self.models_url, None, timeout_s)

    def _call(self, method: str, url: str, body: Optional[bytes], timeout_s: Optional[float] = None) -> dict:
        deadline = time.monotonic() + (min(self.timeout_s, timeout_s) if timeout_s else self.timeout_s)
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="chat-client")
            future = self._pool.submit(self._attempts, method, url, body, deadline)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise self._timeout_error(url) from None

    def _attempts(self, method: str, url: str, body: Optional[bytes], deadline: float) -> dict:
        attempt = 0
        while True:
            try:
                return self._once(method, url, body, deadline)
            except ChatClientError as err:
                wait = self._retry_wait(err, attempt, deadline)
                if wait is None:
                    raise
                time.sleep(wait)
                attempt += 1

    def _once(self, method: str, url: str, body: Optional[bytes], deadline: float) -> dict:
        try:
            with self._client.stream(method, url, content=body, headers=_JSON if body is not None else None) as response:
                if self._declared_too_large(response.headers):
                    raise self._too_large(url)
                limit = MAX_ERROR_BODY_BYTES if response.status_code >= 400 else self.max_response_bytes
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if time.monotonic() > deadline:
                        raise self._timeout_error(url)
                    if size > limit:
                        if response.status_code >= 400:
                            break
                        raise self._too_large(url)
                    chunks.append(chunk)
                raw = b"".join(chunks)
                if response.status_code >= 400:
                    raise self._http_error(response.status_code, response.headers, raw)
        except httpx.TimeoutException:
            raise self._timeout_error(url) from None
        except httpx.HTTPError as exc:
            raise self._connection_error(url, exc) from None
        return self._decode(url, raw)

    def close(self) -> None:
        """Close the connection pool (waits for no request: a late worker finishes on its own)."""
        self._client.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "ChatClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncChatClient(_Base):
    """Asynchronous twin of ``ChatClient`` (``httpx.AsyncClient``); the deadline cancels the whole call."""

    def __init__(self, base_url: str, *, api_key: Optional[str] = None, model: Optional[str] = None,
                 timeout_s: float = 60.0, retries: int = 2, max_response_bytes: int = 8_000_000,
                 headers: Optional[dict] = None) -> None:
        super().__init__(base_url, api_key=api_key, model=model, timeout_s=timeout_s, retries=retries,
                         max_response_bytes=max_response_bytes, headers=headers)
        self._client = httpx.AsyncClient(timeout=self._timeout, headers=self._headers,
                                         transport=httpx.AsyncHTTPTransport(retries=self.retries, limits=self._limits))

    async def create(self, messages: list[dict], *, timeout_s: Optional[float] = None, **params: Any) -> dict:
        """POST a chat completion and return its JSON (raises ``ChatClientError``); ``timeout_s`` shortens
        this call's deadline (e.g. to what is left of a caller's budget)."""
        return await self._call("POST", self.url, self._body(messages, params), timeout_s)

    async def text(self, messages: list[dict], *, timeout_s: Optional[float] = None, **params: Any) -> str:
        """The reply text: ``choices[0].message.content`` ("" when null)."""
        return self._content(await self.create(messages, timeout_s=timeout_s, **params))

    async def models(self, *, timeout_s: Optional[float] = None) -> dict:
        """``GET /v1/models`` (``timeout_s`` shortens the deadline, e.g. for a readiness probe)."""
        return await self._call("GET", self.models_url, None, timeout_s)

    async def _call(self, method: str, url: str, body: Optional[bytes], timeout_s: Optional[float] = None) -> dict:
        limit = min(self.timeout_s, timeout_s) if timeout_s else self.timeout_s
        deadline = time.monotonic() + limit
        try:
            return await asyncio.wait_for(self._attempts(method, url, body, deadline), limit)
        except asyncio.TimeoutError:
            raise self._timeout_error(url) from None

    async def _attempts(self, method: str, url: str, body: Optional[bytes], deadline: float) -> dict:
        attempt = 0
        while True:
            try:
                return await self._once(method, url, body)
            except ChatClientError as err:
                wait = self._retry_wait(err, attempt, deadline)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                attempt += 1

    async def _once(self, method: str, url: str, body: Optional[bytes]) -> dict:
        try:
            async with self._client.stream(method, url, content=body, headers=_JSON if body is not None else None) as response:
                if self._declared_too_large(response.headers):
                    raise self._too_large(url)
                limit = MAX_ERROR_BODY_BYTES if response.status_code >= 400 else self.max_response_bytes
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        if response.status_code >= 400:
                            break
                        raise self._too_large(url)
                    chunks.append(chunk)
                raw = b"".join(chunks)
                if response.status_code >= 400:
                    raise self._http_error(response.status_code, response.headers, raw)
        except httpx.TimeoutException:
            raise self._timeout_error(url) from None
        except httpx.HTTPError as exc:
            raise self._connection_error(url, exc) from None
        return self._decode(url, raw)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> "AsyncChatClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
