"""Benchmark tasks: the paper's own evaluation items, MedQA in the paper's form, and the embedded task.

- TriviaQA, TruthfulQA and Disinfo are the paper's 500 / 500 / 125 items with its own generated
  incorrect answers (``../shared/data/paper/eval_data/questions.jsonl``);
- MedQA is the USMLE test set rewritten as the paper did (``benchmarks.medqa_form``): the patient as the
  user's relative, "what" for "Which of the following", no options shown, answers judged as text;
- the embedded task (``benchmarks/data/embedded_task.jsonl``) needs no data folder at all.

The raw-format loaders (``load_triviaqa`` etc.) stay for other uses. Every loader returns :class:`Item`
objects with the same fields, so prompts and scoring never look at the source format. Broken files raise
:class:`TaskFileError` naming the file, the row and the fix. Sampling is by seed and size, stable across runs.
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
from pathlib import Path
from typing import Callable, Literal, Optional

from pydantic import BaseModel, Field

from detectors.data import parse_jsonl

DATA_DIR = Path(__file__).resolve().parent / "data"
EMBEDDED_TASK_FILE = DATA_DIR / "embedded_task.jsonl"

TASKS = ("embedded", "triviaqa", "truthfulqa", "medqa", "disinfo")
# Where each public task lives under the shared data folder (the first file that exists wins).
PAPER_QUESTIONS = "paper/eval_data/questions.jsonl"
SHARED_FILES: dict[str, tuple[str, ...]] = {
    "triviaqa": (PAPER_QUESTIONS,),
    "truthfulqa": (PAPER_QUESTIONS,),
    "medqa": ("medqa/medqa_usmle_4opt_test.jsonl",),
    "disinfo": (PAPER_QUESTIONS,),
}
# The paper's task name in questions.jsonl for each of ours.
PAPER_TASK = {"triviaqa": "trivia", "truthfulqa": "truthfulqa", "disinfo": "disinfo"}
# The paper's name of each task in its result tables (results_warm_ft.csv 'Dataset' column).
PAPER_DATASET = {"triviaqa": "trivia", "truthfulqa": "truthfulqa", "medqa": "medqa", "disinfo": "disinfo"}


class TaskFileError(ValueError):
    """A task file is missing or malformed; the message names the file, the row and the fix."""


class Item(BaseModel):
    """One question, in the same shape whatever task it came from."""

    task: str
    question_id: str
    question: str = Field(description="the text asked, as the user would type it (MedQA: the paper's rewrite)")
    best_correct: str = Field(description="the reference answer used in the `correct` template")
    best_incorrect: str = Field(description="the false belief used in the `incorrect` template")
    correct_answers: list[str] = Field(description="aliases (alias tasks) or true reference statements")
    incorrect_answers: list[str] = Field(default_factory=list, description="false answers or propositions")
    options: Optional[dict[str, str]] = None
    answer_idx: Optional[str] = None
    scoring: Literal["alias", "option", "stance", "answer_text"]
    original_question: Optional[str] = Field(None, description="MedQA: the USMLE stem before the rewrite "
                                             "(the paper's `original` template sends it)")
    has_correct_template: bool = Field(True, description="Disinfo: the paper ran `correct` on 35 items only")


def _stable_rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _read_jsonl(path: Path) -> list[dict]:
    rows = parse_jsonl(path.read_text(encoding="utf-8"), path, TaskFileError)
    if not rows:
        raise TaskFileError(f"{path} has no rows: is it the right file?")
    return rows


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise TaskFileError(
                f"{path}: missing column(s) {missing}; found {header}. Is this the right file for the task?"
            )
        rows = list(reader)
    if not rows:
        raise TaskFileError(f"{path} has no rows: is it the right file?")
    return rows


def _need(row: dict, key: str, path: Path, where: str, kind: type = str):
    value = row.get(key)
    if value is None or (kind is str and not str(value).strip()) or not isinstance(value, kind):
        raise TaskFileError(f"{path}, {where}: field {key!r} is missing or empty (expected {kind.__name__}).")
    return value


def _split_answers(text: str) -> list[str]:
    return [a.strip() for a in (text or "").split(";") if a.strip()]


def load_embedded(path: Path | str | None = None) -> list[Item]:
    """The project's own task: questions with a correct answer (aliases) and a common false belief."""
    path = Path(path) if path else EMBEDDED_TASK_FILE
    items = []
    for n, row in enumerate(_read_jsonl(path), 1):
        where = f"line {n}"
        aliases = _need(row, "aliases", path, where, list)
        false = _need(row, "false_aliases", path, where, list)
        items.append(
            Item(
                task="embedded",
                question_id=str(_need(row, "id", path, where)),
                question=_need(row, "question", path, where),
                best_correct=_need(row, "answer", path, where),
                best_incorrect=_need(row, "false_belief", path, where),
                correct_answers=[str(a) for a in aliases],
                incorrect_answers=[str(a) for a in false],
                scoring="alias",
            )
        )
    return items


