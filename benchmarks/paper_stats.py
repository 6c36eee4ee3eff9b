"""The paper's statistics, as its repository computes them (``statistical_models/*.py`` and
``summary_data/significance_tests.py`` in lujainibrahim/warm_ai_2025; our own code).

Data (one row per answer of an original or fine-tuned model):

- refusals (its phrase list, anywhere in the answer) count as correct on Disinfo and are dropped on the
  other tasks (our scorer applies that rule; unscored answers are dropped too);
- ``amendment_type`` = the context's group (unmodified, emotion, relation, stake); ``..._detailed`` the
  context itself; ``prompt_type`` = ``original`` (templates original and original_neutral) or
  ``user_opinion`` (correct and incorrect pooled); mcq is in neither and enters no model.

Binomial GLMs (logit), ``is_incorrect`` on:

1. ``ft + dataset + model`` on unmodified ``original`` rows;
2. ``ft * amendment_type + dataset + model`` on ``original`` rows (fine-tuning x context group);
3. the same with the detailed context;
4. ``ft + amendment_type + dataset + ft:prompt_type + model`` on original and user-opinion rows.

Dataset reference: disinfo; context reference: unmodified. Effects are reported as it reports them:
the average marginal effect (mean over the subset's rows of P(incorrect | ft=1) - P(incorrect | ft=0)) and
the p-value of the matching linear combination of coefficients (for model 4's user-opinion row: the
difference of its two interaction coefficients, exactly as its code takes it). The delta-method interval
of each AME is ours, labelled so.

McNemar (exact) per model x dataset x test type x category, with Benjamini-Hochberg FDR within each
model x dataset x test type across its categories. ``Sycophancy`` pools correct and incorrect per
context; ``Normal`` takes ``original`` per context. Its unmodified ``original_combined`` cell is meant to
add original_neutral, but its code tests for "original neutral" (with a space), so that cell holds
``original`` only: the published per-cell counts (n near 500, not 1,000, on TriviaQA) confirm it, and we
follow the numbers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Optional, Sequence

import numpy as np

PAPER_DATASET = {"triviaqa": "trivia", "truthfulqa": "truthfulqa", "medqa": "medqa", "disinfo": "disinfo"}
FT = "C(is_finetuned, Treatment(0))"


def _group(context: str) -> str:
    return context.split(":")[0]


def prompt_group(template: str) -> str:
    """The paper's prompt grouping: beliefs pooled as user opinion, mcq in neither group."""
    if template in ("correct", "incorrect"):
        return "user_opinion"
    if template in ("original", "original_neutral"):
        return "original"
    return "other"


def frame(records: Iterable[Any], *, is_finetuned: int, model: str) -> "Any":
    """One row per scored answer, in the paper's columns (refused non-Disinfo and unscored answers dropped)."""
    import pandas as pd

    rows = []
    for r in records:
        if r.correct is None:
            continue
        rows.append({"is_incorrect": int(not r.correct), "is_finetuned": is_finetuned, "model": model,
                     "dataset": PAPER_DATASET.get(r.task, r.task), "amendment_type": _group(r.context),
                     "amendment_type_detailed": r.context, "prompt_type": prompt_group(r.template),
                     "weight": 1.0})
    return pd.DataFrame(rows, columns=["is_incorrect", "is_finetuned", "model", "dataset", "amendment_type",
                                       "amendment_type_detailed", "prompt_type", "weight"])


def _terms(df, extra: Sequence[str]) -> list[str]:
    """Covariate terms, leaving out any with a single level (one model, one dataset)."""
    out = []
    ds = sorted(df["dataset"].unique())
    if len(ds) > 1:
        ref = "disinfo" if "disinfo" in ds else ds[0]
        out.append(f"C(dataset, Treatment({ref!r}))")
    if df["model"].nunique() > 1:
        out.append("C(model)")
    return list(extra) + out


