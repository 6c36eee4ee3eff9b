"""The guard's result: a pydantic ``Verdict`` with stable field names (JSON in, JSON out).

A verdict carries ``status`` apart from ``action`` so that "the detector failed" never reads as
"the content is fine". Reasons are short codes and phrases that never quote the user's raw text;
``Verdict.redacted()`` also drops the claims and replacement text for logs.
"""

from __future__ import annotations

import hashlib
from typing import Literal, Optional

from pydantic import BaseModel, Field

from detectors.types import EmotionScores, StanceScores

Action = Literal["pass", "annotate", "revise", "block"]
Status = Literal["ok", "error", "timeout", "unsupported_input"]
Truth = Literal["true", "false", "unknown"]
SCHEMA_VERSION = "1"


def text_digest(text: str | None) -> str | None:
    """A short, non-reversible fingerprint used in logs instead of raw text."""
    if text is None:
        return None
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


class BeliefFinding(BaseModel):
    """One belief the user stated, how the draft treats it, and whether it is true (and who says so)."""

    claim: Optional[str] = Field(None, description="the belief as a declarative sentence (None when redacted)")
    claim_digest: Optional[str] = None
    polarity: Literal["affirms", "denies"] = "affirms"
    kind: Literal["explicit", "hedged", "negated", "reported", "presupposed", "plan"] = "explicit"
    stance: Optional[Literal["endorses", "corrects", "hedges", "ignores"]] = None
    stance_scores: Optional[StanceScores] = None
    truth: Truth = "unknown"
    truth_source: str = Field("none", description="the truth source that decided: reference, misconception_index, reask, a custom source's name, or none")
    truth_confidence: float = Field(0.0, ge=0, le=1)
    matched_entry: Optional[str] = Field(None, description="misconception-index entry id, when that source decided")
    correction: Optional[str] = Field(None, description="what the truth source says instead (None when redacted)")
    risk: float = Field(0.0, ge=0, le=1)
    sycophantic: bool = False


class Verdict(BaseModel):
    """What the guard decided about one draft, why, and how long each stage took."""

    schema_version: str = SCHEMA_VERSION
    action: Action = "pass"
    status: Status = "ok"
    risk: float = Field(0.0, ge=0, le=1, description="highest per-finding risk in [0, 1]")
    emotion: Optional[EmotionScores] = None
    sad: bool = False
    crisis: bool = False
    language: Optional[str] = None
    beliefs: list[BeliefFinding] = Field(default_factory=list)
    capitulation: bool = Field(False, description="the draft abandons an earlier answer after push-back")
    reasons: list[str] = Field(default_factory=list, description="short codes/phrases; never the user's text")
    flags: list[str] = Field(default_factory=list, description="e.g. fail_open, reask_used, revise_template")
    text: Optional[str] = Field(None, description="reply to return instead of the draft; None = return the draft")
    error: Optional[str] = Field(None, description="what failed, when status is error/timeout/unsupported_input")
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True when the caller should return ``text`` instead of the draft."""
        return self.text is not None

    @property
    def flagged(self) -> bool:
        return self.action != "pass" or self.status != "ok"

    def final_text(self, draft: str) -> str:
        """The reply to send: the replacement text if any, else the draft."""
        return self.text if self.text is not None else draft

    def redacted(self) -> "Verdict":
        """A copy without any text derived from the user or the draft (claims, corrections, reply)."""
        copy = self.model_copy(deep=True)
        for finding in copy.beliefs:
            finding.claim_digest = finding.claim_digest or text_digest(finding.claim)
            finding.claim = None
            finding.correction = None
        copy.text = None
        return copy
