"""The prompts a run would send, listed without asking anything (``guardrail bench prompts``): so a
researcher can read, diff and check them against the paper before spending a GPU hour."""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

from benchmarks.prompts import CONTEXTS, check_names, compose, load_contexts, paper_ran, statement_index
from benchmarks.tasks import load_task


def iter_prompts(*, tasks: Sequence[str], templates: Sequence[str], contexts: Optional[Sequence[str]] = None,
                 n: Optional[int] = None, seed: int = 0, all_statements: bool = False,
                 ids: Optional[Sequence[str]] = None) -> Iterator[dict]:
    """One dict per prompt, in the runner's order (task, question, template, context); with
    ``all_statements`` one per statement of each context instead of the seeded draw."""
    contexts = tuple(contexts) if contexts else CONTEXTS
    check_names(templates, contexts)
    wanted = set(ids) if ids else None
    stmts = load_contexts()
    for task in tasks:
        for item in load_task(task, n=n, seed=seed):
            if wanted is not None and item.question_id not in wanted:
                continue
            for template in templates:
                for context in contexts:
                    if not paper_ran(item, template, context):
                        continue
                    if context == "unmodified":
                        choices: list[Optional[int]] = [None]
                    elif all_statements:
                        choices = list(range(len(stmts[context])))
                    else:
                        choices = [statement_index(item, template, context, seed)]
                    for k in choices:
                        text = "" if k is None else stmts[context][k]
                        yield {"task": item.task, "question_id": item.question_id, "template": template,
                               "context": context, "statement": text or None, "statement_index": k,
                               "prompt": compose(item, template, text, context)}
