"""What the proxy reads and writes, as pure functions (no I/O, no models): strict JSON bodies, the user text
of an OpenAI chat request, the drafts of a completion (every choice, every content part, every tool call)
and the completion after the verdicts. Every walk over JSON is iterative and linear in the input's size.

Bad client input raises ``InputProblem`` (a 4xx); a bad upstream answer raises ``UpstreamProblem`` (502).
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from guardrail.verdict import Verdict

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TEXT_PART_TYPES = ("text", "input_text", "output_text")
ACTION_RANK = {"pass": 0, "annotate": 1, "revise": 2, "block": 3}
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class InputProblem(ValueError):
    """The client's request is unusable: ``status`` (4xx), a message naming the problem and the fix, and
    ``reason`` (a metrics label)."""

    def __init__(self, status: int, message: str, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class UpstreamProblem(ValueError):
    """The upstream's answer is unusable (502): ``kind`` is a metrics label."""

    def __init__(self, message: str, kind: str = "malformed") -> None:
        super().__init__(message)
        self.kind = kind


# ------------------------------------------------------------------------------------- strict JSON
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON: send numbers only (NaN and Infinity are not JSON)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is too large for a float: send a finite number")
    return value


def parse_body(raw: bytes, max_depth: int) -> Any:
    """Parse a request body as strict JSON: UTF-8, no NaN/Infinity/overflowing floats, nesting at most
    ``max_depth``, no lone UTF-16 surrogate in any string. Raises ``InputProblem(400)`` saying which."""
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise InputProblem(400, f"request body is nested too deeply: at most {max_depth} levels of JSON "
                                "arrays/objects are accepted.", "bad_json") from None
    except UnicodeDecodeError:
        raise InputProblem(400, "request body is not valid JSON: it is not UTF-8 text; encode it as UTF-8.",
                           "bad_json") from None
    except ValueError as exc:
        reason = str(exc) if "not valid JSON" in str(exc) or "finite number" in str(exc) else f"{type(exc).__name__}: {exc}"
        raise InputProblem(400, f"request body is not valid JSON ({reason[:200]}).", "bad_json") from None
    check_tree(data, max_depth, surrogates=bool(_SURROGATE_ESCAPE.search(raw)))
    return data


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_tree(data: Any, max_depth: int, *, surrogates: bool = True) -> None:
    """Reject nesting deeper than ``max_depth`` and (when ``surrogates``) strings with a lone surrogate."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise InputProblem(400, f"request body is nested too deeply: at most {max_depth} levels of JSON "
                                        "arrays/objects are accepted.", "bad_json")
            if isinstance(node, dict):
                for key, value in node.items():
                    if surrogates and _has_lone_surrogate(key):
                        raise InputProblem(400, _SURROGATE_MESSAGE, "bad_json")
                    stack.append((value, depth + 1))
            else:
                stack.extend((value, depth + 1) for value in node)
        elif surrogates and isinstance(node, str) and _has_lone_surrogate(node):
            raise InputProblem(400, _SURROGATE_MESSAGE, "bad_json")


_SURROGATE_MESSAGE = ("request body holds a lone UTF-16 surrogate escape (such as \\ud800), which is not text: "
                      "send valid UTF-8, or escape characters outside the BMP as a surrogate pair.")


def scrub_surrogates(data: Any) -> Any:
    """Replace lone surrogates in every string of an upstream answer (in place where possible) so that it
    can be encoded again; returns the cleaned value."""
    def clean(s: str) -> str:
        return s.encode("utf-8", "replace").decode("utf-8") if _has_lone_surrogate(s) else s

    if isinstance(data, str):
        return clean(data)
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                value = node[key]
                if isinstance(value, str):
                    node[key] = clean(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
                if isinstance(key, str) and _has_lone_surrogate(key):
                    node[clean(key)] = node.pop(key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, str):
                    node[i] = clean(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
    return data


# ------------------------------------------------------------------------------------- the request
def content_text(content: Any, where: str, problem: type = InputProblem) -> str:
    """The text of an OpenAI message content: a string, null, or a list of parts whose text parts are
    joined (image and audio parts carry no text to check). Anything else is an error naming ``where``."""
    def fail(message: str) -> Exception:
        return problem(422, message) if problem is InputProblem else problem(message)

    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for n, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
                continue
            if not isinstance(part, dict):
                raise fail(f"{where}[{n}] must be a content part object like {{'type': 'text', 'text': '...'}}, "
                           f"got {type(part).__name__}.")
            kind = part.get("type", "text")
            if kind in TEXT_PART_TYPES or "text" in part:
                text = part.get("text")
                if not isinstance(text, str):
                    raise fail(f"{where}[{n}].text must be a string, got {type(text).__name__}.")
                texts.append(text)
            elif kind == "refusal" and isinstance(part.get("refusal"), str):
                texts.append(part["refusal"])
        return "\n".join(texts)
    raise fail(f"{where} must be a string, null or a list of content parts, got {type(content).__name__}.")


def split_chat(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """The last user turn's text and the history before it (roles the guard knows; ``function`` -> ``tool``)."""
    last = None
    for n in range(len(messages) - 1, -1, -1):
        if messages[n].get("role") == "user":
            last = n
            break
    if last is None:
        raise InputProblem(422, "messages has no user turn: the guard checks a reply against the last user message.")
    user = content_text(messages[last].get("content"), f"messages[{last}].content")
    history = []
    for n, m in enumerate(messages[:last]):
        role = "tool" if m["role"] == "function" else m["role"]
        history.append({"role": role, "content": content_text(m.get("content"), f"messages[{n}].content")})
    for n, m in enumerate(messages[last + 1:], start=last + 1):
        content_text(m.get("content"), f"messages[{n}].content")  # validated, not checked against
    return user, history


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    """``messages`` must be a non-empty list of objects with a known ``role``."""
    if not isinstance(messages, list) or not messages:
        raise InputProblem(422, "messages: must be a non-empty list of {'role', 'content'} objects (OpenAI chat format).")
    for n, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InputProblem(422, f"messages[{n}]: must be an object with 'role' and 'content', got {type(m).__name__}.")
        if m.get("role") not in ROLES:
            role = m.get("role")
            shown = repr(role)[:40] if isinstance(role, str) else type(role).__name__
            raise InputProblem(422, f"messages[{n}].role: must be one of {', '.join(ROLES)}, got {shown}.")
    return messages