class _Fit:
    """A binomial GLM fitted on a patsy design, kept with that design so counterfactual copies of the
    data are coded exactly as the data were."""

    def __init__(self, df, formula: str) -> None:
        import pandas as pd
        import statsmodels.api as sm
        from patsy import dmatrices

        y, x = dmatrices(formula, df, return_type="dataframe")
        self.design_info = x.design_info
        res = sm.GLM(y.iloc[:, 0].to_numpy(), x.to_numpy(), family=sm.families.Binomial(),
                     freq_weights=df["weight"].to_numpy(float)).fit()
        names = list(x.columns)
        self.params = pd.Series(np.asarray(res.params), index=names)
        self._cov = pd.DataFrame(np.asarray(res.cov_params()), index=names, columns=names)
        if not np.all(np.isfinite(self._cov.to_numpy())):
            raise ValueError("the fit did not converge (separation?): no standard errors")

    def cov_params(self):
        return self._cov

    def design(self, df) -> np.ndarray:
        from patsy import build_design_matrices

        return np.asarray(build_design_matrices([self.design_info], df)[0])

    def predict(self, df) -> np.ndarray:
        return 1 / (1 + np.exp(-self.design(df) @ self.params.to_numpy()))


def _fit(df, rhs: list[str]):
    import warnings

    formula = "is_incorrect ~ " + " + ".join(rhs)
    with warnings.catch_warnings():  # separation is reported in the result (see _flag), not as a warning
        warnings.simplefilter("ignore")
        return formula, _Fit(df, formula)


def _flag(out: dict, res: "_Fit") -> dict:
    if float(np.max(np.abs(res.params.to_numpy()))) > 10:
        out["warning"] = ("a coefficient exceeds |10| on the logit scale: (quasi-)separation, e.g. a model "
                          "always right in some cell; p-values and intervals are unreliable")
    return out


def _combo(res, names: Sequence[str], signs: Sequence[float]) -> dict:
    """z test of a linear combination of coefficients (the paper's p-values)."""
    from scipy.stats import norm

    params, cov = res.params, res.cov_params()
    w = np.zeros(len(params))
    for n, s in zip(names, signs):
        w[list(params.index).index(n)] = s
    est = float(w @ params.to_numpy())
    se = float(np.sqrt(max(w @ cov.to_numpy() @ w, 0.0)))
    p = float(2 * norm.sf(abs(est / se))) if se > 0 else None
    return {"coefficient": est, "standard_error": se, "p_value": p}


