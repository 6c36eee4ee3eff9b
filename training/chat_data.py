"""Chat data for supervised fine-tuning, in the three common formats, as one shape: a list of
OpenAI-style messages ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``.

Accepted (JSON list, or JSONL with one record per line; the format is detected per record):
- ShareGPT: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}, ...]}``
- Alpaca / LIMA: ``{"instruction", "input", "output", "history": [[user, assistant], ...], "system"?}``
- OpenAI: ``{"messages": [{"role", "content"}, ...]}``

Malformed records raise ``ChatDataError`` naming the file, the record and the fix; nothing is dropped
silently (``skip_invalid=True`` drops them and counts them in ``LoadReport``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel

from detectors.text import InvalidTextError, validate_text

Message = dict[str, str]
Conversation = list[Message]
Format = Literal["auto", "sharegpt", "alpaca", "openai"]

_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}


class ChatDataError(ValueError):
    """A chat-data file or record cannot be read; the message names where and how to fix it."""


class LoadReport(BaseModel):
    """What a load did: how many records were read, kept and skipped, and in which formats."""

    path: str
    records: int = 0
    conversations: int = 0
    assistant_turns: int = 0
    skipped: int = 0
    formats: dict[str, int] = {}
    errors: list[str] = []


def detect_format(record: Any) -> str:
    """The format of one record, or a ChatDataError saying which keys were expected."""
    if not isinstance(record, dict):
        raise ChatDataError(f"expected a JSON object, got {type(record).__name__}")
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        return "openai"
    if "instruction" in record or "output" in record:
        return "alpaca"
    raise ChatDataError(
        f"unknown record keys {sorted(record)[:6]}: expected 'conversations' (ShareGPT), "
        "'messages' (OpenAI) or 'instruction'/'output' (Alpaca/LIMA)"
    )


def _text(value: Any, what: str) -> str:
    try:
        return validate_text(value, what)
    except InvalidTextError as exc:
        raise ChatDataError(str(exc)) from None


def _from_sharegpt(record: dict) -> Conversation:
    turns = record["conversations"]
    if not isinstance(turns, list):
        raise ChatDataError("'conversations' must be a list of {'from', 'value'} turns")
    messages: Conversation = []
    if record.get("system"):
        messages.append({"role": "system", "content": _text(record["system"], "system")})
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise ChatDataError(f"turn {i} must be an object with 'from' and 'value'")
        role = _SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise ChatDataError(f"turn {i} has unknown speaker {turn['from']!r}: use human/gpt/system")
        messages.append({"role": role, "content": _text(turn["value"], f"turn {i} value")})
    return messages


def _from_alpaca(record: dict) -> Conversation:
    messages: Conversation = []
    if record.get("system"):
        messages.append({"role": "system", "content": _text(record["system"], "system")})
    history = record.get("history") or []
    if not isinstance(history, list):
        raise ChatDataError("'history' must be a list of [user, assistant] pairs")
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ChatDataError(f"history item {i} must be a [user, assistant] pair")
        messages.append({"role": "user", "content": _text(pair[0], f"history[{i}][0]")})
        messages.append({"role": "assistant", "content": _text(pair[1], f"history[{i}][1]")})
    if "output" not in record:
        raise ChatDataError("an Alpaca/LIMA record needs 'output' (the assistant's answer)")
    instruction = _text(record.get("instruction", ""), "instruction")
    extra = _text(record.get("input", "") or "", "input")
    prompt = f"{instruction}\n\n{extra}" if instruction and extra else (instruction or extra)
    messages.append({"role": "user", "content": prompt})
    messages.append({"role": "assistant", "content": _text(record["output"], "output")})
    return messages


def _from_openai(record: dict) -> Conversation:
    turns = record["messages"]
    if not isinstance(turns, list):
        raise ChatDataError("'messages' must be a list of {'role', 'content'} objects")
    messages: Conversation = []
    for i, m in enumerate(turns):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ChatDataError(f"message {i} must be an object with 'role' and 'content'")
        if m["role"] not in ("system", "user", "assistant"):
            raise ChatDataError(f"message {i} has role {m['role']!r}: use system/user/assistant")
        messages.append({"role": m["role"], "content": _text(m["content"], f"message {i} content")})
    return messages


_PARSERS = {"sharegpt": _from_sharegpt, "alpaca": _from_alpaca, "openai": _from_openai}


def validate_conversation(messages: Conversation) -> Conversation:
    """Check the turn order: optional system first, then user/assistant alternating, ending on assistant."""
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if not body:
        raise ChatDataError("the conversation has no user/assistant turns")
    for i, m in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if m["role"] != expected:
            raise ChatDataError(f"turn {i} is {m['role']!r} where {expected!r} was expected (turns must alternate)")
        if not m["content"].strip():
            raise ChatDataError(f"turn {i} ({m['role']}) is empty")
    if body[-1]["role"] != "assistant":
        raise ChatDataError("the conversation must end with an assistant turn (the training target)")
    return messages


def parse_record(record: Any, fmt: Format = "auto") -> Conversation:
    """One record in any supported format as a validated message list."""
    kind = detect_format(record) if fmt == "auto" else fmt
    if kind not in _PARSERS:
        raise ChatDataError(f"unknown format {fmt!r}: use auto, sharegpt, alpaca or openai")
    if not isinstance(record, dict):
        raise ChatDataError(f"expected a JSON object, got {type(record).__name__}")
    return validate_conversation(_PARSERS[kind](record))


def _read_records(path: Path) -> list[Any]:
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ChatDataError(f"{path} is not UTF-8 text: re-encode it as UTF-8") from None
    stripped = raw.lstrip()
    if not stripped:
        raise ChatDataError(f"{path} is empty: expected a JSON list or JSONL records")
    if stripped[0] == "[":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ChatDataError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}): fix or re-export it") from None
        return data
    records = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ChatDataError(f"{path} line {lineno} is not valid JSON ({exc.msg}): each JSONL line must be one object") from None
    return records


def load_conversations(
    path: str | Path,
    *,
    fmt: Format = "auto",
    limit: int | None = None,
    max_turns: int | None = 20,
    skip_invalid: bool = False,
) -> tuple[list[Conversation], LoadReport]:
    """Read a chat-data file into message lists; conversations are cut to ``max_turns`` messages
    (the paper cut to 20), always ending on an assistant turn."""
    path = Path(path)
    if not path.is_file():
        raise ChatDataError(f"{path} does not exist: pass a JSON or JSONL chat-data file")
    records = _read_records(path)
    report = LoadReport(path=str(path), records=len(records))
    out: list[Conversation] = []
    for i, record in enumerate(records):
        try:
            kind = detect_format(record) if fmt == "auto" else fmt
            conv = parse_record(record, kind)  # type: ignore[arg-type]
        except ChatDataError as exc:
            if not skip_invalid:
                raise ChatDataError(f"{path} record {i}: {exc} (or pass skip_invalid=True to drop bad records)") from None
            report.skipped += 1
            if len(report.errors) < 20:
                report.errors.append(f"record {i}: {exc}")
            continue
        conv = truncate_turns(conv, max_turns)
        report.formats[kind] = report.formats.get(kind, 0) + 1
        out.append(conv)
        if limit is not None and len(out) >= limit:
            break
    report.conversations = len(out)
    report.assistant_turns = sum(1 for c in out for m in c if m["role"] == "assistant")
    return out, report


def truncate_turns(conv: Conversation, max_turns: int | None) -> Conversation:
    """Keep at most ``max_turns`` user/assistant messages (plus a system prompt), ending on the assistant."""
    if not max_turns:
        return conv
    system = conv[:1] if conv[0]["role"] == "system" else []
    body = conv[len(system) :][:max_turns]
    if body and body[-1]["role"] != "assistant":
        body = body[:-1]
    return system + body


def save_conversations(path: str | Path, conversations: Iterable[Conversation]) -> Path:
    """Write conversations as OpenAI-format JSONL (``{"messages": [...]}`` per line), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for conv in conversations:
            fh.write(json.dumps({"messages": conv}, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def single_turn(conversations: Iterable[Conversation], *, max_chars: int | None = None) -> list[Conversation]:
    """The first user/assistant exchange of each conversation (what the small preset trains on),
    optionally keeping only those whose user turn is at most ``max_chars`` long."""
    out = []
    for conv in conversations:
        body = [m for m in conv if m["role"] != "system"]
        if len(body) >= 2 and (max_chars is None or len(body[0]["content"]) <= max_chars):
            out.append(body[:2])
    return out
