"""Text validation and normalisation: the one place that decides what input text is acceptable."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

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


# A run of . ! ? is tried only from its first character (the lookbehind) and never given back (possessive):
# without both, "!" * n before a letter rescans the run from every position (quadratic).
_SENTENCE_BREAK = re.compile(r"(?<![.!?])[.!?]++(?=\s|$)|\n+")


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` moved inward past white space, so ``text[start:end]`` is the span's text stripped."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


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


# --- bounded windows: what a detector reads of a long text ---
SEPARATOR = "\n"  # between a window's head and tail: a sentence break, so no sentence spans the cut
SNAP = 300  # how far a cut may move to land on a sentence break (then a space) instead of inside a word
_BREAK_IN_SLICE = re.compile(r"[.!?]\s|\n")


@dataclass(frozen=True)
class Window:
    """The first and last characters of a long text, cut at sentence breaks, as one string to read.

    A detector reads ``text`` (``head + SEPARATOR + tail``, or the whole text when it is short) so its
    cost is bounded by the window, not the input; offsets in ``text`` map back with ``to_original``."""

    text: str
    head_end: int  # the head is original[:head_end]
    tail_start: int  # the tail is original[tail_start:]
    truncated: bool  # True when characters between the head and the tail were not read

    def to_original(self, i: int) -> int:
        """Offset in the original text of offset ``i`` in ``self.text``."""
        if not self.truncated or i <= self.head_end:
            return i
        if i < self.head_end + len(SEPARATOR):
            return self.tail_start
        return i - self.head_end - len(SEPARATOR) + self.tail_start

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        """A span of ``self.text`` in original offsets; a span across the cut is clipped to the head."""
        if self.truncated and start < self.head_end < end:
            end = self.head_end
        a = self.to_original(start)
        return a, max(a, self.to_original(end))


def first_and_last(items: list, n: int) -> list:
    """At most ``n`` of ``items``: all of them, or the first half and the last half, where a message's
    belief, question and grief sit."""
    return items if len(items) <= n else items[: n // 2] + items[-(n - n // 2):]


def _cut_after_break(text: str, lo: int, hi: int, last: bool) -> int | None:
    """Offset just after the last (or first) sentence break in text[lo:hi], else after a space, else None."""
    piece = text[lo:hi]
    breaks = list(_BREAK_IN_SLICE.finditer(piece))
    if breaks:
        return lo + (breaks[-1] if last else breaks[0]).end()
    space = piece.rfind(" ") if last else piece.find(" ")
    return lo + space + 1 if space >= 0 else None


def window(text: str, head: int, tail: int) -> Window:
    """The first ``head`` and last ``tail`` characters of ``text`` (cut at sentence breaks within
    ``SNAP`` characters), or the whole text when it is no longer than ``head + tail``."""
    n = len(text)
    if n <= head + tail:
        return Window(text, n, n, False)
    head_end = _cut_after_break(text, max(0, head - SNAP), head, last=True) if head else 0
    head_end = head if head_end is None else head_end
    tail_start = _cut_after_break(text, n - tail, min(n, n - tail + SNAP), last=False) if tail else n
    tail_start = n - tail if tail_start is None else tail_start
    return Window(text[:head_end] + SEPARATOR + text[tail_start:], head_end, tail_start, True)
