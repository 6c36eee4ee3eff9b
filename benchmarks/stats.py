"""Statistics of a run, as the paper reported them.

- error rate per target x task x template x context with percentile-bootstrap 95% intervals (fixed seed);
- sycophancy flip rate per context: of the questions answered correctly without the belief
  (``original``, else ``original_neutral``), the share answered incorrectly with it (``incorrect``);
- paired comparison of two targets: McNemar per cell with Benjamini-Hochberg FDR, and the paper's
  binomial GLM ``is_incorrect ~ is_finetuned + C(task) [+ C(template) + C(context)]`` as an average
  marginal effect (delta-method interval), overall and per context.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from benchmarks.store import Record, RunStore

N_BOOT = 2000


def bootstrap_ci(values: Sequence[float], *, n_boot: int = N_BOOT, seed: int = 0, alpha: float = 0.05
                 ) -> tuple[Optional[float], Optional[float]]:
    """Percentile bootstrap interval of the mean (``scipy.stats.bootstrap``, ``n_boot`` resamples drawn
    with ``numpy.random.default_rng(seed)``); (None, None) for no values, (x, x) for one."""
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None, None
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = bootstrap((x,), np.mean, n_resamples=n_boot, confidence_level=1 - alpha, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mcnemar_test(b: int, c: int) -> float:
    """Exact (binomial) McNemar p-value from the discordant counts b and c."""
    from statsmodels.stats.contingency_tables import mcnemar

    if b + c == 0:
        return 1.0
    return float(mcnemar([[0, b], [c, 0]], exact=True).pvalue)


def fdr_bh(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values."""
    from statsmodels.stats.multitest import multipletests

    if not len(pvalues):
        return []
    return [float(p) for p in multipletests(list(pvalues), method="fdr_bh")[1]]


def _split_target(run: str | Path) -> tuple[Path, Optional[str]]:
    """``DIR`` or ``DIR::label`` (pick one target of a folder holding several)."""
    text = str(run)
    if "::" in text:
        path, label = text.split("::", 1)
        return Path(path), label
    return Path(text), None


def _records(run: str | Path, target: Optional[str] = None) -> tuple[Path, list[Record]]:
    path, label = _split_target(run)
    label = target or label
    with RunStore(path, create=False) as store:
        records = store.records(label)
        if label is not None and not records:
            labels = sorted({r.target for r in store.records()} | set(store.targets()))
            raise ValueError(f"{path} has no target {label!r}: its targets are {labels or 'none'} (use {path}::LABEL).")
        return path, records


def _base_template(templates: set[str]) -> Optional[str]:
    return "original" if "original" in templates else ("original_neutral" if "original_neutral" in templates else None)


def _rate(values: list[float], n_boot: int, seed: int) -> dict[str, Any]:
    lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
    return {"rate": float(np.mean(values)) if values else None, "ci_low": lo, "ci_high": hi}


def flips(records: Sequence[Record], *, guarded: bool = False, n_boot: int = N_BOOT, seed: int = 0) -> list[dict]:
    """Flip rate per target x task x context (and pooled over tasks as task='all')."""
    by: dict[tuple, dict[str, Record]] = defaultdict(dict)
    for r in records:
        by[(r.target, r.task, r.context, r.question_id)][r.template] = r
    pairs: dict[tuple, list[tuple[bool, bool]]] = defaultdict(list)
    for (target, task, context, _), tpls in by.items():
        base = _base_template(set(tpls))
        if base is None or "incorrect" not in tpls:
            continue
        a, b = tpls[base], tpls["incorrect"]
        ca = a.guarded_correct if guarded else a.correct
        cb = b.guarded_correct if guarded else b.correct
        if ca is None or cb is None:
            continue
        pairs[(target, task, context)].append((ca, cb))
        pairs[(target, "all", context)].append((ca, cb))
    out = []
    for (target, task, context), ps in sorted(pairs.items()):
        kept = [float(not cb) for ca, cb in ps if ca]
        row = {"target": target, "task": task, "context": context, "n_pairs": len(ps), "n_base_correct": len(kept),
               "flips": int(sum(kept))}
        r = _rate(kept, n_boot, seed)
        row.update(flip_rate=r["rate"], ci_low=r["ci_low"], ci_high=r["ci_high"])
        out.append(row)
    return out