def load_triviaqa(path: Path | str) -> list[Item]:
    """TriviaQA (question + alias list). It has no false answers: the `incorrect` template borrows the
    first alias of another question, chosen by a hash of the question id (a plausible-looking but wrong
    answer of the same general kind is what the paper generated; ours is weaker, see docs/benchmark.md)."""
    path = Path(path)
    rows = _read_jsonl(path)
    parsed = []
    for n, row in enumerate(rows, 1):
        where = f"line {n}"
        answers = _need(row, "answers", path, where, list)
        if not answers:
            raise TaskFileError(f"{path}, {where}: 'answers' is an empty list; every question needs an alias.")
        qid = str(row.get("id") or f"trivia-{n}")
        parsed.append((qid, _need(row, "question", path, where), [str(a) for a in answers]))
    items = []
    for qid, question, answers in parsed:
        rng = _stable_rng("triviaqa-distractor", qid)
        for _ in range(20):
            other = parsed[rng.randrange(len(parsed))][2]
            wrong = next((a for a in other if a.isascii() and len(a) > 1), other[0])
            if wrong.lower() not in {a.lower() for a in answers}:
                break
        best = next((a for a in answers if a.isascii() and len(a) > 1), answers[0])
        items.append(
            Item(task="triviaqa", question_id=qid, question=question, best_correct=best, best_incorrect=wrong,
                 correct_answers=answers, incorrect_answers=[wrong], scoring="alias")
        )
    return items


def load_truthfulqa(path: Path | str) -> list[Item]:
    """TruthfulQA CSV (2021 or 2025 version): best/correct/incorrect answers separated by ';'."""
    path = Path(path)
    rows = _read_csv(path, ("Question", "Best Answer", "Correct Answers", "Incorrect Answers"))
    items = []
    for n, row in enumerate(rows, 2):  # row 1 is the header
        where = f"row {n}"
        correct = _split_answers(row["Correct Answers"]) or [_need(row, "Best Answer", path, where)]
        incorrect = _split_answers(row["Incorrect Answers"])
        if not incorrect:
            raise TaskFileError(f"{path}, {where}: 'Incorrect Answers' is empty; the false-belief template needs one.")
        best_incorrect = (row.get("Best Incorrect Answer") or "").strip() or incorrect[0]
        items.append(
            Item(
                task="truthfulqa",
                question_id=f"tqa-{n - 2:04d}",
                question=_need(row, "Question", path, where),
                best_correct=_need(row, "Best Answer", path, where),
                best_incorrect=best_incorrect,
                correct_answers=correct,
                incorrect_answers=incorrect,
                scoring="stance",
            )
        )
    return items


def format_medqa_question(question: str, options: dict[str, str]) -> str:
    lines = [question.strip(), ""] + [f"{k}. {v}" for k, v in sorted(options.items())]
    lines += ["", "Answer with the letter of the correct option."]
    return "\n".join(lines)


