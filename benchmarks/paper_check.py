"""Our statistics against the paper's own published numbers, from its own ``summary_data``
(``../shared/data/paper/results_warm_ft.csv``): a check that the formulas and groupings are the paper's.

What the per-cell table allows:

1. **BH-FDR**: the published raw p-values, adjusted within model x dataset x test type, give the
   published FDR column (to its 4 decimals);
2. **McNemar**: the published Cohen's g = |b-c|/sqrt(b+c) and odds ratio b/c fix the discordant counts b
   and c; their exact McNemar p gives the published p-value; with the raw difference (c-b)/n they also
   give each cell's n, hence its correct counts;
3. **the four GLMs**, approximately: refitted on those recovered counts (frequency weights) and compared
   with the average marginal effects in its ``statistical_models/model_outputs``. Approximate because the
   table holds the paired cells (answers refused by either model dropped) and lacks the unmodified
   original_neutral rows its models include.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional

from benchmarks.paper_stats import bh_within, cell_test, four_models
from benchmarks.report import PAPER_TABLE as SUMMARY, load_paper_table


# The paper's average marginal effects of warm fine-tuning (pp), from its statistical_models/model_outputs
# (lujainibrahim/warm_ai_2025 @ e2d97733): the numbers we compare with, not code.
PUBLISHED_AME_PP = {
    "model1_main_effect": {"fine_tuning": 7.43},
    "model2_context_group": {"unmodified": 7.43, "emotion": 8.87, "relation": 6.55, "stake": 7.42},
    "model3_context_detailed": {"unmodified": 7.43, "emotion:happy": 6.93, "emotion:anger": 7.86,
                                "emotion:sad": 11.87, "stake:high": 7.45, "stake:low": 7.31,
                                "relation:close": 6.92, "relation:hierarchical_down": 7.51,
                                "relation:hierarchical_up": 5.24},
    "model4_user_opinion": {"original": 7.60, "user_opinion": 10.99},
}


def load_summary(path: str | Path | None = None) -> list[dict]:
    """The paper's per-cell table with the columns this check needs (McNemar's inputs), [] if absent."""
    return load_paper_table(path, extra_columns=("Raw Diff (pp)", "Cohen's g", "Odds Ratio", "p-value",
                                                 "p-value (FDR corrected)"))


def _num(text: str) -> Optional[float]:
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def reproduce_fdr(rows: list[dict]) -> dict:
    """BH-FDR within model x dataset x test type, beside the published column. The raw p of each cell is
    the exact p of its recovered counts where that rounds to the published p (the published FDR was
    computed before rounding), else the published 4-decimal p."""
    cells = []
    for r in rows:
        p_pub = _num(r["p-value"])
        k = recover_counts(r)
        p = p_pub
        if k is not None and p_pub is not None:
            exact = cell_test(k["b"], k["c"], k["b"] + k["c"], 0, 0)["p_value"]
            if exact is not None and abs(round(exact, 4) - p_pub) < 5e-5:
                p = exact
        cells.append({"model": r["Model"], "dataset": r["Dataset"], "test_type": r["Test_Type"],
                      "category": r["Amendment_type"], "p_value": p, "published_fdr": _num(r["p-value (FDR corrected)"])})
    bh_within(cells, ("model", "dataset", "test_type"))
    both = [c for c in cells if c["p_fdr"] is not None and c["published_fdr"] is not None]
    diffs = [abs(round(c["p_fdr"], 4) - c["published_fdr"]) for c in both]
    return {"n_cells": len(both), "n_equal_at_4dp": sum(d < 5e-5 for d in diffs),
            "max_abs_diff": max(diffs, default=None), "cells": cells}


def recover_counts(row: dict) -> Optional[dict]:
    """Discordant counts b (original right, fine-tuned wrong), c, and the cell's n from the published
    Cohen's g (3 decimals), odds ratio b/c (2 decimals) and raw difference; None where they do not
    determine them. The closed form c = g^2 (OR+1)/(OR-1)^2, b = OR c is refined by searching the
    integers near it for the pair that rounds to both published values."""
    g, odds, diff = _num(row["Cohen's g"]), _num(row["Odds Ratio"]), _num(row["Raw Diff (pp)"])
    if g is None or odds is None or odds == 1 or odds <= 0:
        return None
    c0 = g * g * (odds + 1) / (odds - 1) ** 2
    b0 = odds * c0
    best = None
    for c in range(max(1, int(c0) - 12), int(c0) + 13):
        for b in range(max(0, int(b0) - 12), int(b0) + 13):
            if round(b / c, 2) == odds and round(abs(b - c) / math.sqrt(b + c), 3) == g:
                dist = abs(b - b0) + abs(c - c0)
                if best is None or dist < best[0]:
                    best = (dist, b, c)
    if best is None:
        return None
    b, c = best[1], best[2]
    n = round(100 * (c - b) / diff) if diff else None
    return {"b": b, "c": c, "n": n if n and n > 0 else None}


def reproduce_mcnemar(rows: list[dict]) -> dict:
    """Exact McNemar p from the recovered b and c, beside the published p."""
    out = []
    for r in rows:
        k = recover_counts(r)
        if k is None or _num(r["p-value"]) is None:
            continue
        n = k["n"] or (k["b"] + k["c"])
        t = cell_test(k["b"], k["c"], n, 0, 0)
        out.append({"model": r["Model"], "dataset": r["Dataset"], "test_type": r["Test_Type"],
                    "category": r["Amendment_type"], "b": k["b"], "c": k["c"], "n": k["n"],
                    "p_ours": t["p_value"], "p_published": _num(r["p-value"])})
    diffs = [abs(round(o["p_ours"], 4) - o["p_published"]) for o in out]
    return {"n_cells": len(out), "n_equal_at_4dp": sum(d < 5e-5 for d in diffs),
            "max_abs_diff": max(diffs, default=None), "cells": out}


def counts_frame(rows: list[dict]):
    """Aggregated rows (frequency weights) of correct/incorrect answers per cell and model side, from the
    recovered n and the published accuracies; cells whose n cannot be recovered are left out."""
    import pandas as pd

    recs = []
    for r in rows:
        k = recover_counts(r)
        if not k or not k["n"]:
            continue
        n = k["n"]
        cat = r["Amendment_type"].split("\n")[0]
        prompt_type = "original" if r["Test_Type"] == "Normal" else "user_opinion"
        for ft, col in ((0, "Original Accuracy (%)"), (1, "Fine-tuned Accuracy (%)")):
            right = round(_num(r[col]) * n / 100)
            for incorrect, w in ((0, right), (1, n - right)):
                if w > 0:
                    recs.append({"is_incorrect": incorrect, "is_finetuned": ft, "model": r["Model"],
                                 "dataset": r["Dataset"], "amendment_type": cat.split(":")[0],
                                 "amendment_type_detailed": cat, "prompt_type": prompt_type, "weight": float(w)})
    return pd.DataFrame(recs)


def reproduce_models(rows: list[dict]) -> dict:
    """The four models refitted on the recovered counts, beside the published AMEs (pp)."""
    df = counts_frame(rows)
    fits = four_models(df)
    table = []
    for model, published in PUBLISHED_AME_PP.items():
        fit = fits[model]
        for effect, value in published.items():
            got = (fit.get("fine_tuning") if effect == "fine_tuning" else (fit.get("effects") or {}).get(effect)) or {}
            ours = got.get("ame_pp")
            table.append({"model": model, "effect": effect, "published_pp": value, "ours_pp": ours,
                          "diff_pp": None if ours is None else ours - value})
    cells = defaultdict(int)
    for r in rows:
        cells[r["Test_Type"]] += 1
    return {"n_rows_weighted": float(df["weight"].sum()) if len(df) else 0.0, "table": table, "fits": fits}


def check(path: str | Path | None = None) -> dict[str, Any]:
    """All three checks on the paper's summary table; {"error": ...} where the table is absent."""
    rows = load_summary(path)
    if not rows:
        return {"error": f"{SUMMARY} is absent from the shared data folder (../shared/data or GUARDRAIL_DATA)"}
    return {"source": SUMMARY, "fdr": reproduce_fdr(rows), "mcnemar": reproduce_mcnemar(rows),
            "models": reproduce_models(rows)}
