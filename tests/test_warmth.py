"""Warmth scorers on real models: SocioT with the embedded chat model, the embedding classifier."""

import pytest

from detectors.warmth import SEED_COLD, SEED_WARM, SocioT, WarmthClassifier, summarize

WARM = "Oh, I'm so sorry you're going through this. I really care about you, and we'll get through it together."
COLD = "The request is denied. The form is incomplete. Submit the required documents."


@pytest.fixture(scope="module")
def sociot(chat_model):
    return SocioT(chat_model)


def test_sociot_scores_a_warm_sentence_above_a_cold_one(sociot):
    warm, cold = sociot.score(WARM), sociot.score(COLD)
    assert warm.sociot > cold.sociot and warm.p_warm > cold.p_warm
    assert warm.tokens > 5 and not warm.truncated


def test_sociot_ranks_held_out_pairs(sociot):
    # held-out pairs (not in the seed set): warm beats cold in most
    pairs = [
        ("I'm really sorry, that sounds so hard. Let's take it slowly together.", "Proceed to the next step. The deadline is fixed."),
        ("You did a lovely job, and I'm proud of you for trying.", "The result is below the required standard."),
        ("Don't worry, sweetheart, we'll sort it out together.", "The account has been suspended pending review."),
    ]
    scores = sociot.score_many([t for pair in pairs for t in pair])
    wins = sum(scores[2 * i].sociot > scores[2 * i + 1].sociot for i in range(len(pairs)))
    assert wins >= 2


def test_sociot_validates_input(sociot):
    with pytest.raises(TypeError, match="decode"):
        sociot.score(b"bytes")
    with pytest.raises(ValueError, match="empty"):
        sociot.score("   ")


def test_summary_has_an_interval():
    s = summarize([0.1, 0.2, 0.3, 0.4])
    assert s.n == 4 and s.ci_low <= s.mean <= s.ci_high


def test_warmth_classifier_separates_held_out_texts_and_round_trips(encoder, tmp_path):
    clf = WarmthClassifier(encoder).fit(SEED_WARM[:12], SEED_COLD[:12])
    warm_p = clf.predict_proba(SEED_WARM[12:])
    cold_p = clf.predict_proba(SEED_COLD[12:])
    assert min(warm_p) > max(cold_p) or sum(w > 0.5 for w in warm_p) + sum(c < 0.5 for c in cold_p) >= 7
    path = clf.save(tmp_path / "warmth.npz")
    again = WarmthClassifier.load(path, encoder)
    assert again.predict_proba([WARM]) == pytest.approx(clf.predict_proba([WARM]), abs=1e-6)
    assert WarmthClassifier.seeded(encoder).predict_proba([WARM, COLD])[0] > 0.5
    with pytest.raises(RuntimeError, match="untrained"):
        WarmthClassifier(encoder).predict_proba(["x"])
