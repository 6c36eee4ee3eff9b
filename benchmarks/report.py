"""Reports of one or more runs: JSON, Markdown and PNG plots, and our cells beside the paper's.

Plots: error by context (one bar per target and template, 95% bootstrap intervals), flip rate by
context, and the guard's effect (raw vs guarded error) where a guard ran. The paper table places each
of our cells beside the matching cells of ``../shared/data/paper/results_warm_ft.csv`` (all five models).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks.prompts import CONTEXTS
from benchmarks.stats import compare, summarize
from benchmarks.store import RunStore
from benchmarks.jsonsafe import dumps

PAPER_TABLE = "paper/results_warm_ft.csv"


def load_paper_table(path: str | Path | None = None, extra_columns: Sequence[str] = ()) -> list[dict]:
    """The paper's per-cell accuracies (original vs warm fine-tune; ``extra_columns`` are required too), or
    [] where the file is absent."""
    if path is None:
        from detectors.data import shared_data_dir

        root = shared_data_dir()
        if root is None or not (root / PAPER_TABLE).is_file():
            return []
        path = root / PAPER_TABLE
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"Amendment_type", "Original Accuracy (%)", "Fine-tuned Accuracy (%)", "Model", "Dataset", "Test_Type",
            *extra_columns}
    if rows and not need <= set(rows[0]):
        raise ValueError(f"{path}: expected columns {sorted(need)}, found {sorted(rows[0])}.")
    for r in rows:  # the published CSV has Windows line breaks inside quoted cells
        r["Amendment_type"] = r["Amendment_type"].replace("\r\n", "\n").strip()
    return rows


def paper_cell_key(template: str, context: str) -> Optional[tuple[str, str]]:
    """(Test_Type, Amendment_type) of the paper's table cell an answer belongs to (see
    ``benchmarks.paper_stats.paper_category``): beliefs pooled per context, ``original`` per context."""
    from benchmarks.paper_stats import paper_category

    return paper_category(template, context)


def paper_comparison(run_a: str, run_b: str) -> dict:
    """The paper's statistics for one original (A) / fine-tuned (B) pair: its four models and its
    McNemar table (BH-FDR within dataset x test type). ``run_*`` are ``DIR::label``."""
    import pandas as pd

    from benchmarks.paper_stats import four_models, frame, mcnemar_cells
    from benchmarks.stats import _records

    _, ra = _records(run_a)
    _, rb = _records(run_b)
    model = ra[0].target if ra else "model"
    df = pd.concat([frame(ra, is_finetuned=0, model=model), frame(rb, is_finetuned=1, model=model)],
                   ignore_index=True)
    return {"a": ra[0].target if ra else None, "b": rb[0].target if rb else None,
            "four_models": four_models(df), "mcnemar": mcnemar_cells(ra, rb, model=model)}


def paper_side_by_side(comparisons: Sequence[dict], paper_rows: list[dict]) -> list[dict]:
    """The paper's table cell for cell (dataset x test type x category, on the tasks we ran), its accuracy
    original -> warm per model beside ours per compared pair. A cell we did not run stays empty (None),
    never filled from another cell; cells the paper never ran (the embedded task, mcq) are not rows."""
    ours: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for cmp in comparisons:
        for c in (cmp.get("paper") or {}).get("mcnemar", []):
            ours[(c["dataset"], c["test_type"], c["category"])][f"{cmp['paper']['a']} → {cmp['paper']['b']}"] = c
    ran = {k[0] for k in ours}
    index: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in paper_rows:
        index[(r["Dataset"], r["Test_Type"], r["Amendment_type"])][r["Model"]] = {
            "original_accuracy_pct": _num(r["Original Accuracy (%)"]),
            "finetuned_accuracy_pct": _num(r["Fine-tuned Accuracy (%)"]), "p_fdr": _num(r.get("p-value (FDR corrected)"))}
    pairs = sorted({p for v in ours.values() for p in v})
    out = []
    for key in sorted(index):
        if key[0] not in ran:
            continue
        row: dict[str, Any] = {"dataset": key[0], "test_type": key[1], "category": key[2], "paper": index[key],
                               "ours": {}}
        for pair in pairs:
            c = ours.get(key, {}).get(pair)
            row["ours"][pair] = None if c is None else {
                "original_accuracy_pct": c["original_accuracy_pct"], "finetuned_accuracy_pct": c["finetuned_accuracy_pct"],
                "n": c["n_pairs"], "p_fdr": c["p_fdr"]}
        out.append(row)
    return out


def _num(text: Any) -> Optional[float]:
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return x if x == x and abs(x) != float("inf") else None


def _fmt(x: Optional[float], digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pct_ci(c: dict, prefix: str = "") -> str:
    r, lo, hi = c.get(prefix + "error_rate"), c.get(prefix + "ci_low"), c.get(prefix + "ci_high")
    if r is None:
        return "–"
    return f"{100 * r:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def _plot_error_by_context(summaries: Sequence[dict], path: Path) -> Optional[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = [c for s in summaries for c in s["cells"] if c["error_rate"] is not None]
    tasks = sorted({c["task"] for c in cells})
    if not tasks:
        return None
    series = sorted({(c["target"], c["template"]) for c in cells})
    fig, axes = plt.subplots(len(tasks), 1, figsize=(12, 3.4 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        ctxs = [x for x in CONTEXTS if any(c["task"] == task and c["context"] == x for c in cells)]
        width = 0.8 / max(1, len(series))
        for k, (target, tpl) in enumerate(series):
            look = {c["context"]: c for c in cells if (c["task"], c["target"], c["template"]) == (task, target, tpl)}
            xs = np.arange(len(ctxs)) + k * width - 0.4 + width / 2
            ys = [100 * look[x]["error_rate"] if x in look else np.nan for x in ctxs]
            lo = [100 * (look[x]["error_rate"] - look[x]["ci_low"]) if x in look else 0 for x in ctxs]
            hi = [100 * (look[x]["ci_high"] - look[x]["error_rate"]) if x in look else 0 for x in ctxs]
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=f"{target} · {tpl}")
            for x, ctx in zip(xs, ctxs):  # n under every bar: at small n an interval alone misleads
                if ctx in look:
                    ax.text(x, 1, f"n={look[ctx]['n_scored']}", ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_xticks(np.arange(len(ctxs)))
        ax.set_xticklabels(ctxs, rotation=25, ha="right", fontsize=8)
        ax.set_ylabel("error %")
        ax.set_title(f"{task}: error rate by context (95% bootstrap CI; n = answers scored)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_flips(summaries: Sequence[dict], path: Path) -> Optional[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    flips = [f for s in summaries for f in s["flips"] if f["task"] == "all" and f["flip_rate"] is not None]
    if not flips:
        return None
    targets = sorted({f["target"] for f in flips})
    ctxs = [x for x in CONTEXTS if any(f["context"] == x for f in flips)]
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(targets)
    for k, t in enumerate(targets):
        look = {f["context"]: f for f in flips if f["target"] == t}
        xs = np.arange(len(ctxs)) + k * width - 0.4 + width / 2
        ys = [100 * look[x]["flip_rate"] if x in look else np.nan for x in ctxs]
        lo = [100 * (look[x]["flip_rate"] - look[x]["ci_low"]) if x in look else 0 for x in ctxs]
        hi = [100 * (look[x]["ci_high"] - look[x]["flip_rate"]) if x in look else 0 for x in ctxs]
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=t)
        for x, ctx in zip(xs, ctxs):
            if ctx in look:
                ax.text(x, 1, f"{look[ctx]['flips']}/{look[ctx]['n_base_correct']}", ha="center", va="bottom",
                        fontsize=6, rotation=90)
    ax.set_xticks(np.arange(len(ctxs)))
    ax.set_xticklabels(ctxs, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("flip rate %")
    ax.set_ylim(0, 100)
    ax.set_title("Sycophantic flips (flips/correct without the belief): correct without the false belief, "
                 "incorrect with it (all tasks)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_guard(summaries: Sequence[dict], path: Path) -> Optional[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = [c for s in summaries for c in s["cells"] if c.get("guarded_error_rate") is not None]
    if not cells:
        return None
    groups = sorted({(c["target"], c["template"]) for c in cells})
    raw, guarded = [], []
    for g in groups:
        cs = [c for c in cells if (c["target"], c["template"]) == g]
        n = sum(c["guarded_n"] for c in cs)
        raw.append(100 * sum(c["error_rate"] * c["n_scored"] for c in cs) / max(1, sum(c["n_scored"] for c in cs)))
        guarded.append(100 * sum(c["guarded_error_rate"] * c["guarded_n"] for c in cs) / max(1, n))
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = np.arange(len(groups))
    ax.bar(xs - 0.2, raw, 0.4, label="raw answer")
    ax.bar(xs + 0.2, guarded, 0.4, label="guarded answer")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{t}\n{tpl}" for t, tpl in groups], fontsize=8)
    ax.set_ylabel("error %")
    ax.set_title("The guard's effect (all contexts pooled)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _targets_of(run_dir: Path) -> list[str]:
    with RunStore(run_dir, create=False) as store:
        return sorted({r.target for r in store.records()})


def write_report(run_dirs: Sequence[str | Path], out_dir: str | Path, *, baseline: Optional[str] = None,
                 n_boot: int = 2000, seed: int = 0, paper_csv: str | Path | None = None) -> dict:
    """Write ``report.json``, ``report.md`` and PNG plots for the runs into ``out_dir``; return the JSON.

    When the runs hold two or more targets, the first (or ``baseline``) is compared with every other one
    (McNemar + FDR per cell, flip rates, logistic-regression AME).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("write_report needs at least one run folder.")
    summaries = [summarize(d, n_boot=n_boot, seed=seed) for d in run_dirs]
    located = [(d, t) for d in run_dirs for t in _targets_of(d)]
    comparisons = []
    if len(located) > 1:
        base = next((x for x in located if x[1] == baseline), located[0]) if baseline else located[0]
        for other in located:
            if other == base:
                continue
            a, b = f"{base[0]}::{base[1]}", f"{other[0]}::{other[1]}"
            cmp = compare(a, b, n_boot=n_boot, seed=seed)
            cmp["paper"] = paper_comparison(a, b)
            comparisons.append(cmp)
    paper = paper_side_by_side(comparisons, load_paper_table(paper_csv))
    plots = {
        "error_by_context": _plot_error_by_context(summaries, out / "error_by_context.png"),
        "flip_rates": _plot_flips(summaries, out / "flip_rates.png"),
        "guard_effect": _plot_guard(summaries, out / "guard_effect.png"),
    }
    report = {"runs": summaries, "comparisons": comparisons, "paper_side_by_side": paper,
              "plots": {k: str(v.name) for k, v in plots.items() if v}}
    (out / "report.json").write_text(dumps(report))
    (out / "report.md").write_text(render_markdown(report))
    return report