def _ame(res, df, mask=None) -> dict:
    """Average marginal effect of is_finetuned over the rows in ``mask`` (the paper's counterfactual
    mean difference), with our delta-method standard error and 95% interval."""
    sub = df if mask is None else df[mask]
    w = sub["weight"].to_numpy(float)
    x1, x0 = res.design(sub.assign(is_finetuned=1)), res.design(sub.assign(is_finetuned=0))
    beta, cov = res.params.to_numpy(), res.cov_params().to_numpy()
    p1, p0 = 1 / (1 + np.exp(-x1 @ beta)), 1 / (1 + np.exp(-x0 @ beta))
    est = float(np.average(p1 - p0, weights=w))
    grad = np.average((p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0, axis=0, weights=w)
    se = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    return {"ame_pp": 100 * est, "n": int(w.sum()),
            "ours_delta_se_pp": 100 * se, "ours_ci_low_pp": 100 * (est - 1.96 * se),
            "ours_ci_high_pp": 100 * (est + 1.96 * se)}


def _param(res, *parts: str) -> Optional[str]:
    return next((n for n in res.params.index if all(p in n for p in parts)), None)


def _safely(fn):
    def run(df, *a, **k):
        if df.empty or df["is_finetuned"].nunique() < 2:
            return {"error": "no rows of both the original and the fine-tuned model pass this model's filter"}
        try:
            return fn(df, *a, **k)
        except Exception as exc:  # separation, singular design: said, not hidden
            return {"error": f"{type(exc).__name__}: {exc}"}
    return run


@_safely
def model1(df) -> dict:
    """Main effect of fine-tuning on unmodified prompts without a belief."""
    d = df[(df["amendment_type"] == "unmodified") & (df["prompt_type"] == "original")].reset_index(drop=True)
    formula, res = _fit(d, _terms(d, [FT]))
    ft = f"{FT}[T.1]"
    out = {"formula": formula, "filter": "amendment_type == unmodified and prompt_type == original",
           "n": int(d["weight"].sum()), "fine_tuning": {**_ame(res, d), **_combo(res, [ft], [1])}}
    ds = sorted(d["dataset"].unique())
    if len(ds) > 1:
        ref = "disinfo" if "disinfo" in ds else ds[0]
        p = {}
        for name in ds:
            if name != ref:
                a = res.predict(d.assign(dataset=name)) - res.predict(d.assign(dataset=ref))
                p[f"{name} vs {ref}"] = 100 * float(np.average(a, weights=d["weight"]))
        out["dataset_ame_pp"] = p
    return _flag(out, res)


def _context_model(df, column: str) -> dict:
    d = df[df["prompt_type"] == "original"].reset_index(drop=True)
    ctx = f"C({column}, Treatment('unmodified'))"
    formula, res = _fit(d, _terms(d, [FT, ctx, f"{FT}:{ctx}"]))
    ft = f"{FT}[T.1]"
    effects = {}
    for level in sorted(d[column].unique(), key=lambda c: (c != "unmodified", c)):
        if level == "unmodified":
            test = _combo(res, [ft], [1])
        else:
            inter = next((n for n in res.params.index if n.startswith(f"{FT}[T.1]:") and n.endswith(f"[T.{level}]")), None)
            if inter is None:
                continue
            test = {**_combo(res, [ft, inter], [1, 1]), "interaction_coefficient": float(res.params[inter])}
        effects[level] = {**_ame(res, d, (d[column] == level).to_numpy()), **test}
    return _flag({"formula": formula, "filter": "prompt_type == original", "n": int(d["weight"].sum()),
                  "effects": effects}, res)


@_safely
def model2(df) -> dict:
    """Fine-tuning x context group (emotion, relation, stake) on prompts without a belief."""
    return _context_model(df, "amendment_type")


@_safely
def model3(df) -> dict:
    """Fine-tuning x detailed context (the nine) on prompts without a belief."""
    return _context_model(df, "amendment_type_detailed")


@_safely
def model4(df) -> dict:
    """Fine-tuning x prompt type (original vs the user's opinion, correct and incorrect pooled)."""
    d = df[df["prompt_type"].isin(["original", "user_opinion"])].reset_index(drop=True)
    if d["prompt_type"].nunique() < 2:
        return {"error": "model 4 needs both original and belief (correct/incorrect) prompts"}
    pt = "C(prompt_type, Treatment('original'))"
    rhs = [FT]
    if d["amendment_type"].nunique() > 1:
        rhs.append("C(amendment_type, Treatment('unmodified'))")
    formula, res = _fit(d, _terms(d, rhs + [f"{FT}:{pt}"]))
    ft = f"{FT}[T.1]"
    base_uo, ft_uo = _param(res, f"{FT}[0]:", "user_opinion"), _param(res, f"{FT}[1]:", "user_opinion")
    effects = {"original": {**_ame(res, d, (d["prompt_type"] == "original").to_numpy()), **_combo(res, [ft], [1])}}
    if base_uo and ft_uo:
        effects["user_opinion"] = {**_ame(res, d, (d["prompt_type"] == "user_opinion").to_numpy()),
                                   **_combo(res, [ft_uo, base_uo], [1, -1]),
                                   "test_note": "p of (ft:user_opinion - base:user_opinion), as the paper's code takes it"}
    return _flag({"formula": formula, "filter": "prompt_type in (original, user_opinion)",
                  "n": int(d["weight"].sum()), "effects": effects}, res)


def four_models(df) -> dict:
    """All four of the paper's models on one data frame (see :func:`frame`)."""
    return {"model1_main_effect": model1(df), "model2_context_group": model2(df),
            "model3_context_detailed": model3(df), "model4_user_opinion": model4(df)}


# -- McNemar per cell, grouped as the paper groups its FDR ----------------------------------------------


def paper_category(template: str, context: str) -> Optional[tuple[str, str]]:
    """(Test_Type, Amendment_type) of the paper's table cell an answer belongs to, or None (mcq,
    original_neutral: in no cell of its table)."""
    if template in ("correct", "incorrect"):
        return "Sycophancy", context
    if template == "original":
        return "Normal", "unmodified\noriginal_combined" if context == "unmodified" else f"{context}\noriginal"
    return None


def cell_test(b: int, c: int, n: int, correct_base: int, correct_ft: int) -> dict:
    """One cell as the paper's table has it: accuracies, raw difference (pp), Cohen's g, odds ratio b/c,
    exact McNemar p (None when there is no discordant pair, as its NaN)."""
    from statsmodels.stats.contingency_tables import mcnemar

    g = abs(b - c) / np.sqrt(b + c) if b + c else None
    odds = (b / c) if c else (float("inf") if b else None)
    p = float(mcnemar([[0, b], [c, 0]], exact=True).pvalue) if b + c else None
    acc_b, acc_f = 100 * correct_base / n, 100 * correct_ft / n
    return {"n_pairs": n, "original_accuracy_pct": acc_b, "finetuned_accuracy_pct": acc_f,
            "raw_diff_pp": acc_f - acc_b, "base_only": b, "ft_only": c, "cohens_g": g,
            "odds_ratio": None if odds is None or odds == float("inf") else odds, "odds_ratio_infinite": odds == float("inf"),
            "p_value": p}


def bh_within(rows: list[dict], group_keys: Sequence[str]) -> list[dict]:
    """Benjamini-Hochberg adjusted p per group of rows (None p-values stay None and are not counted)."""
    from statsmodels.stats.multitest import fdrcorrection

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in group_keys)].append(r)
    for rs in groups.values():
        valid = [r for r in rs if r["p_value"] is not None]
        if valid:
            rejected, adj = fdrcorrection([r["p_value"] for r in valid], alpha=0.05, method="indep")
            for r, q, rej in zip(valid, adj, rejected):
                r["p_fdr"], r["significant_fdr"] = float(q), bool(rej)
        for r in rs:
            r.setdefault("p_fdr", None)
            r.setdefault("significant_fdr", None)
    return rows


