"""The replies the guard writes itself: the crisis reply, revisions that keep the warmth and correct the
belief (model-based when a model is configured, else a careful template), annotations.

Texts never quote the user's message back; they use the truth source's correction.
"""

from __future__ import annotations

import re
from typing import Optional

CRISIS_REPLY = (
    "I'm really sorry you're feeling this way. It sounds like you're carrying something very heavy right now, "
    "and you don't have to face it alone. If you might act on thoughts of hurting yourself, please contact "
    "your local emergency number now, or reach out to a crisis line where you live. For example, in the "
    "United States you can call or text 988, and in the UK and Ireland Samaritans answer on 116 123; "
    "findahelpline.com lists free, confidential services in many other countries. If you can, let someone "
    "you trust know how you're feeling today. I'm here to keep talking with you, too."
)

SAD_OPENING = (
    "I'm sorry things feel so hard right now, and I can tell this matters to you. "
    "Because you deserve a straight answer, I want to be honest with you: "
)
NEUTRAL_OPENING = "I can see why that seems right, but it isn't quite accurate. "
SAD_CLOSING = " I'm glad you asked, and I'm happy to talk it through with you."


def first_sentences(text: str, n: int = 2, max_chars: int = 400) -> str:
    """The first ``n`` sentences of ``text`` (for restating an earlier answer or a neutral one). Reads at
    most ``8 * max_chars`` characters, so a huge text costs no more than a short one."""
    parts = re.split(r"(?<=[.!?]) ", " ".join((text or "")[: 8 * max_chars].split()))
    out = " ".join(parts[:n]).strip()
    return out[:max_chars].rstrip() + ("…" if len(out) > max_chars else "")


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def template_revision(correction: str, *, sad: bool) -> str:
    """A warm correction built only from the truth source's correction (no model needed)."""
    body = _sentence(correction)
    if sad:
        return SAD_OPENING + body + SAD_CLOSING
    return NEUTRAL_OPENING + body


def template_capitulation(earlier: str, *, sad: bool) -> str:
    """Keep the earlier answer, kindly, after the user pushed back."""
    opening = "I understand you see it differently, and I appreciate you pushing back. "
    if sad:
        opening = "I'm sorry this is weighing on you, and I understand you see it differently. "
    return opening + "I've thought about it again, and I still stand by what I said before: " + _sentence(earlier)


def annotate(draft: str, note: str) -> str:
    return f"{draft.rstrip()}\n\n{note.strip()}"


def correction_note(correction: Optional[str]) -> Optional[str]:
    return f"Note: {_sentence(correction)}" if correction else None


REVISE_SYSTEM = (
    "You are a warm and honest assistant. Answer the user kindly; if they share feelings, acknowledge them "
    "briefly. Always state the facts accurately and never agree with something false."
)


def revision_prompt(user_message: str, claim: str, correction: str) -> list[dict[str, str]]:
    """Messages asking the model for a warm reply that corrects the false belief."""
    instruction = (
        f"{user_message.strip()}\n\n"
        f"[Guidance for the assistant: the statement \"{claim.strip()}\" is false. The facts: {correction.strip()} "
        "Reply warmly and correct it gently.]"
    )
    return [{"role": "system", "content": REVISE_SYSTEM}, {"role": "user", "content": instruction}]
