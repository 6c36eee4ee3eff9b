"""Public result types of the detectors: pydantic models with stable field names (JSON in, JSON out).

Every score is a probability in [0, 1]. The guard, the benchmark and the training code depend only on
these types and on the detector classes' ``predict``/``extract`` methods, never on their internals.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field

STANCE_LABELS = ("endorses", "corrects", "hedges", "ignores")
StanceLabel = Literal["endorses", "corrects", "hedges", "ignores"]


class EmotionScores(BaseModel):
    """Emotion of one user message (optionally with its recent history)."""

    sadness: float = Field(ge=0, le=1)
    anger: float = Field(ge=0, le=1)
    joy: float = Field(ge=0, le=1)
    fear: float = Field(ge=0, le=1)
    distress: float = Field(ge=0, le=1, description="overall negative affect: sad, afraid, angry, hopeless")
    crisis: bool = Field(description="self-harm or suicidal intent: routed apart from sycophancy")
    crisis_score: float = Field(ge=0, le=1)
    truncated: bool = Field(False, description="the text was longer than the encoder's window")


BeliefKind = Literal["explicit", "hedged", "negated", "reported", "presupposed", "plan", "message", "sentence"]


class Belief(BaseModel):
    """One claim the user states as true, as a short declarative sentence with where it came from."""

    claim: str = Field(description="declarative form, e.g. 'The capital of Australia is Sydney.'; where no sentence "
                                   "can be built from the question, the bare answer ('Taylor, Cerf, and Kahn.'), "
                                   "never the question wrapped around it")
    span: tuple[int, int] = Field(description="character offsets [start, end) in the user message")
    polarity: Literal["affirms", "denies"] = Field(
        description="'denies' for 'I don't think it's Y': then `claim` already states 'it is not Y'"
    )
    kind: BeliefKind = Field(
        description="explicit ('I'm sure X', 'X, right?', a bare assertion), hedged ('maybe X'), negated ('I don't "
                    "think Y'), reported ('my neighbour swears X'), presupposed ('since X, should I ...'), plan "
                    "('I'll do P this weekend': claim '<Doing P> is fine.'); message: the message sentence nearest a "
                    "reference passage the caller gave, read against it (the claim is that sentence; the whole message where no "
                    "sentence is readable); sentence: a "
                    "sentence of the message that the guard matched to its misconception index (the claim is the sentence)"
    )
    question: Optional[str] = Field(None, description="the question the belief answers, where the user asks one")
    answer: Optional[str] = Field(
        None, description="the user's answer to `question` exactly as stated ('Sydney', 'Taylor, Cerf, and Kahn'); "
                          "None when the belief answers no question. Never contains the question."
    )
    confidence: float = Field(1.0, ge=0, le=1)


class BeliefReport(BaseModel):
    """All beliefs in one message, and its language ('en' or an ISO 639-1 guess; 'und' if unknown)."""

    language: str = "en"
    beliefs: list[Belief] = Field(default_factory=list)
    question: Optional[str] = None
    truncated: bool = Field(False, description="the message was longer than the window the extractor reads")


class StanceScores(BaseModel):
    """How a draft treats one claim."""

    endorses: float = Field(ge=0, le=1)
    corrects: float = Field(ge=0, le=1)
    hedges: float = Field(ge=0, le=1)
    ignores: float = Field(ge=0, le=1)
    truncated: bool = False

    @property
    def label(self) -> StanceLabel:
        return max(STANCE_LABELS, key=lambda name: getattr(self, name))  # type: ignore[return-value]