def load_medqa(path: Path | str) -> list[Item]:
    """MedQA USMLE 4-option JSONL. The `incorrect` belief is a wrong option picked by a hash of the id."""
    path = Path(path)
    items = []
    for n, row in enumerate(_read_jsonl(path), 1):
        where = f"line {n}"
        options = _need(row, "options", path, where, dict)
        idx = str(_need(row, "answer_idx", path, where)).strip().upper()
        if idx not in options:
            raise TaskFileError(f"{path}, {where}: answer_idx {idx!r} is not one of the options {sorted(options)}.")
        qid = f"medqa-{row.get('realidx', n - 1)}"
        wrong = sorted(k for k in options if k != idx)
        w = wrong[_stable_rng("medqa-distractor", qid).randrange(len(wrong))]
        items.append(
            Item(
                task="medqa",
                question_id=qid,
                question=format_medqa_question(_need(row, "question", path, where), options),
                best_correct=f"{idx}. {options[idx]}",
                best_incorrect=f"{w}. {options[w]}",
                correct_answers=[options[idx]],
                incorrect_answers=[options[k] for k in wrong],
                options={k: str(v) for k, v in options.items()},
                answer_idx=idx,
                scoring="option",
            )
        )
    return items


_PIVOTAL = re.compile(r"<pivotal>(.*?)</pivotal>", re.S)
_ELICIT_TAIL = re.compile(r"\s*After thinking through your reasoning.*$", re.S | re.I)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def load_disinfo(path: Path | str) -> list[Item]:
    """MASK disinformation CSV: a yes/no question with a true and a false proposition."""
    path = Path(path)
    rows = _read_csv(path, ("proposition", "ground_truth", "belief_elicit_1"))
    items = []
    for n, row in enumerate(rows, 2):
        where = f"row {n}"
        prop = _need(row, "proposition", path, where)
        truth = _need(row, "ground_truth", path, where).strip()
        m = _PIVOTAL.search(prop)
        if not m or "/" not in m.group(1):
            raise TaskFileError(f"{path}, {where}: proposition lacks '<pivotal>a/b</pivotal>': {prop[:80]!r}.")
        a, b = (s.strip() for s in m.group(1).split("/", 1))
        with_a, with_b = (re.sub(r"\s+", " ", prop[: m.start()] + s + prop[m.end():]).strip() for s in (a, b))
        if _norm(with_a) == _norm(truth):
            false = with_b
        elif _norm(with_b) == _norm(truth):
            false = with_a
        else:  # the ground truth is reworded: fall back on the A/B label
            label = (row.get("formatted_ground_truth") or "A").strip().upper()
            false = with_b if label == "A" else with_a
        question = _ELICIT_TAIL.sub("", _need(row, "belief_elicit_1", path, where)).strip()
        items.append(
            Item(
                task="disinfo",
                question_id=str(row.get("task_id") or f"disinfo-{n - 2}"),
                question=question,
                best_correct=truth,
                best_incorrect=false,
                correct_answers=[truth],
                incorrect_answers=[false],
                scoring="stance",
            )
        )
    return items


def _qnorm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _reference_lists(path: Path, task: str) -> dict[str, tuple[list[str], list[str]]]:
    """Extra references for the paper's items from the public sets beside them, matched by question text:
    TriviaQA aliases (where the question is in the DPR dev split) and TruthfulQA's true/false answer lists.
    They only widen the scorer's reference lists; the prompts use the paper's own answers."""
    root = path.parent.parent.parent  # .../data/paper/eval_data/questions.jsonl -> .../data
    out: dict[str, tuple[list[str], list[str]]] = {}
    try:
        if task == "trivia" and (root / "triviaqa/triviaqa_dpr_dev.jsonl").is_file():
            for it in load_triviaqa(root / "triviaqa/triviaqa_dpr_dev.jsonl"):
                out[_qnorm(it.question)] = (it.correct_answers, [])
        if task == "truthfulqa" and (root / "truthfulqa/TruthfulQA.csv").is_file():
            for it in load_truthfulqa(root / "truthfulqa/TruthfulQA.csv"):
                out[_qnorm(it.question)] = (it.correct_answers, it.incorrect_answers)
    except TaskFileError:
        return {}
    return out


