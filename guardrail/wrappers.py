"""Wrappers that put the guard in front of an existing chat call, sync or async, with no shared state.

- ``guard.wrap(fn)`` / ``wrap(guard, fn)``: ``fn(messages, ...) -> str``, sync or async; returns a
  ``GuardedText`` (a ``str``) whose ``.verdict`` is this call's verdict.
- ``guard_openai(client, guard)``: an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client whose
  ``chat.completions.create`` replies are checked; every choice is checked, and each response carries its
  own verdicts as ``response.guardrail`` (one per choice).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from guardrail.inputs import message_text
from guardrail.verdict import Verdict


class GuardedText(str):
    """The reply to send (a ``str``), with the verdict of the check that produced it."""

    verdict: Verdict

    def __new__(cls, text: str, verdict: Verdict) -> "GuardedText":
        obj = super().__new__(cls, text)
        obj.verdict = verdict
        return obj


def split_messages(messages: Any) -> tuple[str, list[dict[str, Any]]]:
    """The last user turn's text and the history before it (what the guard checks the reply against)."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise TypeError("messages must be a non-empty list of {'role', 'content'} dicts (OpenAI chat format).")
    for n in range(len(messages) - 1, -1, -1):
        m = messages[n]
        if isinstance(m, dict) and m.get("role") == "user":
            history = [{"role": x["role"], "content": x.get("content")} for x in messages[:n]
                       if isinstance(x, dict) and x.get("role") in ("system", "user", "assistant")]
            return message_text(m.get("content"), f"messages[{n}]['content']"), history
    raise TypeError("messages has no user turn: the guard checks a reply against the last user message.")


def wrap(guard: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Guard a chat function whose first argument is the message list and whose result is the reply text."""

    def reply_text(reply: Any) -> str:
        if not isinstance(reply, str):
            raise TypeError(f"{fn.__name__} must return the reply as a str to be guarded, got {type(reply).__name__}.")
        return reply

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(messages: Any, *args: Any, **kwargs: Any) -> GuardedText:
            user, history = split_messages(messages)
            reply = reply_text(await fn(messages, *args, **kwargs))
            verdict = await guard.acheck(user, reply, history=history)
            return GuardedText(verdict.final_text(reply), verdict)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(messages: Any, *args: Any, **kwargs: Any) -> GuardedText:
        user, history = split_messages(messages)
        reply = reply_text(fn(messages, *args, **kwargs))
        verdict = guard.check(user, reply, history=history)
        return GuardedText(verdict.final_text(reply), verdict)

    return wrapper


def _choice_draft(choice: Any) -> str:
    """The text a choice sends: its content and its tool calls' arguments (all of it is checked)."""
    message = choice.message
    parts = [message.content or ""]
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        if function is not None and getattr(function, "arguments", None):
            parts.append(str(function.arguments))
    return "\n".join(p for p in parts if p)


def _apply(response: Any, verdicts: list[Verdict]) -> Any:
    for choice, verdict in zip(response.choices, verdicts):
        if verdict.text is not None:
            choice.message.content = verdict.text
            if getattr(choice.message, "tool_calls", None):
                choice.message.tool_calls = None  # a replaced reply does not also call tools
    setattr(response, "guardrail", [v.model_dump(mode="json") for v in verdicts])
    return response


def _request(kwargs: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    if kwargs.get("stream"):
        raise ValueError("guard_openai does not wrap stream=True: the guard needs the whole answer. "
                         "Use the proxy (`guardrail serve`), which buffers and then streams.")
    return split_messages(kwargs.get("messages"))


class _GuardedCompletions:
    def __init__(self, completions: Any, guard: Any) -> None:
        self._completions, self._guard = completions, guard

    def create(self, *args: Any, **kwargs: Any) -> Any:
        user, history = _request(kwargs)
        response = self._completions.create(*args, **kwargs)
        items = [{"user_message": user, "draft": _choice_draft(c), "history": history} for c in response.choices]
        return _apply(response, self._guard.check_batch(items))


class _AsyncGuardedCompletions(_GuardedCompletions):
    async def create(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        import asyncio

        user, history = _request(kwargs)
        response = await self._completions.create(*args, **kwargs)
        items = [{"user_message": user, "draft": _choice_draft(c), "history": history} for c in response.choices]
        return _apply(response, await asyncio.to_thread(self._guard.check_batch, items))


class _GuardedChat:
    def __init__(self, chat: Any, guard: Any) -> None:
        is_async = inspect.iscoroutinefunction(inspect.unwrap(chat.completions.create))  # openai wraps its methods
        self.completions = (_AsyncGuardedCompletions if is_async else _GuardedCompletions)(chat.completions, guard)


class GuardedOpenAI:
    """A thin wrapper over an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client: every choice of
    ``chat.completions.create`` is checked, its content replaced when the action changes it, and the
    verdicts attached as ``response.guardrail`` (a list, one per choice)."""

    def __init__(self, client: Any, guard: Any) -> None:
        if not hasattr(client, "chat") or not hasattr(client.chat, "completions"):
            raise TypeError("guard_openai needs an OpenAI-style client with chat.completions.create.")
        self._client = client
        self.chat = _GuardedChat(client.chat, guard)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def guard_openai(client: Any, guard: Any) -> GuardedOpenAI:
    return GuardedOpenAI(client, guard)
