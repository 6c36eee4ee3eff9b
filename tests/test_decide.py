"""The decision as a pure function: tables of hand-built findings, no model, no I/O."""

from __future__ import annotations

import pytest

from detectors.types import Belief, StanceScores
from guardrail.decide import Finding, PushBack, assess, decide, endorsement
from guardrail.policy import Policy
from guardrail.truth import UNKNOWN, TruthResult

P = Policy()


def stance(endorses=0.0, corrects=0.0, hedges=0.0, ignores=None) -> StanceScores:
    rest = max(0.0, 1.0 - endorses - corrects - hedges) if ignores is None else ignores
    return StanceScores(endorses=endorses, corrects=corrects, hedges=hedges, ignores=rest)


def finding(truth="false", confidence=0.9, s=None, correction="The capital is Canberra.", cross=None) -> Finding:
    t = UNKNOWN if truth == "unknown" else TruthResult(truth, "reference", confidence,
                                                        correction=correction if truth == "false" else None)
    return Finding(belief=Belief(claim="The capital of Australia is Sydney.", span=(0, 5), polarity="affirms",
                                 kind="explicit"), truth=t, stance=s, cross_check=cross)


# (truth, confidence, stance, sad, cross_check, expected action)
TABLE = [
    ("false", 0.9, stance(endorses=0.9), False, None, "revise"),
    ("false", 0.9, stance(corrects=0.9), False, None, "pass"),
    ("false", 0.9, stance(endorses=0.45), False, None, "pass"),  # 0.45 x 1.0 < 0.5
    ("false", 0.9, stance(endorses=0.45), True, None, "revise"),  # the sad threshold is 0.35
    ("false", 0.9, stance(endorses=0.9), False, "states_truth", "pass"),  # 0.9 x 0.25
    ("false", 0.9, stance(endorses=0.1), False, "repeats_claim", "revise"),  # floor 0.6
    ("false", 0.1, stance(endorses=0.9), False, None, "pass"),  # 0.9 x (0.4 + 0.1) = 0.45
    ("true", 0.9, stance(endorses=0.99), True, None, "pass"),  # agreeing with the truth is fine
    ("unknown", 0.0, stance(endorses=0.9), True, None, "annotate"),  # 0.9 x 0.6 for a sad user
    ("unknown", 0.0, stance(endorses=0.9), False, None, "pass"),  # not sad: unknown truth passes
    ("false", 0.9, stance(hedges=0.9), True, None, "revise"),  # half a hedge: 0.45 >= 0.35
]


@pytest.mark.parametrize("truth,confidence,s,sad,cross,expected", TABLE)
def test_decision_table(truth, confidence, s, sad, cross, expected):
    d = decide([finding(truth, confidence, s, cross=cross)], sad=sad, policy=P)
    assert d.action == expected
    assert 0.0 <= d.risk <= 1.0
    assert d.beliefs[0].sycophantic == (expected in ("revise", "block") and truth == "false")


def test_no_findings_pass_with_a_reason():
    d = decide([], sad=True, policy=P)
    assert (d.action, d.risk, d.capitulation) == ("pass", 0.0, False)
    assert d.reasons == ["no belief stated: nothing to check"]


def test_policy_actions_and_severity():
    f = finding(s=stance(endorses=0.95))
    assert decide([f], sad=False, policy=Policy(on_false_endorsement="block")).action == "block"
    assert decide([f], sad=False, policy=Policy(on_false_endorsement="annotate")).action == "annotate"
    # the most severe finding wins
    mixed = [finding("unknown", 0, stance(endorses=0.9)), f]
    assert decide(mixed, sad=True, policy=Policy(on_false_endorsement="block")).action == "block"


def test_revise_without_a_correction_annotates():
    d = decide([finding(s=stance(endorses=0.95), correction=None)], sad=False, policy=P)
    assert d.action == "annotate" and "revise_without_correction" in d.flags


def test_bug2_unknown_endorsement_revise_policy_does_not_break():
    """Policy(on_unknown_endorsement='revise') validated, then every such check failed open."""
    d = decide([finding("unknown", 0, stance(endorses=0.95))], sad=True, policy=Policy(on_unknown_endorsement="revise"))
    assert d.action == "annotate" and d.correction is None


def test_the_correction_comes_from_the_first_false_finding():
    a, b = finding(s=stance(endorses=0.9), correction="First."), finding(s=stance(endorses=0.9), correction="Second.")
    d = decide([a, b], sad=False, policy=P)
    assert (d.correction, d.claim) == ("First.", a.belief.claim)


@pytest.mark.parametrize("push,earlier_corrects,draft_endorses,expected", [
    (PushBack("It is Canberra.", stance(corrects=0.8)), None, 0.0, True),  # draft contradicts its answer
    (PushBack("It is Canberra.", stance(endorses=0.8)), None, 0.0, False),  # draft keeps its answer
    (PushBack("It is Canberra.", None, takes_up_pushed_answer=True), None, 0.0, True),
    (PushBack("It is Canberra.", stance(ignores=1.0)), 0.9, 0.9, True),  # earlier rejected, draft goes along
    (PushBack("It is Canberra.", stance(ignores=1.0)), 0.9, 0.1, False),
])
def test_capitulation_table(push, earlier_corrects, draft_endorses, expected):
    f = finding("unknown", 0, stance(endorses=draft_endorses))
    if earlier_corrects is not None:
        f.earlier = stance(corrects=earlier_corrects)
    d = decide([f], sad=False, policy=P, push_back=push)
    assert d.capitulation == expected
    assert (d.action == "revise") == expected


def test_endorsement_and_assess_use_policy_numbers():
    s = stance(endorses=0.4, hedges=0.4)
    assert endorsement(s, Policy(hedge_weight=0.5)) == pytest.approx(0.6)
    assert endorsement(s, Policy(hedge_weight=0.0)) == pytest.approx(0.4)
    assert endorsement(None, P) == 0.0
    b = assess(finding("false", 0.3, stance(endorses=1.0)), Policy(false_risk_base=0.2))
    assert b.risk == pytest.approx(0.5)
    assert assess(finding("unknown", 0, stance(endorses=1.0)), Policy(unknown_risk_factor=0.25)).risk == pytest.approx(0.25)


def test_decide_is_pure():
    f = finding(s=stance(endorses=0.9))
    first = decide([f], sad=True, policy=P)
    second = decide([f], sad=True, policy=P)
    assert first.action == second.action and first.beliefs == second.beliefs
    assert f.truth.truth == "false" and f.cross_check is None  # inputs untouched


def test_a_reference_passage_confirms_a_claim_only_when_the_judge_is_sure():
    """Between reference_context_min and reference_true_min an agreeing reading of the passage questions the
    claim instead (the judge misreads some contradictions as weak agreement)."""
    from detectors.types import StanceScores
    from guardrail.policy import Policy
    from guardrail.truth import passage_truth

    def read(endorses, corrects, hedges=0.0, ignores=0.0):
        return StanceScores(endorses=endorses, corrects=corrects, hedges=hedges, ignores=ignores)

    policy = Policy(reference_true_min=0.8)
    assert passage_truth(read(0.9, 0.05), policy) == "true"
    assert passage_truth(read(0.6, 0.3), policy) == "false"
    assert passage_truth(read(0.1, 0.8), policy) == "false"
    assert passage_truth(read(0.4, 0.1, hedges=0.5), policy) is None  # hedged: the passage does not say
    assert passage_truth(read(0.45, 0.3), policy) is None  # under reference_context_min: unknown
    assert passage_truth(read(0.6, 0.3), Policy(reference_true_min=0.5)) == "true"
