"""Text validation and normalisation: the one place that decides what input text is acceptable."""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 200_000


class InvalidTextError(TypeError, ValueError):
    """Input text has the wrong type or cannot be used; the message says what to do."""


def validate_text(value: object, name: str = "text", *, allow_empty: bool = True, max_chars: int = MAX_CHARS) -> str:
    """Return ``value`` as a clean str or raise a message naming the input and the fix."""
    if isinstance(value, (bytes, bytearray)):
        raise InvalidTextError(f"{name} must be a str, got bytes: decode it first (e.g. value.decode('utf-8')).")
    if not isinstance(value, str):
        raise InvalidTextError(f"{name} must be a str, got {type(value).__name__}.")
    if not allow_empty and not value.strip():
        raise InvalidTextError(f"{name} is empty: pass the text to check.")
    if len(value) > max_chars:
        raise InvalidTextError(
            f"{name} has {len(value):,} characters, over the limit of {max_chars:,}: split it or raise max_chars."
        )
    return normalise(value)


def normalise(text: str) -> str:
    """NFC form, lone surrogates replaced, NULs dropped: what every detector sees."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text
    return unicodedata.normalize("NFC", text).replace("\x00", "")


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_SENTENCE_BREAK = re.compile(r"[.!?]+(?=\s|$)|\n+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence: split after . ! ? (before a space or the end) and at newlines."""
    spans, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        end = match.end()
        if text[start:end].strip():
            spans.append((start, end))
        start = end
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans
