"""`guardrail bench` (run the warmth-accuracy benchmark), `guardrail bench compare` and `guardrail bench report`.

Heavy imports happen inside the commands, so `guardrail --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _split(value: Optional[str]) -> Optional[list[str]]:
    if value is None or value.strip().lower() in ("", "all"):
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _print_summary(run_dir: Path, label: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from benchmarks.stats import summarize

    s = summarize(run_dir, target=label, n_boot=1000)
    console = Console()
    table = Table(title=f"{label}: error % by task and template (pooled over contexts where shown per context)")
    for col in ("task", "template", "context", "n", "error % [95% CI]"):
        table.add_column(col)
    for c in s["cells"]:
        if c["error_rate"] is None:
            continue
        table.add_row(c["task"], c["template"], c["context"], str(c["n_scored"]),
                      f"{100 * c['error_rate']:.1f} [{100 * c['ci_low']:.1f}, {100 * c['ci_high']:.1f}]")
    console.print(table)
    pooled = [f for f in s["flips"] if f["task"] == "all" and f["flip_rate"] is not None]
    if pooled:
        ft = Table(title="Sycophantic flip rate by context (all tasks)")
        for col in ("context", "correct w/o belief", "flips", "flip % [95% CI]"):
            ft.add_column(col)
        for f in pooled:
            ft.add_row(f["context"], str(f["n_base_correct"]), str(f["flips"]),
                       f"{100 * f['flip_rate']:.1f} [{100 * f['ci_low']:.1f}, {100 * f['ci_high']:.1f}]")
        console.print(ft)
    if s["n_unscored"]:
        console.print(f"[yellow]{s['n_unscored']} answers are unscored (a scorer was unavailable); run the same "
                      "command again to score them.[/yellow]")


def register(app: typer.Typer) -> None:
    """Add `bench`, `bench compare` and `bench report` to the CLI."""
    bench = typer.Typer(help="The warmth-accuracy benchmark: the paper's protocol against any assistant.",
                        no_args_is_help=False)

    @bench.callback(invoke_without_command=True)
    def run(
        ctx: typer.Context,
        target: str = typer.Option("embedded", help="embedded | hf:NAME_OR_PATH | http(s)://HOST/v1 (with --model) "
                                                    "| python:module:function"),
        model: Optional[str] = typer.Option(None, help="Model name an HTTP endpoint serves."),
        label: Optional[str] = typer.Option(None, help="Name of this target in the store and reports."),
        tasks: str = typer.Option("embedded", help="Comma list of embedded, triviaqa, truthfulqa, medqa, disinfo."),
        templates: str = typer.Option("original,incorrect", help="Comma list of original, original_neutral, "
                                                                 "incorrect, correct, mcq."),
        contexts: str = typer.Option("all", help="'all' (the nine) or a comma list, e.g. unmodified,emotion:sad."),
        n: Optional[int] = typer.Option(None, help="Questions per task, sampled by --seed (default: all)."),
        seed: int = typer.Option(0, help="Seed for sampling questions and context statements."),
        out: Path = typer.Option(Path("runs/bench"), help="Run folder (shared by several targets; resumable)."),
        system: Optional[str] = typer.Option(None, help="System prompt (e.g. the warm-system-prompt control)."),
        max_new_tokens: int = typer.Option(64, help="Tokens per answer."),
        batch_size: int = typer.Option(32, help="Local target: prompts per generation batch."),
        temperature: float = typer.Option(0.0, help="0 = greedy; > 0 samples with --seed."),
        max_in_flight: int = typer.Option(32, help="HTTP target: requests in flight."),
        timeout_s: float = typer.Option(60.0, help="HTTP target: seconds per request."),
        retries: int = typer.Option(5, help="HTTP target: retries on 429/5xx/connection errors."),
        api_key_env: str = typer.Option("OPENAI_API_KEY", help="HTTP target: environment variable with the key."),
        guard: bool = typer.Option(False, "--guard", help="Apply the guardrail Guard to every answer and score both."),
        judge_url: Optional[str] = typer.Option(None, help="Optional LLM judge endpoint (OpenAI-compatible)."),
        judge_model: Optional[str] = typer.Option(None, help="Model name for the LLM judge."),
        rescore: bool = typer.Option(False, "--rescore", help="Score the stored answers again (scorer changed)."),
        report: bool = typer.Option(True, help="Write report.md/json and plots into OUT/report at the end."),
        progress: bool = typer.Option(True, help="Show a progress bar."),
        threads: int = typer.Option(0, help="torch CPU threads for a local target (0 = torch default; 1 is "
                                            "faster on a busy machine)."),
    ) -> None:
        """Run the benchmark (no subcommand) and print a summary; re-run the same command to resume."""
        if ctx.invoked_subcommand is not None:
            return
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        from benchmarks.runner import run_benchmark
        from benchmarks.scoring import LLMJudge
        from benchmarks.targets import HTTPTarget, target_from_spec

        try:
            tgt = target_from_spec(target, model=model, label=label, system=system, max_new_tokens=max_new_tokens,
                                   **({"batch_size": batch_size, "temperature": temperature, "seed": seed}
                                      if not target.startswith(("http", "python:")) else
                                      {"temperature": temperature, "seed": seed, "max_in_flight": max_in_flight,
                                       "timeout_s": timeout_s, "retries": retries, "api_key_env": api_key_env}))
        except (ValueError, TypeError, ImportError, AttributeError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--target") from None
        g = None
        if guard:
            from benchmarks.runner import EVALUATION_TIMEOUT_MS
            from guardrail import Guard, Policy

            g = Guard(policy=Policy(timeout_ms=EVALUATION_TIMEOUT_MS))
        judge = None
        if judge_url:
            if not judge_model:
                raise typer.BadParameter("--judge-url needs --judge-model.", param_hint="--judge-model")
            judge = LLMJudge(HTTPTarget(judge_url, judge_model, label="judge", max_new_tokens=8,
                                        api_key_env=api_key_env))
        try:
            run_dir = run_benchmark(tgt, tasks=_split(tasks) or ["embedded"], templates=_split(templates)
                                    or ["original", "incorrect"], contexts=_split(contexts), n=n, seed=seed, out=out,
                                    guard=g, system=system, progress=progress, judge=judge,
                                    rescore=rescore)
        except ValueError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        _print_summary(run_dir, tgt.label)
        if report:
            from benchmarks.report import write_report

            write_report([run_dir], run_dir / "report")
            typer.echo(f"Report: {run_dir / 'report' / 'report.md'}")

    @bench.command("prompts")
    def prompts_cmd(
        tasks: str = typer.Option("embedded", help="Comma list of embedded, triviaqa, truthfulqa, medqa, disinfo."),
        templates: str = typer.Option("original,incorrect", help="Comma list of original, original_neutral, "
                                                                 "incorrect, correct, mcq."),
        contexts: str = typer.Option("all", help="'all' (the nine) or a comma list, e.g. unmodified,emotion:sad."),
        n: Optional[int] = typer.Option(None, help="Questions per task, sampled by --seed (default: all)."),
        seed: int = typer.Option(0, help="Seed for sampling questions and drawing context statements."),
        all_statements: bool = typer.Option(False, "--all-statements",
                                            help="One line per statement of each context, not the seeded draw."),
        ids: Optional[str] = typer.Option(None, help="Only these question ids (comma list)."),
    ) -> None:
        """Print the prompts a run would send, as JSON lines (task, question_id, template, context,
        statement, statement_index, prompt). Combinations the paper never ran are left out."""
        from benchmarks.prompt_listing import iter_prompts

        try:
            for row in iter_prompts(tasks=_split(tasks) or ["embedded"], templates=_split(templates)
                                    or ["original", "incorrect"], contexts=_split(contexts), n=n, seed=seed,
                                    all_statements=all_statements, ids=_split(ids)):
                typer.echo(json.dumps(row, ensure_ascii=False))
        except ValueError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None

    @bench.command("compare")
    def compare_cmd(
        run_a: str = typer.Argument(..., help="Run folder of target A (original); DIR::label to pick a target."),
        run_b: str = typer.Argument(..., help="Run folder of target B (e.g. warm); DIR::label to pick a target."),
        out: Optional[Path] = typer.Option(None, help="Also write the comparison as JSON here."),
    ) -> None:
        """Paired comparison of two targets: McNemar + FDR per cell, flip rates, logistic-regression AME."""
        from benchmarks.stats import compare

        from benchmarks.report import paper_comparison

        try:
            result = compare(run_a, run_b)
            result["paper"] = paper_comparison(run_a, run_b)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        from benchmarks.report import comparison_markdown

        typer.echo("\n".join(comparison_markdown(result)))
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            from benchmarks.jsonsafe import dumps

            out.write_text(dumps(result))
            typer.echo(f"Wrote {out}")

    @bench.command("rescore")
    def rescore_cmd(
        run: Path = typer.Argument(..., help="Run folder."),
        label: Optional[str] = typer.Option(None, help="Only this target (default: all in the folder)."),
        everything: bool = typer.Option(False, "--all", help="Score every stored answer again, not only unscored."),
    ) -> None:
        """Score stored answers without generating anything (e.g. once the stance detector is available)."""
        from benchmarks.runner import rescore_run

        try:
            n = rescore_run(run, target=label, everything=everything)
        except FileNotFoundError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"Scored {n} answers in {run}.")

    @bench.command("report")
    def report_cmd(
        runs: list[Path] = typer.Argument(..., help="Run folders to report on."),
        out: Optional[Path] = typer.Option(None, help="Folder for report.md, report.json and the PNG plots "
                                                      "(default: RUN/report of the first run, like `bench`)."),
        baseline: Optional[str] = typer.Option(None, help="Target label the others are compared with."),
    ) -> None:
        """Write JSON, Markdown and PNG plots for runs: the paper's statistics and table beside ours."""
        from benchmarks.report import write_report

        out = out or runs[0] / "report"
        try:
            write_report(runs, out, baseline=baseline)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"Wrote {out / 'report.md'}")

    @bench.command("samples")
    def samples_cmd(
        run: Path = typer.Argument(..., help="Run folder."),
        out: Optional[Path] = typer.Option(None, help="Folder for samples.jsonl and samples.md (default: RUN/samples)."),
        label: Optional[str] = typer.Option(None, help="Only this target (default: all in the folder)."),
        limit: Optional[int] = typer.Option(None, help="At most this many answers per target."),
    ) -> None:
        """Export transcripts (prompt, answer, score, guard verdict) as JSONL and Markdown."""
        from benchmarks.samples import export_samples

        try:
            paths = export_samples(run, out, target=label, limit=limit)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"Wrote {paths['jsonl']} and {paths['markdown']}")

    @bench.command("paper-check")
    def paper_check_cmd(
        out: Optional[Path] = typer.Option(None, help="Also write the full check as JSON here."),
    ) -> None:
        """Our statistics on the paper's own summary table: McNemar, BH-FDR and its four models' AMEs."""
        from benchmarks.jsonsafe import dumps
        from benchmarks.paper_check import check

        r = check()
        if "error" in r:
            typer.echo(f"Error: {r['error']}", err=True)
            raise typer.Exit(2)
        for k in ("mcnemar", "fdr"):
            typer.echo(f"{k}: {r[k]['n_equal_at_4dp']}/{r[k]['n_cells']} cells equal to the published p at 4 "
                       f"decimals (largest difference {r[k]['max_abs_diff']:.4f})")
        typer.echo("average marginal effects of warm fine-tuning, published vs refitted from the table (pp):")
        for t in r["models"]["table"]:
            ours = "–" if t["ours_pp"] is None else f"{t['ours_pp']:.2f}"
            typer.echo(f"  {t['model']:<26} {t['effect']:<28} {t['published_pp']:6.2f}  {ours:>6}")
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(dumps(r))
            typer.echo(f"Wrote {out}")

    from benchmarks.judge_command import register as register_judge

    register_judge(bench)  # `bench judge`
    app.add_typer(bench, name="bench")
