"""The paper's statistics: its four models, McNemar cells grouped as it groups its FDR, against values
computed by hand, and against its own published numbers (skipped where ../shared/data is absent)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmarks.paper_check import check, recover_counts
from benchmarks.paper_stats import bh_within, cell_test, four_models, frame, mcnemar_cells, paper_category
from benchmarks.store import Record
from tests.conftest import require_shared


def _rec(task, qid, template, context, correct, target="t"):
    return Record(key=f"{target}|{task}|{qid}|{template}|{context}|0", target=target, task=task, question_id=qid,
                  template=template, context=context, seed=0, prompt="p", answer="a", correct=correct,
                  refused=correct is None)


def _rows(errors: dict, ft: int, dataset="trivia", model="m") -> list[dict]:
    """Aggregated rows: errors[(context, prompt_type)] = (n_incorrect, n)."""
    out = []
    for (ctx, pt), (k, n) in errors.items():
        for inc, w in ((1, k), (0, n - k)):
            out.append({"is_incorrect": inc, "is_finetuned": ft, "model": model, "dataset": dataset,
                        "amendment_type": ctx.split(":")[0], "amendment_type_detailed": ctx, "prompt_type": pt,
                        "weight": float(w)})
    return out


def test_saturated_models_give_differences_in_proportions():
    # one dataset, one model: every model is saturated in its cells, so each AME is a plain difference
    base = {("unmodified", "original"): (10, 100), ("emotion:sad", "original"): (20, 100),
            ("unmodified", "user_opinion"): (30, 100)}
    warm = {("unmodified", "original"): (15, 100), ("emotion:sad", "original"): (40, 100),
            ("unmodified", "user_opinion"): (45, 100)}
    df = pd.DataFrame(_rows(base, 0) + _rows(warm, 1))
    fits = four_models(df)
    m1 = fits["model1_main_effect"]
    assert m1["formula"] == "is_incorrect ~ C(is_finetuned, Treatment(0))"
    assert m1["n"] == 200 and m1["fine_tuning"]["ame_pp"] == pytest.approx(5.0)
    # the logit coefficient of fine-tuning and its Wald p, by hand
    coef = math.log(15 / 85) - math.log(10 / 90)
    se = math.sqrt(1 / 15 + 1 / 85 + 1 / 10 + 1 / 90)
    assert m1["fine_tuning"]["coefficient"] == pytest.approx(coef, rel=1e-6)
    assert m1["fine_tuning"]["standard_error"] == pytest.approx(se, rel=1e-5)
    assert m1["fine_tuning"]["p_value"] == pytest.approx(math.erfc(abs(coef / se) / math.sqrt(2)), rel=1e-5)
    # our delta-method SE of a difference of two independent proportions
    assert m1["fine_tuning"]["ours_delta_se_pp"] == pytest.approx(100 * math.sqrt(.1 * .9 / 100 + .15 * .85 / 100), rel=1e-4)
    m2 = fits["model2_context_group"]["effects"]
    assert m2["unmodified"]["ame_pp"] == pytest.approx(5.0) and m2["emotion"]["ame_pp"] == pytest.approx(20.0)
    # the emotion test is on main + interaction = the log odds ratio within emotion
    assert m2["emotion"]["coefficient"] == pytest.approx(math.log(40 / 60) - math.log(20 / 80), rel=1e-6)
    assert fits["model3_context_detailed"]["effects"]["emotion:sad"]["ame_pp"] == pytest.approx(20.0)
    # model 4 on the unmodified rows alone (saturated): original 15% vs 10%, user opinion 45% vs 30%
    m4 = four_models(df[df["amendment_type"] == "unmodified"])["model4_user_opinion"]
    assert "C(is_finetuned, Treatment(0)):C(prompt_type, Treatment('original'))" in m4["formula"]
    assert m4["effects"]["original"]["ame_pp"] == pytest.approx(5.0)
    assert m4["effects"]["user_opinion"]["ame_pp"] == pytest.approx(15.0)
    # the paper's user-opinion test: the difference of its two interaction coefficients (a diff-in-diff)
    did = (math.log(45 / 55) - math.log(30 / 70)) - (math.log(15 / 85) - math.log(10 / 90))
    assert m4["effects"]["user_opinion"]["coefficient"] == pytest.approx(did, rel=1e-6)


def test_models_say_why_when_they_cannot_fit():
    df = pd.DataFrame(_rows({("unmodified", "original"): (10, 100)}, 0))
    assert "both the original and the fine-tuned" in four_models(df)["model1_main_effect"]["error"]
    df = pd.DataFrame(_rows({("unmodified", "original"): (10, 100)}, 0) + _rows({("unmodified", "original"): (5, 50)}, 1))
    assert "belief" in four_models(df)["model4_user_opinion"]["error"]


def test_frame_applies_the_refusal_rule_and_groups():
    recs = [_rec("disinfo", "d1", "incorrect", "emotion:sad", True), _rec("triviaqa", "q1", "original", "unmodified", None),
            _rec("triviaqa", "q1", "original_neutral", "unmodified", False), _rec("triviaqa", "q1", "mcq", "unmodified", True)]
    df = frame(recs, is_finetuned=1, model="m")
    assert len(df) == 3  # the refused (None) TriviaQA answer is dropped
    assert list(df["prompt_type"]) == ["user_opinion", "original", "other"]
    assert list(df["dataset"]) == ["disinfo", "trivia", "trivia"]
    assert list(df["amendment_type"]) == ["emotion", "unmodified", "unmodified"]


def test_mcnemar_cells_pool_beliefs_and_group_fdr_by_hand():
    assert paper_category("correct", "emotion:sad") == ("Sycophancy", "emotion:sad")
    assert paper_category("original", "unmodified") == ("Normal", "unmodified\noriginal_combined")
    assert paper_category("original_neutral", "unmodified") is None and paper_category("mcq", "unmodified") is None
    t = cell_test(1, 7, 20, 12, 18)
    assert t["p_value"] == pytest.approx(18 / 256) and t["cohens_g"] == pytest.approx(6 / math.sqrt(8))
    assert t["odds_ratio"] == pytest.approx(1 / 7) and t["raw_diff_pp"] == pytest.approx(30.0)
    assert cell_test(0, 0, 5, 5, 5)["p_value"] is None  # no discordant pair: the paper's NaN, written null
    # base right on q0..q7 for both beliefs; warm wrong on the `incorrect` of q0..q3 and the `correct` of q0
    base, warm = [], []
    for i in range(8):
        for tpl in ("correct", "incorrect"):
            base.append(_rec("triviaqa", f"q{i}", tpl, "emotion:sad", True, "o"))
            warm.append(_rec("triviaqa", f"q{i}", tpl, "emotion:sad",
                             not ((tpl == "incorrect" and i < 4) or (tpl == "correct" and i == 0)), "w"))
        base.append(_rec("triviaqa", f"q{i}", "original", "emotion:sad", True, "o"))
        warm.append(_rec("triviaqa", f"q{i}", "original", "emotion:sad", i != 0, "w"))
    rows = {(r["test_type"], r["category"]): r for r in mcnemar_cells(base, warm, model="m")}
    syc = rows[("Sycophancy", "emotion:sad")]
    assert (syc["n_pairs"], syc["base_only"], syc["ft_only"]) == (16, 5, 0)  # correct and incorrect pooled
    assert syc["p_value"] == pytest.approx(2 / 32)
    assert syc["p_fdr"] == pytest.approx(2 / 32)  # alone in its model x dataset x test type group
    assert rows[("Normal", "emotion:sad\noriginal")]["p_value"] == pytest.approx(1.0)
    # BH within groups, never across them
    cells = [{"g": "a", "p_value": 0.01}, {"g": "a", "p_value": 0.04}, {"g": "b", "p_value": 0.04}, {"g": "b", "p_value": None}]
    bh_within(cells, ("g",))
    assert [c["p_fdr"] for c in cells[:3]] == pytest.approx([0.02, 0.04, 0.04])
    assert cells[3]["p_fdr"] is None


def test_counts_recovered_from_g_and_odds_ratio():
    # llama-70b disinfo Sycophancy emotion:sad: g 3.528, OR 4.80, raw diff -12.03 -> b 24, c 5, n 158
    row = {"Cohen's g": "3.528", "Odds Ratio": "4.80", "Raw Diff (pp)": "-12.03"}
    assert recover_counts(row) == {"b": 24, "c": 5, "n": 158}
    assert recover_counts({"Cohen's g": "N/A", "Odds Ratio": "∞", "Raw Diff (pp)": "1"}) is None


def test_the_papers_own_numbers_from_its_summary_data():
    require_shared("paper/results_warm_ft.csv")
    r = check()
    # McNemar: every cell whose counts the table fixes gives the published p to its 4 decimals
    assert r["mcnemar"]["n_cells"] >= 330 and r["mcnemar"]["n_equal_at_4dp"] == r["mcnemar"]["n_cells"]
    # BH within model x dataset x test type: the published FDR column (the rest within raw-p rounding)
    assert r["fdr"]["n_cells"] == 360 and r["fdr"]["n_equal_at_4dp"] >= 350 and r["fdr"]["max_abs_diff"] <= 5e-4
    # the four models refitted on the recovered counts: each published AME within 0.4 pp
    table = r["models"]["table"]
    assert len(table) == 16 and all(t["ours_pp"] is not None and abs(t["diff_pp"]) < 0.4 for t in table)
    uo = next(t for t in table if t["effect"] == "user_opinion")
    assert uo["ours_pp"] == pytest.approx(10.99, abs=0.05)
