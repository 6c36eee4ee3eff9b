"""What the caller knows about the right answer (``Reference``) and the short-answer matching the
reference truth source uses: normalised whole-word containment with negation handled.

Matching words is a stop-gap that the answer judge (the judgement issue) replaces; it lives here, in one
place, so that nothing else grows its own copy.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from detectors.text import InvalidTextError, validate_text

_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|cannot)\b|n't\b", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(?:the|a|an)\b")
# "X, not Y" / "rather than Y" / "instead of Y": a contrast tail that does not flip the main clause.
# [^,.;]+ is bounded by the next separator, so each match is linear in what it consumes.
_CONTRAST = re.compile(r"[,;] ?(?:and |but )?not [^,.;]+|\brather than [^,.;]+|\binstead of [^,.;]+", re.IGNORECASE)
_AUX_NT = re.compile(r"\b(do|does|did|is|are|was|were|can|could|will|would|should|has|have)n't\b", re.IGNORECASE)
_NOT = re.compile(r" (?:not|never)\b", re.IGNORECASE)
_FIRST_SENTENCE = re.compile(r"[.!?](?=\s)")


def negation_parity(text: str) -> int:
    """1 when the sentence carries an odd number of negation cues (so its meaning is flipped).
    A contrast tail ("X, not Y", "rather than Y") does not flip the main clause and is ignored."""
    return len(_NEGATION.findall(_CONTRAST.sub("", " ".join(text.split())))) % 2


def norm_answer(text: str) -> str:
    """Lower-case, punctuation and articles removed, spaces collapsed: for answer matching."""
    text = _PUNCT.sub(" ", text.lower())
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains_answer(text: str, answer: str) -> bool:
    """Whole-word containment of a normalised answer in a normalised text."""
    a = norm_answer(answer)
    if not a:
        return False
    return f" {a} " in f" {norm_answer(text)} "


def affirmative(claim: str) -> str:
    """The claim with its first negation removed ("X is not Y" -> "X is Y"), for matching."""
    out = _AUX_NT.sub(r"\1", claim, count=1)
    if out == claim:
        out = _NOT.sub("", " ".join(claim.split()), count=1)
    return out


class Reference(BaseModel):
    """What the caller knows: correct answers, known wrong answers, or a passage of context."""

    model_config = ConfigDict(extra="forbid")

    correct: list[str] = Field(default_factory=list)
    incorrect: list[str] = Field(default_factory=list)
    context: Optional[str] = None

    @field_validator("correct", "incorrect")
    @classmethod
    def _clean_answers(cls, value: list[str]) -> list[str]:
        return [validate_text(v, "reference answer") for v in value if isinstance(v, str) and v.strip()]

    @field_validator("context")
    @classmethod
    def _clean_context(cls, value: Optional[str]) -> Optional[str]:
        return validate_text(value, "reference context") if value is not None else None

    @classmethod
    def coerce(cls, value: Any, *, answer_max_words: int = 12) -> Optional["Reference"]:
        """Accept a short answer string (at most ``answer_max_words`` words), a passage, a list of correct
        answers, a dict (keys correct, incorrect, context) or a Reference. Raises ``TypeError`` with the fix."""
        if value is None or isinstance(value, Reference):
            return value
        try:
            if isinstance(value, str):
                value = validate_text(value, "reference")
                if not value.strip():
                    return None
                return cls(correct=[value]) if len(value.split()) <= answer_max_words else cls(context=value)
            if isinstance(value, (list, tuple)):
                if not all(isinstance(v, str) and v.strip() for v in value):
                    raise TypeError("reference list must hold only non-empty strings (the correct answers).")
                return cls(correct=list(value)) if value else None
            if isinstance(value, dict):
                return cls(**value)
        except InvalidTextError as exc:
            raise TypeError(str(exc)) from None
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(map(str, err["loc"])) or "reference"
            raise TypeError(f"reference {where}: {err['msg']}; a reference dict takes the keys correct, incorrect, "
                            "context.") from None
        raise TypeError(f"reference must be a str, a list of str, a dict or a Reference, got {type(value).__name__}.")

    def correction(self) -> Optional[str]:
        """One sentence to correct a false belief with."""
        if self.correct:
            return f"The correct answer is {self.correct[0].strip().rstrip('.')}."
        if self.context:
            text = self.context.strip()
            m = _FIRST_SENTENCE.search(text)
            return (text[: m.end()] if m else text)[:300]
        return None