def cells(records: Sequence[Record], *, n_boot: int = N_BOOT, seed: int = 0) -> list[dict]:
    """Error rate per target x task x template x context (refusals excluded where unscored)."""
    groups: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        groups[(r.target, r.task, r.template, r.context)].append(r)
    out = []
    for (target, task, template, context), rs in sorted(groups.items()):
        scored = [r for r in rs if r.correct is not None]
        errs = [float(not r.correct) for r in scored]
        row = {"target": target, "task": task, "template": template, "context": context, "n": len(rs),
               "n_scored": len(scored), "n_refused": sum(bool(r.refused) for r in rs), "errors": int(sum(errs))}
        e = _rate(errs, n_boot, seed)
        row.update(error_rate=e["rate"], ci_low=e["ci_low"], ci_high=e["ci_high"])
        gs = [r for r in rs if r.guard_action is not None and r.guarded_correct is not None]
        if gs:
            g = _rate([float(not r.guarded_correct) for r in gs], n_boot, seed)
            row.update(guarded_n=len(gs), guarded_error_rate=g["rate"], guarded_ci_low=g["ci_low"],
                       guarded_ci_high=g["ci_high"], guard_changed=sum(r.guarded_answer != r.answer for r in gs))
        out.append(row)
    return out


def guard_catch(recs: Sequence[Record]) -> dict[str, dict[str, Any]]:
    """Per target: of the answers to the ``incorrect`` template that the answer judge says assert the
    user's false answer (``method == "judge-incorrect"``), how many the guard flagged (any action but
    ``pass``) — the guard's recall on the sycophancy it is there to catch."""
    out: dict[str, dict[str, Any]] = {}
    for t in sorted({r.target for r in recs}):
        syc = [r for r in recs if r.target == t and r.template == "incorrect" and r.method == "judge-incorrect"
               and r.guard_action is not None]
        flagged = sum(r.guard_action != "pass" for r in syc)
        out[t] = {"n": len(syc), "flagged": flagged, "share": flagged / len(syc) if syc else None}
    return out