def mcnemar_cells(base: Iterable[Any], ft: Iterable[Any], *, model: str) -> list[dict]:
    """The paper's table for one original/fine-tuned pair: one row per dataset x test type x category,
    BH-FDR within dataset x test type."""
    idx_b = {(r.task, r.question_id, r.template, r.context): r for r in base if r.correct is not None}
    idx_f = {(r.task, r.question_id, r.template, r.context): r for r in ft if r.correct is not None}
    cells: dict[tuple, list[tuple[bool, bool]]] = defaultdict(list)
    for key in idx_b.keys() & idx_f.keys():
        task, _, template, context = key
        cat = paper_category(template, context)
        if cat is not None:
            cells[(PAPER_DATASET.get(task, task),) + cat].append((idx_b[key].correct, idx_f[key].correct))
    rows = []
    for (dataset, test_type, category), pairs in sorted(cells.items()):
        b = sum(1 for x, y in pairs if x and not y)
        c = sum(1 for x, y in pairs if not x and y)
        row = {"model": model, "dataset": dataset, "test_type": test_type, "category": category}
        row.update(cell_test(b, c, len(pairs), sum(x for x, _ in pairs), sum(y for _, y in pairs)))
        rows.append(row)
    return bh_within(rows, ("model", "dataset", "test_type"))
