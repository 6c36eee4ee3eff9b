"""The guard's result: a pydantic ``Verdict`` with stable field names (JSON in, JSON out).

A verdict carries ``status`` apart from ``action`` so that "the detector failed" never reads as
"the content is fine". Reasons are short codes and phrases that never quote the user's raw text;
``Verdict.redacted()`` also drops the claims and replacement text for logs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Callable, Literal, Optional

from pydantic import BaseModel, Field

from detectors.types import BeliefKind, EmotionScores, StanceScores

Action = Literal["pass", "annotate", "revise", "block"]
Status = Literal["ok", "error", "timeout", "unsupported_input"]
Truth = Literal["true", "false", "unknown"]
SCHEMA_VERSION = "1"


def text_digest(text: str | None, key: bytes | None = None) -> str | None:
    """A fingerprint used instead of raw text. Without ``key`` it is a short unsalted SHA-256, which anyone
    can recompute to confirm a guessed text: fine in a reply to the caller who sent the text, not in a log.
    With ``key`` it is HMAC-SHA256 (see ``keyed_digest``)."""
    if text is None:
        return None
    if key is not None:
        return keyed_digest(text, key)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def keyed_digest(text: str | None, key: bytes) -> str | None:
    """HMAC-SHA256 of ``text`` under a per-deployment secret: equal texts match within one deployment, and
    without the key nobody can confirm a guessed message against the log."""
    if text is None:
        return None
    if not key:
        raise ValueError("keyed_digest needs a non-empty key: use guardrail.audit.load_or_create_key(path).")
    return hmac.new(key, text.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


_ERROR_CLASS = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


def error_code(error: str | None, status: str) -> str | None:
    """The short, text-free part of an error message: its exception class ("RuntimeError: …" -> "RuntimeError")
    or else the status ("timeout"). What follows the class may quote input or secrets."""
    if error is None:
        return None
    head, sep, _ = error.partition(":")
    return head if sep and _ERROR_CLASS.fullmatch(head) else status


class BeliefFinding(BaseModel):
    """One belief the user stated, how the draft treats it, and whether it is true (and who says so)."""

    claim: Optional[str] = Field(None, description="the belief as a declarative sentence (None when redacted)")
    claim_digest: Optional[str] = None
    polarity: Literal["affirms", "denies"] = "affirms"
    kind: BeliefKind = "explicit"
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

    def redacted(self, digest: Optional[Callable[[str], Optional[str]]] = None) -> "Verdict":
        """A copy without any text derived from the user, the draft or a failing detector (claims,
        corrections, reply, the error message: only its class or code stays). ``digest`` replaces the claim
        digests (an audit log passes its keyed digest, so a guessed claim cannot be confirmed)."""
        copy = self.model_copy(deep=True)
        for finding in copy.beliefs:
            if digest is not None and finding.claim is not None:
                finding.claim_digest = digest(finding.claim)
            elif digest is not None:
                finding.claim_digest = None  # an unkeyed digest must not reach a log either
            else:
                finding.claim_digest = finding.claim_digest or text_digest(finding.claim)
            finding.claim = None
            finding.correction = None
        copy.text = None
        copy.error = error_code(copy.error, copy.status)
        return copy