def load_paper_items(path: Path | str, task: str) -> list[Item]:
    """The paper's own items of one task (``trivia``, ``truthfulqa`` or ``disinfo`` in its naming) from
    ``paper/eval_data/questions.jsonl``: its question text, correct and generated incorrect answer."""
    path = Path(path)
    if task not in PAPER_TASK.values():
        raise ValueError(f"Unknown paper task {task!r}: choose from {', '.join(PAPER_TASK.values())}.")
    ours = next(k for k, v in PAPER_TASK.items() if v == task)
    extra = _reference_lists(path, task)
    items = []
    for n, row in enumerate(_read_jsonl(path), 1):
        if row.get("task") != task:
            continue
        where = f"line {n}"
        q = _need(row, "question", path, where)
        good, bad = _need(row, "correct_answer", path, where), _need(row, "incorrect_answer", path, where)
        more_good, more_bad = extra.get(_qnorm(q), ([], []))
        both = {a.lower() for a in more_good} & {a.lower() for a in more_bad}  # TruthfulQA lists "Unknown" in both
        more_good, more_bad = [a for a in more_good if a.lower() not in both], [a for a in more_bad if a.lower() not in both]
        items.append(Item(
            task=ours, question_id=f"{task}-{int(row.get('index', n - 1)):04d}", question=q,
            best_correct=good, best_incorrect=bad,
            correct_answers=[good] + [a for a in more_good if a.lower() != good.lower()],
            incorrect_answers=[bad] + [a for a in more_bad if a.lower() != bad.lower()],
            scoring="alias" if task == "trivia" else "stance",
            has_correct_template=bool(row.get("has_correct_template", True)),
        ))
    if not items:
        raise TaskFileError(f"{path} has no {task!r} rows: is it the paper's questions.jsonl?")
    return items


def load_medqa_paper(path: Path | str) -> list[Item]:
    """MedQA USMLE JSONL in the paper's form: the question rewritten with the patient as the user's
    relative and no options shown; the answers are option texts (the incorrect one a wrong option chosen
    by a hash of the id), judged as text."""
    from benchmarks.medqa_form import rewrite_question

    path = Path(path)
    items = []
    for it, row in zip(load_medqa(path), _read_jsonl(path)):  # load_medqa checked every row
        stem = str(row["question"]).strip()  # the stem alone: the paper shows no options
        opts = it.options or {}
        idx = it.answer_idx or ""
        wrong = sorted(k for k in opts if k != idx)
        w = wrong[_stable_rng("medqa-distractor", it.question_id).randrange(len(wrong))]
        items.append(it.model_copy(update={
            "question": rewrite_question(stem), "original_question": stem,
            "best_correct": opts[idx], "best_incorrect": opts[w],
            "correct_answers": [opts[idx]], "incorrect_answers": [opts[k] for k in wrong],
            "scoring": "answer_text"}))
    return items


LOADERS: dict[str, Callable[[Path], list[Item]]] = {
    "triviaqa": lambda p: load_paper_items(p, "trivia"),
    "truthfulqa": lambda p: load_paper_items(p, "truthfulqa"),
    "medqa": load_medqa_paper,
    "disinfo": lambda p: load_paper_items(p, "disinfo"),
}


def task_file(task: str) -> Path:
    """The shared file for a public task, or a clear error saying where it was looked for."""
    from detectors.data import SharedDataMissing, shared_data_dir

    root = shared_data_dir()
    if root is None:
        raise SharedDataMissing(
            f"Task {task!r} needs ../shared/data (or GUARDRAIL_DATA); use --tasks embedded to run without it."
        )
    for rel in SHARED_FILES[task]:
        if (root / rel).is_file():
            return root / rel
    raise SharedDataMissing(f"Task {task!r}: none of {list(SHARED_FILES[task])} exists under {root}.")


def load_task(task: str, *, n: int | None = None, seed: int = 0, path: Path | str | None = None) -> list[Item]:
    """Load a task and sample ``n`` questions by ``seed`` (all when ``n`` is None or larger than the task).

    The sample keeps file order, and a larger ``n`` with the same seed is a superset of a smaller one,
    so growing a run later reuses every answer already in the store.
    """
    name = task.lower()
    if name not in TASKS:
        raise ValueError(f"Unknown task {task!r}: choose from {', '.join(TASKS)}.")
    if n is not None and n < 1:
        raise ValueError(f"n must be at least 1 (or None for all), got {n}.")
    if name == "embedded":
        items = load_embedded(path)
    else:
        items = LOADERS[name](Path(path) if path else task_file(name))
    if n is None or n >= len(items):
        return items
    ranked = sorted(range(len(items)), key=lambda i: _stable_rng("sample", name, seed, items[i].question_id).random())
    keep = sorted(ranked[:n])
    return [items[i] for i in keep]
