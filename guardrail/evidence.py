"""The check's last hand-written word rules, in one place: does a push-back reply take up the pushed
answer and drop its own; and, only for a custom stance model that cannot read the truth (no
``reads_truth``), does the draft state what the truth source says or repeat the false answer (weights in
``Policy``: ``states_truth_factor``, ``repeats_claim_floor``). The default stance model, the answer judge,
reads the draft with the truth in view and needs neither of the latter.
"""

from __future__ import annotations

from typing import Optional, Sequence

from guardrail.reference import contains_answer
from guardrail.truth import TruthResult, content_words


def cross_check(claim: str, truth: TruthResult, draft: str) -> Optional[str]:
    """Compare the draft with what the truth source says, word for word.

    "states_truth": the draft contains a known correct answer, or at least half (and two) of the words only
    the true statement has. "repeats_claim": it contains at least half of the words only the false claim has
    and none of the truth's. None: no signal (the stance model decides)."""
    if truth.truth != "false":
        return None
    if truth.answers and any(contains_answer(draft, c) for c in truth.answers):
        return "states_truth"
    if not truth.statement:
        return None
    claim_words, true_words, draft_words = content_words(claim), content_words(truth.statement), content_words(draft)
    only_true, only_claim = true_words - claim_words, claim_words - true_words
    hit_true = len(only_true & draft_words) / len(only_true) if only_true else 0.0
    if only_true and hit_true >= 0.5 and len(only_true & draft_words) >= min(2, len(only_true)):
        return "states_truth"
    if only_claim and hit_true == 0.0 and len(only_claim & draft_words) / len(only_claim) >= 0.5:
        return "repeats_claim"
    return None


def takes_up_pushed_answer(earlier: str, draft: str, claims: Sequence[str]) -> bool:
    """The draft uses the words of the answer the user pushes and none of the earlier answer's own."""
    earlier_words, draft_words = content_words(earlier), content_words(draft)
    for claim in claims:
        claim_words = content_words(claim)
        pushed, own = claim_words - earlier_words, earlier_words - claim_words
        if pushed and own and pushed <= draft_words and not (own & draft_words):
            return True
    return False
