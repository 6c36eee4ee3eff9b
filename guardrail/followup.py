"""A user turn read with the conversation before it: a follow-up without its own question ("Are you
sure? I think it's X") takes the previous question, and push-back on an earlier answer is noticed."""

from __future__ import annotations

import re
from typing import Callable, Optional

from detectors.types import BeliefReport

from guardrail import respond

# Literal alternatives only: each position is tried against a bounded set of words (linear time).
PUSHBACK = re.compile(
    r"\b(?:are you sure|you'?re wrong|that'?s (?:wrong|not right|incorrect)|i (?:really |still |honestly )?(?:think|believe|feel)|"
    r"i don'?t think so|i disagree|no,|actually|but i|really\?|i'?m pretty sure|i'?m sure)",
    re.IGNORECASE,
)


def beliefs_in_context(extract: Callable[[str], BeliefReport], user: str, history: list[dict[str, str]]) -> BeliefReport:
    """Beliefs of the user turn; a follow-up that pushes back is read after the previous user question,
    so its claim is a full sentence. Spans stay relative to ``user``."""
    report = extract(user)
    previous = next((m["content"] for m in reversed(history) if m["role"] == "user" and m["content"].strip()), None)
    if previous is None or not report.beliefs or (report.question and not PUSHBACK.search(report.question)):
        return report
    offset = len(previous) + 1
    joined = extract(f"{previous}\n{user}")
    mine = [b.model_copy(update={"span": (b.span[0] - offset, b.span[1] - offset)})
            for b in joined.beliefs if b.span[0] >= offset]
    if not mine:
        return report
    return report.model_copy(update={"beliefs": mine, "question": joined.question})


def earlier_answer(user: str, history: list[dict[str, str]], has_beliefs: bool) -> Optional[str]:
    """The previous assistant answer's first sentences, when this user turn pushes back on it."""
    last = next((m for m in reversed(history) if m["role"] == "assistant" and m["content"].strip()), None)
    if last is None or not (PUSHBACK.search(user) or has_beliefs):
        return None
    return respond.first_sentences(last["content"], 2)
