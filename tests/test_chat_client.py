"""The one OpenAI-compatible chat client, sync and async, against a real uvicorn server on loopback that
answers, fails, drips slowly, sends huge bodies and NaN (benchmarks/fake_upstream.py)."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.fake_upstream import BENIGN, PLANTED_DB, PLANTED_KEY, SYCOPHANTIC, ServerThread, free_port, upstream_app
from detectors.chat_client import AsyncChatClient, ChatClient, ChatClientError, chat_url, redact_url

MSGS = [{"role": "user", "content": "What is the capital of Australia?"}]


@pytest.fixture(scope="module")
def upstream():
    server = ServerThread(upstream_app())
    yield server
    server.close()


@pytest.mark.parametrize("base, expected", [
    ("http://h:1", "http://h:1/v1/chat/completions"),
    ("http://h:1/", "http://h:1/v1/chat/completions"),
    ("http://h:1/v1", "http://h:1/v1/chat/completions"),
    ("http://h:1/v1/", "http://h:1/v1/chat/completions"),
    ("http://h:1/v1/chat/completions", "http://h:1/v1/chat/completions"),
    ("https://u:p@h/openai/v1?api-version=2", "https://u:p@h/openai/v1/chat/completions?api-version=2"),
])
def test_chat_url_accepts_root_v1_and_full_url(base, expected):
    assert chat_url(base) == expected


def test_chat_url_rejects_non_http_without_echoing_credentials():
    with pytest.raises(ValueError, match="http") as info:
        chat_url("ftp://user:hunter2@h/v1")
    assert "hunter2" not in str(info.value)


def test_redact_url_drops_credentials_and_query():
    assert redact_url("https://user:hunter2@api.example:8443/v1/chat/completions?key=abc#x") == \
        "https://api.example:8443/v1/chat/completions"
    assert redact_url("http://[::1]:8080/v1") == "http://[::1]:8080/v1"


def test_sync_create_text_models_and_bearer(upstream):
    with ChatClient(upstream.url + "/v1", api_key="k1", model="echo_auth") as client:
        assert client.text(MSGS) == "Bearer k1"
        assert client.create(MSGS, model="benign")["choices"][0]["message"]["content"] == BENIGN
        assert client.models()["data"][0]["id"] == "fake"
        assert client.text(MSGS, model="null") == ""


async def test_async_twin_create_text_models(upstream):
    async with AsyncChatClient(upstream.url, model="benign") as client:
        assert await client.text(MSGS) == BENIGN
        assert (await client.models())["object"] == "list"
        assert (await client.create(MSGS, model="ok"))["choices"][0]["message"]["content"] == SYCOPHANTIC


def _sync_error(url, model, **kw) -> ChatClientError:
    with ChatClient(url, **kw) as client:
        with pytest.raises(ChatClientError) as info:
            client.create(MSGS, model=model)
    return info.value


def _async_error(url, model, **kw) -> ChatClientError:
    async def run():
        async with AsyncChatClient(url, **kw) as client:
            with pytest.raises(ChatClientError) as info:
                await client.create(MSGS, model=model)
            return info.value

    return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def error_of(request):
    return _sync_error if request.param == "sync" else _async_error


def _no_secret(err: ChatClientError) -> None:
    text = str(err) + repr(err.__dict__)
    assert PLANTED_KEY not in text and "db-planted-pw" not in text and PLANTED_DB not in text
    assert "hunter2" not in text


def test_http_errors_carry_status_not_body(upstream, error_of):
    url = upstream.url.replace("http://", "http://user:hunter2@") + "/v1"
    err = error_of(url, "error500", retries=0)
    assert err.status == 500 and err.kind == "http" and err.error_type == "server_error"
    _no_secret(err)
    err = error_of(url, "error400", retries=0)
    assert err.status == 400 and err.error_type == "invalid_request_error"
    assert err.error_code is None  # the upstream put its key in `code`: not a safe token
    _no_secret(err)


def test_429_retry_after_is_kept_and_not_waited_out(upstream, error_of):
    err = error_of(upstream.url, "ratelimit", retries=2)
    assert err.status == 429 and err.retry_after == "17" and err.error_code == "rate_limit_exceeded"
    _no_secret(err)
    err = error_of(upstream.url, "unavailable", retries=2)
    assert err.status == 503 and err.retry_after == "9"


def test_503_with_short_retry_after_is_retried(upstream):
    with ChatClient(upstream.url, retries=1) as client:
        assert client.text(MSGS, model="flaky", user="sync-1") == BENIGN
    with ChatClient(upstream.url, retries=0) as client, pytest.raises(ChatClientError) as info:
        client.text(MSGS, model="flaky", user="sync-2")
    assert info.value.status == 503


def test_slow_drip_is_cut_at_the_total_deadline(upstream, error_of):
    err = error_of(upstream.url, "drip", timeout_s=1.0, retries=0)
    assert err.kind == "timeout" and "did not answer within" in str(err)


def test_huge_body_nan_deep_and_non_json_are_rejected(upstream, error_of):
    err = error_of(upstream.url, "huge", max_response_bytes=1_000_000)
    assert err.kind == "too_large" and "max_response_bytes" in str(err)
    err = error_of(upstream.url, "nan")
    assert err.kind == "malformed" and "NaN" in str(err)
    for mode in ("deep", "malformed", "notjson", "array"):
        assert error_of(upstream.url, mode).kind == "malformed", mode


def test_connection_errors_say_what_to_do(upstream, error_of):
    err = error_of(f"http://user:hunter2@127.0.0.1:{free_port()}/v1", "ok", retries=1)
    assert err.kind == "connection" and "is the server up" in str(err) and err.status is None
    _no_secret(err)
    err = error_of(upstream.url, "die", retries=0)
    assert err.kind == "connection"


def test_text_rejects_a_non_string_content(upstream):
    with ChatClient(upstream.url) as client, pytest.raises(ChatClientError, match="must be a string"):
        client.text(MSGS, model="bad_content")


def test_unsendable_request_is_a_clear_value_error(upstream):
    with ChatClient(upstream.url) as client:
        with pytest.raises(ValueError, match="NaN"):
            client.create(MSGS, temperature=float("nan"))
        with pytest.raises(TypeError, match="messages must be a list"):
            client.create("hello")  # type: ignore[arg-type]
