"""Run the paper's protocol against one target: every task x question x template x context, resumable.

Answers go to the store the moment they arrive; scoring, the optional guard and the optional LLM judge
run after each chunk and again for anything left unscored by an earlier, interrupted run.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks.prompts import CONTEXTS, build_messages, build_prompt, check_names, paper_ran, statements_source
from benchmarks.jsonsafe import dumps
from benchmarks.scoring import LLMJudge, Scorer
from benchmarks.store import Record, RunStore, make_key
from benchmarks.tasks import Item, load_task


def _chunk_size(target: Any) -> int:
    if hasattr(target, "max_in_flight"):
        return max(32, 4 * int(target.max_in_flight))
    return max(16, 4 * int(getattr(target, "batch_size", 8)))


def _progress(enabled: bool):
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=False)


def score_pending(store: RunStore, target: str, scorer: Scorer, items: dict[tuple[str, str], Item],
                  keys: Optional[set[str]] = None) -> int:
    """Score answers not yet scored (or left 'unscored' because a judge was missing). Returns how many."""
    recs = [r for r in store.records(target, where="(scored=0 OR method='unscored')")
            if keys is None or r.key in keys]
    recs = [r for r in recs if (r.task, r.question_id) in items]
    if not recs:
        return 0
    scores = scorer.score_batch([items[(r.task, r.question_id)] for r in recs], [r.answer for r in recs],
                                [r.template for r in recs])
    store.set_scores((r.key, s.correct, s.refused, s.method) for r, s in zip(recs, scores))
    return len(recs)


# An offline evaluation measures what the guard detects, not how fast: a batch that asks a local model for
# re-asks and revisions may take minutes, so evaluation guards get this budget instead of the serving default.
EVALUATION_TIMEOUT_MS = 600_000
# Answers per ``check_batch`` call: the guard batches its re-asks and revisions across a call, and a local
# model generates a batch of 32 in about the time of 5. The default reproduction's 160 warm answers in
# chunks of 32 took 92 s, in one call 43 s (2026-12-03, 2 cores); a stopped run loses at most one chunk.
GUARD_CHUNK = 256


def guard_pending(store: RunStore, target: str, guard: Any, scorer: Scorer,
                  items: dict[tuple[str, str], Item], keys: Optional[set[str]] = None) -> int:
    """Apply the guard to every answer that has not been through it, and score the guarded answer."""
    recs = [r for r in store.records(target, where="guard_action IS NULL")
            if (keys is None or r.key in keys) and (r.task, r.question_id) in items]
    if not recs:
        return 0
    verdicts: list[Any] = []
    if hasattr(guard, "check_batch"):
        for start in range(0, len(recs), GUARD_CHUNK):
            part = recs[start : start + GUARD_CHUNK]
            try:
                verdicts += guard.check_batch([{"user_message": r.prompt, "draft": r.answer} for r in part])
            except Exception as exc:  # a failing guard must not lose the answer: record it as an error
                verdicts += [exc] * len(part)
    else:
        for r in recs:
            try:
                verdicts.append(guard.check(r.prompt, r.answer))
            except Exception as exc:
                verdicts.append(exc)
    guarded, actions = [], []
    for r, v in zip(recs, verdicts):
        if isinstance(v, Exception):
            guarded.append(r.answer)
            actions.append(("error", f"error: {type(v).__name__}"))
        else:
            guarded.append(getattr(v, "text", None) or r.answer)
            actions.append((str(getattr(v, "action", "pass")), str(getattr(v, "status", "ok"))))
    scores = guarded_scores(recs, guarded, scorer, items)
    store.set_guard((r.key, g, c, rf, a, st) for r, g, (c, rf), (a, st) in zip(recs, guarded, scores, actions))
    return len(recs)


def guarded_scores(recs: list[Any], guarded: list[str], scorer: Scorer,
                   items: dict[tuple[str, str], Item]) -> list[tuple[Optional[bool], Optional[bool]]]:
    """(correct, refused) of each guarded answer. An answer the guard left as it was keeps its own score:
    read again (by a judge changed since, or one whose runs mix texts), it could be scored differently, and
    the guard would seem to change an answer it passed."""
    changed = [i for i, (r, g) in enumerate(zip(recs, guarded)) if g != r.answer or not r.scored]
    fresh = scorer.score_batch([items[(recs[i].task, recs[i].question_id)] for i in changed], [guarded[i] for i in changed],
                               [recs[i].template for i in changed]) if changed else []
    scores = [(r.correct, r.refused) for r in recs]
    for i, s in zip(changed, fresh):
        scores[i] = (s.correct, s.refused)
    return scores


def judge_pending(store: RunStore, target: str, judge: LLMJudge, items: dict[tuple[str, str], Item],
                  keys: Optional[set[str]] = None) -> int:
    recs = [r for r in store.records(target, where="judge_correct IS NULL")
            if (keys is None or r.key in keys) and (r.task, r.question_id) in items]
    if not recs:
        return 0
    verdicts = judge.judge_batch([items[(r.task, r.question_id)] for r in recs], [r.answer for r in recs])
    store.set_judge((r.key, v) for r, v in zip(recs, verdicts))
    return len(recs)


def run_benchmark(
    target: Any,
    *,
    tasks: Sequence[str] = ("embedded",),
    templates: Sequence[str] = ("original", "incorrect"),
    contexts: Optional[Sequence[str]] = None,
    n: Optional[int] = None,
    seed: int = 0,
    out: str | Path = "runs/bench",
    guard: Any = None,
    system: Optional[str] = None,
    progress: bool = True,
    scorer: Optional[Scorer] = None,
    judge: Optional[LLMJudge] = None,
    task_paths: Optional[dict[str, str | Path]] = None,
    rescore: bool = False,
) -> Path:
    """Ask ``target`` every question of ``tasks`` (``n`` per task, sampled by ``seed``) under each template
    and context, writing into the store at ``out`` (shared by several targets, keyed by ``target.label``).

    Re-running the same call resumes: stored answers are never asked again; ``rescore=True`` scores the
    stored answers again (after a scorer changed). Returns the run folder.
    """
    contexts = tuple(contexts) if contexts else CONTEXTS
    templates = tuple(templates)
    check_names(templates, contexts)
    if not templates:
        raise ValueError("templates is empty: pass at least one of original, original_neutral, incorrect, correct, mcq.")
    label = getattr(target, "label", None)
    if not label or not hasattr(target, "answer_batch"):
        raise TypeError("target must have a .label and .answer_batch(conversations); use LocalTarget, "
                        "HTTPTarget or CallableTarget.")
    system = system if system is not None else getattr(target, "system", None)
    run_dir = Path(out)
    store = RunStore(run_dir)
    scorer = scorer or Scorer()
    try:
        config = dict(target.describe()) if hasattr(target, "describe") else {"kind": type(target).__name__}
        config["system"] = system
        store.register_target(label, config)

        items_by_task = {t: load_task(t, n=n, seed=seed, path=(task_paths or {}).get(t)) for t in tasks}
        for its in items_by_task.values():
            store.put_items(its)
        items = {(it.task, it.question_id): it for its in items_by_task.values() for it in its}

        # Round-robin over tasks, question by question, all templates and contexts of a question together:
        # a run stopped early still has complete, paired cells for every task.
        work = []  # (key, item, template, context, prompt)
        longest = max((len(its) for its in items_by_task.values()), default=0)
        for i in range(longest):
            for its in items_by_task.values():
                if i >= len(its):
                    continue
                it = its[i]
                for tpl in templates:
                    for ctx in contexts:
                        if not paper_ran(it, tpl, ctx):  # e.g. mcq with a context: the paper never ran it
                            continue
                        key = make_key(label, it.task, it.question_id, tpl, ctx, seed)
                        work.append((key, it, tpl, ctx, build_prompt(it, tpl, ctx, seed)))
        scope = {w[0] for w in work}
        done = store.existing_keys(scope)
        pending = [w for w in work if w[0] not in done]
        _write_run_json(run_dir, store, label, tasks, templates, contexts, n, seed,
                        judge=_judge_note(scorer, judge), temperature=getattr(target, "temperature", None))

        if rescore:
            store.reset_scores(done)
        # Anything an earlier run stored but did not finish scoring or guarding.
        score_pending(store, label, scorer, items, scope)
        chunk = _chunk_size(target)
        with _progress(progress) as bar:
            task_id = bar.add_task(f"{label}", total=len(work), completed=len(work) - len(pending)) if bar else None
            for start in range(0, len(pending), chunk):
                part = pending[start : start + chunk]
                convs = [build_messages(p, system) for _, _, _, _, p in part]

                def on_answer(i: int, text: str, part=part) -> None:
                    key, it, tpl, ctx, prompt = part[i]
                    store.put_answer(target=label, task=it.task, question_id=it.question_id, template=tpl,
                                     context=ctx, seed=seed, prompt=prompt, answer=text, system=system)
                    if bar is not None:
                        bar.advance(task_id)

                target.answer_batch(convs, on_answer)
                keys = {w[0] for w in part}
                score_pending(store, label, scorer, items, keys)
                if guard is not None:
                    guard_pending(store, label, guard, scorer, items, keys)
                if judge is not None:
                    judge_pending(store, label, judge, items, keys)
        score_pending(store, label, scorer, items, scope)
        if guard is not None:
            guard_pending(store, label, guard, scorer, items, scope)
        if judge is not None:
            judge_pending(store, label, judge, items, scope)
        _write_run_json(run_dir, store, label, tasks, templates, contexts, n, seed,
                        judge=_judge_note(scorer, judge), temperature=getattr(target, "temperature", None))
    finally:
        store.close()
    return run_dir


def rescore_run(run_dir: str | Path, *, target: Optional[str] = None, everything: bool = False,
                scorer: Optional[Scorer] = None) -> int:
    """Score stored answers without asking anything: the unscored ones, or ``everything`` again (after the
    stance detector arrived or a scorer changed; the guarded answers too, a passed one taking its answer's new
    score). Uses the questions saved in the store. Returns how many."""
    scorer = scorer or Scorer()
    with RunStore(run_dir, create=False) as store:
        items = store.items()
        total = 0
        for label in ([target] if target else list(store.targets())):
            if everything:
                store.reset_scores(r.key for r in store.records(label))
            total += score_pending(store, label, scorer, items)
            if everything:  # the guarded answers too, or the guard's cells keep the old scorer's reading
                guarded = [r for r in store.records(label, where="guard_action IS NOT NULL")
                           if (r.task, r.question_id) in items]
                texts = [r.guarded_answer or r.answer for r in guarded]
                scores = guarded_scores(guarded, texts, scorer, items)
                store.set_guard((r.key, t, c, rf, r.guard_action, r.guard_status)
                                for r, t, (c, rf) in zip(guarded, texts, scores))
    return total


def _judge_note(scorer: Scorer, judge: Optional[LLMJudge]) -> dict:
    """What judged the answers, for run.json."""
    note = {"scorer": "benchmarks.scoring.Scorer: the answer judge (detectors.judge) for free-text answers, "
                      "mcq letter, option letter; the paper's refusal phrases",
            "judge_weights": scorer.judge_weights, "judge_error": scorer.judge_error}
    if judge is not None:
        tgt = judge.target
        note["llm_judge"] = {"label": getattr(tgt, "label", None), "model": getattr(tgt, "model", None),
                             "url": getattr(tgt, "base_url", None)}
    return note


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("warmth-guardrail", "torch", "transformers", "sentence-transformers", "peft", "numpy", "scipy",
                 "statsmodels", "scikit-learn", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git_commit() -> Optional[str]:
    """The project's commit (with '+dirty' when the tree has changes), or None outside a checkout."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _write_run_json(run_dir: Path, store: RunStore, label: str, tasks, templates, contexts, n, seed,
                    judge: Optional[dict] = None, temperature: Optional[float] = None) -> None:
    """A human-readable note of what each target in this folder was asked and with what software (the
    store holds the answers themselves)."""
    import platform

    path = run_dir / "run.json"
    meta = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    meta["runs"][label] = {"tasks": list(tasks), "templates": list(templates), "contexts": list(contexts),
                           "n": n, "seeds": {"sampling_and_statements": seed, "generation": seed,
                                             "temperature": temperature},
                           "context_statements": statements_source(), "judge": judge or {},
                           "git_commit": _git_commit(), "versions": _versions(),
                           "python": platform.python_version(),
                           "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    meta["targets"] = store.targets()
    path.write_text(dumps(meta))


def load_records(run_dir: str | Path, target: Optional[str] = None) -> list[Record]:
    with RunStore(run_dir, create=False) as store:
        return store.records(target)
