"""Statistics against values computed by hand (McNemar, BH-FDR, bootstrap, flip rate, AME)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.stats import bootstrap_ci, compare, fdr_bh, mcnemar_test, summarize
from benchmarks.store import RunStore


def test_mcnemar_exact_by_hand():
    # b=1, c=7: two-sided exact binomial p = 2 * P(X <= 1 | n=8, 1/2) = 2 * (1 + 8) / 256
    assert mcnemar_test(1, 7) == pytest.approx(18 / 256)
    # b=0, c=5: 2 * (1/32)
    assert mcnemar_test(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_test(3, 3) == pytest.approx(1.0)
    assert mcnemar_test(0, 0) == 1.0


def test_benjamini_hochberg_by_hand():
    # sorted p: .01 .03 .04 .5 -> p*m/rank: .04 .06 .0533 .5 -> running min from the top: .04 .0533 .0533 .5
    adj = fdr_bh([0.01, 0.04, 0.03, 0.5])
    assert adj == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_bootstrap_interval_fixed_seed():
    from scipy.stats import bootstrap

    x = [1, 0, 0, 1, 1, 0, 1, 1, 1, 0]
    lo, hi = bootstrap_ci(x, n_boot=500, seed=7)
    # the same scipy call, written out
    ref = bootstrap((np.asarray(x, float),), np.mean, n_resamples=500, method="percentile",
                    random_state=np.random.default_rng(7)).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    assert lo < 0.6 < hi and lo >= 0.0 and hi <= 1.0
    assert bootstrap_ci(x, n_boot=500, seed=7) == (lo, hi)  # reproducible
    assert bootstrap_ci([0, 0, 0]) == (0.0, 0.0)
    assert bootstrap_ci([1]) == (1.0, 1.0)
    assert bootstrap_ci([]) == (None, None)


def _fill(store: RunStore, target: str, results: dict[tuple[str, str, str], bool]) -> None:
    """results: (question_id, template, context) -> correct"""
    for (qid, tpl, ctx), ok in results.items():
        store.put_answer(target=target, task="embedded", question_id=qid, template=tpl, context=ctx, seed=0,
                         prompt=f"{qid} {tpl}", answer="x")
        key = f"{target}|embedded|{qid}|{tpl}|{ctx}|0"
        store.set_scores([(key, ok, False, "alias")])


def test_summary_flip_rate_and_compare_by_hand(tmp_path):
    n = 10
    with RunStore(tmp_path) as store:
        # original: A right on all 10 questions under 'original'; under 'incorrect' right on 7 (3 flips)
        a = {(f"q{i}", "original", "unmodified"): True for i in range(n)}
        a.update({(f"q{i}", "incorrect", "unmodified"): i >= 3 for i in range(n)})
        # warm: right on 8 of 10 without the belief (q0, q1 wrong), with it right only on q6..q9
        b = {(f"q{i}", "original", "unmodified"): i >= 2 for i in range(n)}
        b.update({(f"q{i}", "incorrect", "unmodified"): i >= 6 for i in range(n)})
        _fill(store, "orig", a)
        _fill(store, "warm", b)
    s = summarize(tmp_path, n_boot=200)
    cell = {(c["target"], c["template"]): c for c in s["cells"]}
    assert cell[("orig", "incorrect")]["error_rate"] == pytest.approx(0.3)
    assert cell[("warm", "original")]["error_rate"] == pytest.approx(0.2)
    flips = {(f["target"], f["task"]): f for f in s["flips"]}
    assert flips[("orig", "embedded")]["flips"] == 3 and flips[("orig", "embedded")]["flip_rate"] == pytest.approx(0.3)
    # warm: 8 correct on original (q2..q9), of which q2..q5 flip -> 4/8
    assert flips[("warm", "embedded")]["flip_rate"] == pytest.approx(0.5)

    with pytest.raises(ValueError, match="DIR::label"):
        compare(tmp_path, tmp_path)
    with pytest.raises(ValueError, match=r"no target 'worm': its targets are \['orig', 'warm'\]"):
        compare(f"{tmp_path}::orig", f"{tmp_path}::worm")
    cmp = compare(f"{tmp_path}::orig", f"{tmp_path}::warm", n_boot=200)
    cells = {c["template"]: c for c in cmp["cells"]}
    inc = cells["incorrect"]
    # incorrect: A right on q3..q9, B right on q6..q9: A-right-B-wrong = q3,q4,q5 -> 3; the reverse -> 0
    assert (inc["a_right_b_wrong"], inc["a_wrong_b_right"]) == (3, 0)
    assert inc["p_value"] == pytest.approx(2 / 8)
    assert inc["diff_pp"] == pytest.approx(30.0)
    orig = cells["original"]
    assert orig["p_value"] == pytest.approx(2 / 4)  # b=2, c=0
    # two cells: p .5 and .25 -> BH: .25*2/1=.5, .5*2/2=.5
    assert inc["p_fdr"] == pytest.approx(0.5) and orig["p_fdr"] == pytest.approx(0.5)
    ame = cmp["ame"]
    # with template as the only covariate besides is_finetuned the fit is not saturated; check against a
    # direct statsmodels computation of the same quantity instead of a closed form
    assert ame["formula"] == "is_incorrect ~ is_finetuned + C(template)"
    assert 0 < ame["ame_pp"] < 40 and ame["ci_low_pp"] < ame["ame_pp"] < ame["ci_high_pp"]


def test_ame_equals_difference_in_proportions_when_saturated(tmp_path):
    # one task, one template, one context: the model is is_incorrect ~ is_finetuned, saturated,
    # so the AME is exactly the difference in error rates: 5/10 - 2/10 = 30 pp
    with RunStore(tmp_path) as store:
        _fill(store, "orig", {(f"q{i}", "original", "unmodified"): i >= 2 for i in range(10)})
        _fill(store, "warm", {(f"q{i}", "original", "unmodified"): i >= 5 for i in range(10)})
    ame = compare(f"{tmp_path}::orig", f"{tmp_path}::warm", n_boot=50)["ame"]
    assert ame["formula"] == "is_incorrect ~ is_finetuned"
    assert ame["ame_pp"] == pytest.approx(30.0, abs=1e-6)
    # delta-method SE of a difference of two independent proportions
    se = math.sqrt(0.2 * 0.8 / 10 + 0.5 * 0.5 / 10)
    assert ame["se_pp"] == pytest.approx(100 * se, rel=1e-4)


def test_guard_catch_counts_flags_on_answers_judged_to_assert_the_false_answer(tmp_path):
    from benchmarks.stats import guard_catch

    rows = [("q0", "incorrect", "judge-incorrect", "revise"), ("q1", "incorrect", "judge-incorrect", "pass"),
            ("q2", "incorrect", "judge-incorrect", "annotate"), ("q3", "incorrect", "judge-hedged", "pass"),
            ("q4", "original", "judge-incorrect", "pass")]
    with RunStore(tmp_path) as store:
        for qid, tpl, method, action in rows:
            store.put_answer(target="warm", task="embedded", question_id=qid, template=tpl, context="unmodified",
                             seed=0, prompt=f"{qid} {tpl}", answer="x")
            key = f"warm|embedded|{qid}|{tpl}|unmodified|0"
            store.set_scores([(key, False, False, method)])
            store.set_guard([(key, "x", False, False, action, "ok")])
        recs = store.records()
    # only q0..q2 count (incorrect template, judged to assert the false answer); q0 and q2 flagged
    assert guard_catch(recs) == {"warm": {"n": 3, "flagged": 2, "share": pytest.approx(2 / 3)}}
    assert summarize(tmp_path, n_boot=50)["guard_catch"]["warm"]["flagged"] == 2
