"""Wrappers that put the guard in front of an existing chat call.

- ``guard.wrap(fn)`` / ``wrap(guard, fn)``: ``fn(messages, ...) -> str``, sync or async.
- ``guard_openai(client, guard)``: an OpenAI Python client whose ``chat.completions.create`` is checked.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

from guardrail.verdict import Verdict


def split_messages(messages: Any) -> tuple[str, list[dict[str, str]]]:
    """The last user turn and the history before it (what the guard checks the reply against)."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise TypeError("messages must be a non-empty list of {'role', 'content'} dicts (OpenAI chat format).")
    for n in range(len(messages) - 1, -1, -1):
        m = messages[n]
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):  # OpenAI content parts: keep the text parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            history = [
                {"role": x.get("role"), "content": _text(x.get("content"))}
                for x in messages[:n] if isinstance(x, dict) and x.get("role") in ("system", "user", "assistant")
            ]
            return content if isinstance(content, str) else "", history
    raise TypeError("messages has no user turn: the guard checks a reply against the last user message.")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def wrap(guard: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Guard a chat function whose first argument is the message list and whose result is the reply text."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(messages: Any, *args: Any, **kwargs: Any) -> str:
            user, history = split_messages(messages)
            reply = await fn(messages, *args, **kwargs)
            if not isinstance(reply, str):
                raise TypeError(f"{fn.__name__} must return the reply as a str to be guarded, got {type(reply).__name__}.")
            verdict = await guard.acheck(user, reply, history=history)
            async_wrapper.last_verdict = verdict  # type: ignore[attr-defined]
            return verdict.final_text(reply)

        async_wrapper.last_verdict = None  # type: ignore[attr-defined]
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(messages: Any, *args: Any, **kwargs: Any) -> str:
        user, history = split_messages(messages)
        reply = fn(messages, *args, **kwargs)
        if not isinstance(reply, str):
            raise TypeError(f"{fn.__name__} must return the reply as a str to be guarded, got {type(reply).__name__}.")
        verdict = guard.check(user, reply, history=history)
        wrapper.last_verdict = verdict  # type: ignore[attr-defined]
        return verdict.final_text(reply)

    wrapper.last_verdict = None  # type: ignore[attr-defined]
    return wrapper


class _GuardedCompletions:
    def __init__(self, completions: Any, guard: Any) -> None:
        self._completions, self._guard = completions, guard
        self.last_verdict: Optional[Verdict] = None

    def create(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            raise ValueError("guard_openai does not wrap stream=True: the guard needs the whole answer. "
                             "Use the proxy (`guardrail serve`), which buffers and then streams.")
        messages = kwargs.get("messages")
        user, history = split_messages(messages)
        response = self._completions.create(*args, **kwargs)
        choice = response.choices[0]
        draft = choice.message.content or ""
        verdict = self._guard.check(user, draft, history=history)
        self.last_verdict = verdict
        if verdict.text is not None:
            choice.message.content = verdict.text
        try:
            setattr(response, "guardrail", verdict.model_dump(mode="json"))
        except Exception:  # a frozen response type: the verdict stays on .last_verdict
            pass
        return response


class _GuardedChat:
    def __init__(self, chat: Any, guard: Any) -> None:
        self.completions = _GuardedCompletions(chat.completions, guard)


class GuardedOpenAI:
    """A thin wrapper over an ``openai.OpenAI`` client: ``chat.completions.create`` replies are checked,
    the content replaced when the action changes it, and the verdict attached as ``response.guardrail``."""

    def __init__(self, client: Any, guard: Any) -> None:
        if not hasattr(client, "chat") or not hasattr(client.chat, "completions"):
            raise TypeError("guard_openai needs an OpenAI-style client with chat.completions.create.")
        self._client = client
        self.chat = _GuardedChat(client.chat, guard)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def guard_openai(client: Any, guard: Any) -> GuardedOpenAI:
    return GuardedOpenAI(client, guard)