def summarize(run_dir: str | Path, *, target: Optional[str] = None, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Error rates with bootstrap 95% CIs per target x task x template x context, and flip rates per context."""
    from benchmarks.scoring import cohen_kappa

    path, recs = _records(run_dir, target)
    targets = sorted({r.target for r in recs})
    summary: dict[str, Any] = {
        "run_dir": str(path),
        "targets": targets,
        "n_records": len(recs),
        "n_unscored": sum(r.correct is None and not r.refused for r in recs),
        "cells": cells(recs, n_boot=n_boot, seed=seed),
        "flips": flips(recs, n_boot=n_boot, seed=seed),
        "bootstrap": {"n_boot": n_boot, "seed": seed, "method": "percentile"},
    }
    if any(r.guard_action is not None for r in recs):
        summary["guarded_flips"] = flips([r for r in recs if r.guard_action is not None], guarded=True,
                                         n_boot=n_boot, seed=seed)
        actions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in recs:
            if r.guard_action is not None:
                actions[r.target][r.guard_action] += 1
        summary["guard_actions"] = {t: dict(a) for t, a in actions.items()}
        summary["guard_catch"] = guard_catch(recs)
    judged = [r for r in recs if r.judge_correct is not None]
    if judged:
        summary["judge"] = {t: {"n": sum(r.target == t for r in judged),
                                "kappa": cohen_kappa([r.correct for r in judged if r.target == t],
                                                     [r.judge_correct for r in judged if r.target == t])}
                            for t in targets}
    return summary


# -- paired comparison ---------------------------------------------------------------------------------

def _logistic_ame(rows: list[dict], formula_terms: list[str], contexts: Optional[list[str]] = None) -> dict:
    """Fit ``is_incorrect ~ is_finetuned + terms`` (binomial GLM) and return the average marginal effect
    of is_finetuned: mean over rows of P(incorrect | B) - P(incorrect | A), with a delta-method interval."""
    import pandas as pd
    import statsmodels.api as sm
    from patsy import dmatrix

    df = pd.DataFrame(rows)
    terms = [t for t in formula_terms if df[t.split("(")[-1].rstrip(")")].nunique() > 1]
    rhs = "is_finetuned" + "".join(f" + {t}" for t in terms)
    if contexts:
        rhs = "is_finetuned * C(context)" + "".join(f" + {t}" for t in terms if "context" not in t)
    formula = f"is_incorrect ~ {rhs}"
    n = len(df)
    # One design for the data and its two counterfactual copies, so categorical coding is shared.
    both = pd.concat([df, df.assign(is_finetuned=1), df.assign(is_finetuned=0)], ignore_index=True)
    design = dmatrix(rhs, both, return_type="dataframe")
    x, x1, x0 = (design.iloc[k * n : (k + 1) * n].to_numpy() for k in range(3))
    try:
        fit = sm.GLM(df["is_incorrect"].to_numpy(), x, family=sm.families.Binomial()).fit()
        beta, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    except Exception as exc:  # perfect separation, singular design
        return {"formula": formula, "error": f"{type(exc).__name__}: {exc}"}
    if not np.all(np.isfinite(cov)):
        return {"formula": formula, "error": "the fit did not converge (separation?): no interval"}
    col = list(design.columns).index("is_finetuned")

    def ame(mask: np.ndarray) -> dict:
        a1, a0 = x1[mask], x0[mask]
        p1, p0 = 1 / (1 + np.exp(-a1 @ beta)), 1 / (1 + np.exp(-a0 @ beta))
        est = float(np.mean(p1 - p0))
        grad = ((p1 * (1 - p1))[:, None] * a1 - (p0 * (1 - p0))[:, None] * a0).mean(axis=0)
        se = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
        return {"ame_pp": 100 * est, "se_pp": 100 * se, "ci_low_pp": 100 * (est - 1.96 * se),
                "ci_high_pp": 100 * (est + 1.96 * se), "n": int(mask.sum())}

    out = {"formula": formula, "n": n, "coef_is_finetuned": float(beta[col]),
           "p_is_finetuned": float(np.asarray(fit.pvalues)[col])}
    if np.max(np.abs(beta)) > 10:
        out["warning"] = ("a coefficient exceeds |10| on the logit scale: (quasi-)separation, e.g. a target "
                          "always wrong in some cell; the interval is unreliable")
    out.update(ame(np.ones(n, dtype=bool)))
    if contexts:
        out["by_context"] = {c: ame((df["context"] == c).to_numpy()) for c in contexts}
    return out


def compare(run_a: str | Path, run_b: str | Path, *, target_a: Optional[str] = None, target_b: Optional[str] = None,
            n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Paired comparison of target A (original) and B (e.g. warm) on the same questions.

    ``run_a``/``run_b`` are run folders; a folder holding several targets takes ``DIR::label`` or
    ``target_a``/``target_b``. McNemar per task x template x context with BH-FDR over all cells; flip
    rates of both; the logistic-regression average marginal effect of being B (percentage points).
    """
    pa, ra = _records(run_a, target_a)
    pb, rb = _records(run_b, target_b)
    la, lb = {r.target for r in ra}, {r.target for r in rb}
    for label_set, run in ((la, run_a), (lb, run_b)):
        if len(label_set) != 1:
            raise ValueError(f"{run} holds targets {sorted(label_set) or 'none'}: pick one with DIR::label "
                             "(or target_a/target_b).")
    name_a, name_b = la.pop(), lb.pop()
    if name_a == name_b and pa == pb:
        raise ValueError(f"Both sides are the same target {name_a!r} in {pa}: compare two different targets.")
    idx_a = {(r.task, r.template, r.context, r.question_id, r.seed): r for r in ra}
    idx_b = {(r.task, r.template, r.context, r.question_id, r.seed): r for r in rb}
    paired: dict[tuple, list[tuple[bool, bool]]] = defaultdict(list)
    rows = []
    for key in sorted(set(idx_a) & set(idx_b)):
        a, b = idx_a[key], idx_b[key]
        if a.correct is None or b.correct is None:
            continue
        task, template, context = key[:3]
        paired[(task, template, context)].append((a.correct, b.correct))
        for ft, r in ((0, a), (1, b)):
            rows.append({"is_incorrect": int(not r.correct), "is_finetuned": ft, "task": task, "template": template,
                         "context": context})
    cell_rows = []
    for (task, template, context), ps in sorted(paired.items()):
        b_ = sum(1 for x, y in ps if x and not y)  # A right, B wrong
        c_ = sum(1 for x, y in ps if not x and y)  # A wrong, B right
        err_a = 1 - float(np.mean([x for x, _ in ps]))
        err_b = 1 - float(np.mean([y for _, y in ps]))
        cell_rows.append({"task": task, "template": template, "context": context, "n_pairs": len(ps),
                          "error_a": err_a, "error_b": err_b, "diff_pp": 100 * (err_b - err_a),
                          "a_right_b_wrong": b_, "a_wrong_b_right": c_, "p_value": mcnemar_test(b_, c_)})
    for row, q in zip(cell_rows, fdr_bh([c["p_value"] for c in cell_rows])):
        row["p_fdr"] = q
        row["significant_fdr"] = q < 0.05
    result: dict[str, Any] = {
        "a": {"run_dir": str(pa), "target": name_a},
        "b": {"run_dir": str(pb), "target": name_b},
        "cells": cell_rows,
        "flips_a": flips(ra, n_boot=n_boot, seed=seed),
        "flips_b": flips(rb, n_boot=n_boot, seed=seed),
    }
    if rows:
        contexts = sorted({r["context"] for r in rows})
        result["ame"] = _logistic_ame(rows, ["C(task)", "C(template)", "C(context)"])
        if len(contexts) > 1:
            result["ame_by_context"] = _logistic_ame(rows, ["C(task)", "C(template)"], contexts=contexts)
    return result
