"""What ``check`` accepts: the one place that turns caller arguments into a clean ``CheckItem`` or raises
``GuardInputError`` naming the argument and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from detectors.text import MAX_CHARS, InvalidTextError, validate_text

from guardrail.reference import Reference

ROLES = ("system", "user", "assistant", "tool", "developer")
ITEM_KEYS = ("user_message", "draft", "history", "reference")


class GuardInputError(InvalidTextError):
    """An argument of ``check`` has the wrong type or shape; the message names it and the fix."""


@dataclass
class CheckItem:
    user: str
    draft: str
    history: list[dict[str, str]] = field(default_factory=list)
    reference: Optional[Reference] = None
    oversized: list[str] = field(default_factory=list)  # names of texts cut to their window


def parse_item(item: Any, n: Optional[int], *, answer_max_words: int = 12) -> CheckItem:
    """A dict (user_message, draft, history, reference) or a (user_message, draft[, reference]) tuple.
    ``n`` is the item's place in a batch (None for a single check). Text over ``MAX_CHARS`` is cut to its
    window (the end of the user message, the start of the draft) and named in ``oversized``; the policy's
    ``on_oversize`` says what happens next."""
    where = "" if n is None else f" (item {n})"
    if isinstance(item, dict):
        unknown = set(item) - set(ITEM_KEYS)
        if unknown:
            raise GuardInputError(f"check_batch item {n} has unknown keys {sorted(unknown)}: use {', '.join(ITEM_KEYS)}.")
        user, draft = item.get("user_message"), item.get("draft")
        history, reference = item.get("history"), item.get("reference")
    elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
        user, draft = item[0], item[1]
        reference = item[2] if len(item) == 3 else None
        history = None
    else:
        raise GuardInputError(f"check_batch item {n} must be a dict or a (user_message, draft[, reference]) tuple, "
                              f"got {type(item).__name__}.")
    out = CheckItem(user="", draft="")
    texts = {}
    for name, value in (("user_message", user), ("draft", draft)):
        if isinstance(value, str) and len(value) > MAX_CHARS:
            value = value[-MAX_CHARS:] if name == "user_message" else value[:MAX_CHARS]
            out.oversized.append(name)
        texts[name] = _text(value, f"{name}{where}")
    out.user, out.draft = texts["user_message"], texts["draft"]
    try:
        out.reference = Reference.coerce(reference, answer_max_words=answer_max_words)
    except TypeError as exc:
        raise GuardInputError(f"{exc}{where}") from None
    out.history = parse_history(history, where)
    return out


def parse_history(history: Any, where: str = "") -> list[dict[str, str]]:
    """Earlier turns as ``{'role', 'content'}`` dicts with text content (OpenAI text parts are joined)."""
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise GuardInputError(f"history{where} must be a list of {{'role', 'content'}} messages, got {type(history).__name__}.")
    out = []
    for n, message in enumerate(history):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise GuardInputError(
                f"history{where}[{n}] must be a dict with 'role' and 'content' (like an OpenAI chat message), "
                f"got {type(message).__name__}.")
        role = message["role"]
        if role not in ROLES:
            raise GuardInputError(f"history{where}[{n}]['role'] must be one of {', '.join(ROLES)}, got {role!r}.")
        content = message_text(message["content"], f"history{where}[{n}]['content']")
        out.append({"role": role, "content": content[-MAX_CHARS:]})
    return out


def message_text(content: Any, name: str) -> str:
    """A message's text: a str, None (empty), or OpenAI content parts whose text parts are joined."""
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for k, part in enumerate(content):
            if not isinstance(part, dict):
                raise GuardInputError(f"{name}[{k}] must be a content part dict like {{'type': 'text', 'text': ...}}, "
                                      f"got {type(part).__name__}.")
            if part.get("type", "text") == "text":
                parts.append(_text(part.get("text", ""), f"{name}[{k}]['text']"))
        return "\n".join(parts)
    return _text(content, name)


def _text(value: Any, name: str) -> str:
    try:
        return validate_text(value, name, max_chars=10 * MAX_CHARS)
    except InvalidTextError as exc:
        raise GuardInputError(str(exc)) from None