def history_of(history: Any, max_chars: int) -> Optional[list[dict[str, str]]]:
    """A ``/v1/guard/check`` history as the guard wants it (text content), or an ``InputProblem``."""
    if history is None:
        return None
    if not isinstance(history, list):
        raise InputProblem(422, f"history: must be a list of {{'role', 'content'}} messages, got {type(history).__name__}.")
    out = []
    for n, m in enumerate(history):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InputProblem(422, f"history[{n}]: must be an object with a string 'role' and a 'content'.")
        if m["role"] not in ROLES:
            raise InputProblem(422, f"history[{n}].role: must be one of {', '.join(ROLES)}.")
        text = content_text(m.get("content"), f"history[{n}].content")
        check_length(text, f"history[{n}].content", max_chars)
        out.append({"role": "tool" if m["role"] == "function" else m["role"], "content": text})
    return out


def check_length(text: str, where: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise InputProblem(413, f"{where} has {len(text):,} characters, over the guard's limit of {max_chars:,}: "
                                "shorten or split it (a text the guard cannot read is not let through).", "text_too_long")


# ------------------------------------------------------------------------------------- the answer
@dataclass
class Draft:
    """One piece of an answer that the guard checks: a choice's content or one of its tool calls."""

    choice: int
    part: str  # "content" | "tool_call"
    text: str
    tool_call: int = -1
    verdict: Optional[Verdict] = field(default=None, repr=False)


def _tool_text(arguments: Any, max_depth: int = 32) -> str:
    """A tool call's arguments as text the guard can read: ``key: value`` lines for every string or number
    in the JSON arguments (what a user would be told), or the raw string when it is not JSON."""
    if isinstance(arguments, str):
        try:
            data = json.loads(arguments, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return arguments
    else:
        data = arguments
    lines: list[str] = []
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        key, node, depth = stack.pop()
        if depth > max_depth:
            continue
        if isinstance(node, dict):
            stack.extend((str(k), v, depth + 1) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((key, v, depth + 1) for v in reversed(node))
        elif isinstance(node, (str, int, float)) and not isinstance(node, bool):
            lines.append(f"{key}: {node}" if key else str(node))
    return "\n".join(lines) if lines else (arguments if isinstance(arguments, str) else "")


def drafts_of(completion: Any, max_chars: int, max_items: int) -> list[Draft]:
    """Every draft of an upstream completion: each choice's content (all text parts) and each tool call's
    (or legacy function call's) arguments. Raises ``UpstreamProblem`` when the answer is not a completion,
    a draft is too long to check, or there are more drafts than ``max_items``."""
    if not isinstance(completion, dict):
        raise UpstreamProblem("the upstream's answer is not a JSON object.")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        raise UpstreamProblem("the upstream's answer has no choices: expected choices[0].message.content.")
    drafts: list[Draft] = []
    for i, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise UpstreamProblem(f"the upstream's choices[{i}] has no message object.")
        text = content_text(message.get("content"), f"choices[{i}].message.content", UpstreamProblem)
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise UpstreamProblem(f"the upstream's choices[{i}].message.tool_calls is not a list.")
        call_texts = []
        for k, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise UpstreamProblem(f"the upstream's choices[{i}].message.tool_calls[{k}] has no function object.")
            call_texts.append(_tool_text(function.get("arguments", "")))
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            call_texts.append(_tool_text(legacy.get("arguments", "")))
        if text or not call_texts:
            drafts.append(Draft(i, "content", text))
        drafts.extend(Draft(i, "tool_call", t, k) for k, t in enumerate(call_texts))
    if len(drafts) > max_items:
        raise UpstreamProblem(f"the upstream's answer has {len(drafts)} drafts (choices and tool calls), over "
                              f"limits.max_items={max_items}: ask for fewer choices.", "too_long_to_check")
    for d in drafts:
        if len(d.text) > max_chars:
            raise UpstreamProblem(f"the upstream's choices[{d.choice}] has {len(d.text):,} characters, over the guard's "
                                  f"limit of {max_chars:,}: it cannot be checked, so it is not let through; lower "
                                  "max_tokens.", "too_long_to_check")
    return drafts


def worst(drafts: list[Draft]) -> Verdict:
    """The verdict that decides the headers: the strongest action, then a failed status, then the risk."""
    return max((d.verdict for d in drafts if d.verdict is not None),
               key=lambda v: (ACTION_RANK.get(v.action, 0), v.status != "ok", v.risk))


def apply_verdicts(completion: dict[str, Any], drafts: list[Draft]) -> None:
    """Put each verdict's reply into the completion: a changed content replaces the choice's content; a
    tool call the guard revises or blocks is withheld (the choice then carries the verdict's text instead)."""
    choices = completion["choices"]
    for d in drafts:
        v = d.verdict
        assert v is not None
        message = choices[d.choice]["message"]
        if d.part == "content":
            if v.changed:
                message["content"] = v.final_text(d.text)
        elif v.changed and v.action in ("revise", "block"):
            message.pop("tool_calls", None)
            message.pop("function_call", None)
            if not message.get("content") or not isinstance(message.get("content"), str):
                message["content"] = v.text
            choices[d.choice]["finish_reason"] = "stop"


def checked_summary(drafts: list[Draft]) -> list[dict[str, Any]]:
    """Per draft: where it is and what the guard decided (no text)."""
    out = []
    for d in drafts:
        v = d.verdict
        assert v is not None
        entry: dict[str, Any] = {"choice": d.choice, "part": d.part, "action": v.action, "status": v.status,
                                 "risk": round(v.risk, 4)}
        if d.part == "tool_call":
            entry["tool_call"] = d.tool_call
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------- streaming
def stream_chunks(completion: dict[str, Any], guardrail: dict[str, Any], chunk_chars: int = 48) -> Iterator[str]:
    """Server-sent events of an already-checked completion: per choice, its role, content pieces, tool calls
    and finish; the verdict rides on the first chunk; then ``[DONE]``."""
    base = {"id": completion.get("id") or f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": completion.get("created") or int(time.time()), "model": completion.get("model") or "upstream"}
    first = True
    for i, choice in enumerate(completion["choices"]):
        message = choice.get("message") or {}
        head = dict(base, choices=[{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        if first:
            head["guardrail"], first = guardrail, False
        yield f"data: {json.dumps(head)}\n\n"
        content = message.get("content")
        text = content if isinstance(content, str) else content_text(content, "content", UpstreamProblem)
        for start in range(0, len(text), chunk_chars):
            piece = dict(base, choices=[{"index": i, "delta": {"content": text[start:start + chunk_chars]}, "finish_reason": None}])
            yield f"data: {json.dumps(piece)}\n\n"
        if message.get("tool_calls"):
            calls = [dict(call, index=k) for k, call in enumerate(message["tool_calls"]) if isinstance(call, dict)]
            yield f"data: {json.dumps(dict(base, choices=[{'index': i, 'delta': {'tool_calls': calls}, 'finish_reason': None}]))}\n\n"
        last = dict(base, choices=[{"index": i, "delta": {}, "finish_reason": choice.get("finish_reason") or "stop"}])
        yield f"data: {json.dumps(last)}\n\n"
    yield "data: [DONE]\n\n"
