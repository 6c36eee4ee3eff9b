"""The decision: a pure function of the findings, the user's state and the policy.

No model, no I/O, no clock: ``decide(findings, sad=..., policy=...)`` is tested with tables of hand-built
findings. Every number it uses is a ``Policy`` field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from detectors.types import Belief, StanceScores

from guardrail.policy import Policy
from guardrail.reference import Reference
from guardrail.truth import UNKNOWN, TruthResult
from guardrail.verdict import Action, BeliefFinding, text_digest

SEVERITY = {"pass": 0, "annotate": 1, "revise": 2, "block": 3}


@dataclass(eq=False)  # compared by identity: two users' identical claims are two findings
class Finding:
    """One belief of one check, with everything the stages learnt about it."""

    belief: Belief
    question: Optional[str] = None
    reference: Optional[Reference] = None  # this check's reference, never another item's
    truth: TruthResult = UNKNOWN
    stance: Optional[StanceScores] = None  # how the draft treats the claim
    read_with_truth: bool = False  # the stance was read with the refuting truth as the other side
    earlier: Optional[StanceScores] = None  # how the previous assistant answer treated it (push-back)
    cross_check: Optional[str] = None  # word evidence: "states_truth" | "repeats_claim" | None


@dataclass(frozen=True)
class PushBack:
    """The user pushed back on an earlier answer: how the draft relates to that answer."""

    earlier: str  # the earlier answer's first sentences
    stance: Optional[StanceScores] = None  # the draft toward the earlier answer
    takes_up_pushed_answer: bool = False  # word evidence: the draft takes the pushed answer and drops its own


@dataclass
class Decision:
    action: Action = "pass"
    risk: float = 0.0
    beliefs: list[BeliefFinding] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    capitulation: bool = False
    claim: Optional[str] = None  # the belief a revision corrects
    correction: Optional[str] = None  # what a revision or annotation says instead


def endorsement(stance: Optional[StanceScores], policy: Policy) -> float:
    """How much a draft goes along with a claim: endorsing, plus part of hedging."""
    if stance is None:
        return 0.0
    return min(1.0, stance.endorses + policy.hedge_weight * stance.hedges)


def assess(f: Finding, policy: Policy) -> BeliefFinding:
    """The public record of one finding, with its risk in [0, 1]."""
    endorse = endorsement(f.stance, policy)
    truth = f.truth
    if truth.truth == "false" and f.cross_check == "states_truth":
        endorse *= policy.states_truth_factor
    elif truth.truth == "false" and f.cross_check == "repeats_claim":
        endorse = max(endorse, policy.repeats_claim_floor)
    if truth.truth == "false":
        risk = endorse * min(1.0, policy.false_risk_base + truth.confidence)
    elif truth.truth == "unknown":
        risk = endorse * policy.unknown_risk_factor
    else:
        risk = 0.0
    b = f.belief
    return BeliefFinding(
        claim=b.claim, claim_digest=text_digest(b.claim), polarity=b.polarity, kind=b.kind,
        stance=f.stance.label if f.stance else None, stance_scores=f.stance,
        truth=truth.truth, truth_source=truth.source if truth.truth != "unknown" else "none",  # type: ignore[arg-type]
        truth_confidence=round(min(1.0, max(0.0, truth.confidence)), 4), matched_entry=truth.entry_id,
        correction=truth.correction if truth.truth == "false" else None, risk=round(min(1.0, max(0.0, risk)), 4),
    )


def decide(findings: Sequence[Finding], *, sad: bool, policy: Policy, push_back: Optional[PushBack] = None) -> Decision:
    """The action for one draft. False beliefs the draft goes along with take the policy's action;
    beliefs of unknown truth may annotate (sad users) but never block; a draft that abandons its earlier
    answer after push-back is a capitulation. ``revise`` needs something to say instead: without a
    correction it falls back to ``annotate``."""
    d = Decision()
    threshold = policy.risk_threshold_for(sad)
    for f in findings:
        finding = assess(f, policy)
        d.beliefs.append(finding)
        if finding.risk < threshold:
            continue
        if finding.truth == "false":
            finding.sycophantic = True
            d.reasons.append(f"draft {finding.stance or 'endorses'} a belief that the {finding.truth_source} says is false")
            act = policy.on_false_endorsement
            if d.correction is None and finding.correction:
                d.claim, d.correction = f.belief.claim, finding.correction
        elif finding.truth == "unknown" and (sad or policy.annotate_unknown_when_not_sad):
            d.reasons.append("sad user's belief of unknown truth is endorsed: annotated, not blocked")
            act = policy.on_unknown_endorsement
        else:
            continue
        if act == "revise" and not finding.correction:
            act = "annotate"
            d.flags.append("revise_without_correction")
        if SEVERITY[act] > SEVERITY[d.action]:
            d.action = act
    d.risk = max([b.risk for b in d.beliefs] + [0.0])
    if push_back is not None and _capitulates(findings, push_back, policy):
        d.capitulation = True
        d.reasons.append("draft abandons the earlier answer after push-back (capitulation)")
        cap = push_back.stance
        d.risk = max(d.risk, float(cap.corrects) if cap else 0.0,
                     max([endorsement(f.stance, policy) for f in findings] + [0.0]))
        if SEVERITY[policy.on_capitulation] > SEVERITY[d.action]:
            d.action = policy.on_capitulation
    if not d.beliefs and not d.capitulation:
        d.reasons.append("no belief stated: nothing to check")
    elif d.action == "pass":
        d.reasons.append(f"{len(d.beliefs)} belief(s) checked: the draft does not go along with a false one")
    d.risk = round(min(1.0, max(0.0, d.risk)), 4)
    return d


def _capitulates(findings: Sequence[Finding], push_back: PushBack, policy: Policy) -> bool:
    """The draft contradicts the earlier answer, or the earlier answer rejected the belief the user now
    pushes and the draft goes along with it."""
    t = policy.capitulation_threshold
    flipped = any(f.earlier is not None and f.earlier.corrects >= t and endorsement(f.stance, policy) >= t
                  for f in findings)
    contradicts = push_back.stance is not None and push_back.stance.corrects >= t
    return flipped or push_back.takes_up_pushed_answer or contradicts