def paper_models_markdown(paper: dict) -> list[str]:
    """The paper's four models for one pair: its AMEs and p-values, and our delta-method intervals."""
    lines = [f"### The paper's four models: {paper['a']} → {paper['b']} (binomial GLMs, its formulas and filters)", "",
             "| model | effect | n | AME (pp) | p (its test) | 95% CI (ours, delta method) |", "|---|---|---|---|---|---|"]
    for name, fit in paper["four_models"].items():
        if "error" in fit:
            lines.append(f"| {name} | – | – | not fitted: {fit['error']} | | |")
            continue
        if fit.get("warning"):
            lines.append(f"| {name} | warning | | {fit['warning']} | | |")
        effects = {"fine-tuning": fit["fine_tuning"]} if "fine_tuning" in fit else fit["effects"]
        for eff, e in effects.items():
            p = "–" if e.get("p_value") is None else f"{e['p_value']:.3g}"
            lines.append(f"| {name} | {eff} | {e['n']} | {e['ame_pp']:+.2f} | {p} | "
                         f"[{e['ours_ci_low_pp']:+.2f}, {e['ours_ci_high_pp']:+.2f}] |")
    return lines + [""]


def comparison_markdown(cmp: dict) -> list[str]:
    """Markdown lines for one paired comparison (the report and `guardrail bench compare` print the same)."""
    lines: list[str] = []
    a, b = cmp["a"]["target"], cmp["b"]["target"]
    lines += [f"## {a} vs {b}", ""]
    if cmp.get("paper"):
        lines += paper_models_markdown(cmp["paper"])
    lines += ["### Ours: every template × context cell (paired, McNemar exact, Benjamini–Hochberg FDR over all cells)", "",
              "| task | template | context | pairs | error A % | error B % | B − A (pp) | p | p (FDR) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for c in cmp["cells"]:
        lines.append(f"| {c['task']} | {c['template']} | {c['context']} | {c['n_pairs']} | {100 * c['error_a']:.1f} | "
                     f"{100 * c['error_b']:.1f} | {c['diff_pp']:+.1f} | {c['p_value']:.3g} | {c['p_fdr']:.3g}"
                     f"{' *' if c['significant_fdr'] else ''} |")
    ame = cmp.get("ame") or {}
    if "ame_pp" in ame:
        lines += ["", f"Ours: average marginal effect of {b} over {a} (`{ame['formula']}`, all templates pooled): "
                      f"{ame['ame_pp']:+.2f} pp [{ame['ci_low_pp']:+.2f}, {ame['ci_high_pp']:+.2f}], n={ame['n']}."
                  + (f" Warning: {ame['warning']}." if ame.get("warning") else "")]
    elif ame:
        lines += ["", f"AME not available: {ame.get('error')}"]
    by = (cmp.get("ame_by_context") or {}).get("by_context")
    if by:
        lines += ["", "| context | AME (pp) | 95% CI |", "|---|---|---|"]
        lines += [f"| {c} | {v['ame_pp']:+.2f} | [{v['ci_low_pp']:+.2f}, {v['ci_high_pp']:+.2f}] |"
                  for c, v in by.items()]
    return lines


def render_markdown(report: dict) -> str:
    lines = ["# Warmth–accuracy benchmark report", ""]
    for s in report["runs"]:
        lines += [f"## Run `{s['run_dir']}`", "",
                  f"Targets: {', '.join(s['targets'])}; {s['n_records']} answers "
                  f"({s['n_unscored']} unscored). Error % with 95% bootstrap intervals "
                  f"({s['bootstrap']['n_boot']} resamples, seed {s['bootstrap']['seed']}); refusals excluded "
                  "except on Disinfo.", ""]
        guarded = any(c.get("guarded_error_rate") is not None for c in s["cells"])
        head = "| target | task | template | context | n | error % [95% CI] |" + (" guarded error % |" if guarded else "")
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for c in s["cells"]:
            row = (f"| {c['target']} | {c['task']} | {c['template']} | {c['context']} | {c['n_scored']} | "
                   f"{_pct_ci(c)} |")
            if guarded:
                row += f" {_pct_ci(c, 'guarded_')} |"
            lines.append(row)
        lines += ["", "### Sycophantic flips (correct without the belief, incorrect with it)", "",
                  "| target | task | context | questions correct without belief | flips | flip % [95% CI] |",
                  "|---|---|---|---|---|---|"]
        for f in s["flips"]:
            rate = "–" if f["flip_rate"] is None else (
                f"{100 * f['flip_rate']:.1f} [{100 * f['ci_low']:.1f}, {100 * f['ci_high']:.1f}]")
            lines.append(f"| {f['target']} | {f['task']} | {f['context']} | {f['n_base_correct']} | {f['flips']} | {rate} |")
        if s.get("guard_actions"):
            lines += ["", f"Guard actions: `{json.dumps(s['guard_actions'])}`"]
            for t, c in (s.get("guard_catch") or {}).items():
                lines.append(f"Guard on {t}'s answers that the judge says assert the user's false answer: "
                             f"{c['flagged']}/{c['n']} flagged ({_fmt(c['share'], 2)}).")
        if s.get("judge"):
            lines += ["", "LLM judge agreement with the embedded scorer (Cohen's kappa): " +
                      ", ".join(f"{t}: {_fmt(j['kappa'], 2)} (n={j['n']})" for t, j in s["judge"].items())]
        lines.append("")
    for cmp in report["comparisons"]:
        lines += comparison_markdown(cmp)
        lines.append("")
    if report["paper_side_by_side"]:
        rows = report["paper_side_by_side"]
        models = sorted({m for r in rows for m in r["paper"]})
        pairs = sorted({t for r in rows for t in r["ours"]})
        lines += ["## The paper's table beside ours, cell for cell (accuracy %, original → fine-tuned)", "",
                  "Rows are the paper's cells on the tasks run here: `Sycophancy` pools the `correct` and `incorrect` "
                  "templates per context, `Normal` is `original` per context. An empty cell (–) was not run here; "
                  "* = significant after BH-FDR within model × dataset × test type.", "",
                  "| dataset | test | category | " + " | ".join(f"ours: {p} (n)" for p in pairs) + " | "
                  + " | ".join(models) + " |",
                  "|" + "---|" * (3 + len(pairs) + len(models))]

        def cell(c: Optional[dict], with_n: bool) -> str:
            if not c or c.get("original_accuracy_pct") is None:
                return "–"
            star = " *" if (c.get("p_fdr") is not None and c["p_fdr"] < 0.05) else ""
            n = f" ({c['n']})" if with_n else ""
            return f"{c['original_accuracy_pct']:.1f} → {c['finetuned_accuracy_pct']:.1f}{star}{n}"

        for r in rows:
            cat = r["category"].replace("\n", " / ")
            lines.append(f"| {r['dataset']} | {r['test_type']} | {cat} | "
                         + " | ".join(cell(r["ours"].get(p), True) for p in pairs) + " | "
                         + " | ".join(cell(r["paper"].get(m), False) for m in models) + " |")
        lines.append("")
    if report["plots"]:
        lines += ["## Plots", ""] + [f"![{k}]({v})" for k, v in report["plots"].items()] + [""]
    return "\n".join(lines)
