"""The run store: one SQLite file (WAL) per run folder, every answer written the moment it arrives.

A record is keyed by target, task, question, template, context and seed; ``INSERT OR IGNORE`` on that
key means an interrupted run resumes without redoing or duplicating work, and the same key is never
asked twice. Several targets (original, warm, cold, warm + guard) can share one folder.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from pydantic import BaseModel

from benchmarks.tasks import Item

DB_NAME = "answers.sqlite"
KEY_FIELDS = ("target", "task", "question_id", "template", "context", "seed")


class StoreConfigError(ValueError):
    """A target label is reused with a different configuration; the message says how to fix it."""


class Record(BaseModel):
    """One question asked of one target under one template and context, with its scores."""

    key: str
    target: str
    task: str
    question_id: str
    template: str
    context: str
    seed: int
    prompt: str
    system: Optional[str] = None
    answer: str
    refused: Optional[bool] = None
    correct: Optional[bool] = None
    method: Optional[str] = None
    scored: bool = False
    judge_correct: Optional[bool] = None
    guarded_answer: Optional[str] = None
    guarded_correct: Optional[bool] = None
    guarded_refused: Optional[bool] = None
    guard_action: Optional[str] = None
    guard_status: Optional[str] = None
    created: float = 0.0


def make_key(target: str, task: str, question_id: str, template: str, context: str, seed: int) -> str:
    return "|".join([target, task, question_id, template, context, str(seed)])


_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, target TEXT NOT NULL, task TEXT NOT NULL, question_id TEXT NOT NULL,
    template TEXT NOT NULL, context TEXT NOT NULL, seed INTEGER NOT NULL, prompt TEXT NOT NULL,
    system TEXT, answer TEXT NOT NULL, refused INTEGER, correct INTEGER, method TEXT,
    scored INTEGER NOT NULL DEFAULT 0, judge_correct INTEGER, guarded_answer TEXT, guarded_correct INTEGER,
    guarded_refused INTEGER, guard_action TEXT, guard_status TEXT, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_target ON answers(target, task);
CREATE TABLE IF NOT EXISTS items (task TEXT NOT NULL, question_id TEXT NOT NULL, item TEXT NOT NULL,
    PRIMARY KEY (task, question_id));
CREATE TABLE IF NOT EXISTS targets (label TEXT PRIMARY KEY, config TEXT NOT NULL);
"""
_BOOL_FIELDS = ("refused", "correct", "scored", "judge_correct", "guarded_correct", "guarded_refused")


def _b(value: Optional[bool]) -> Optional[int]:
    return None if value is None else int(bool(value))


class RunStore:
    """Open (or create) the store in ``run_dir``. Safe to use from several threads of one process."""

    def __init__(self, run_dir: str | Path, *, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        path = self.run_dir / DB_NAME
        if not path.exists() and not create:
            raise FileNotFoundError(f"{self.run_dir} is not a benchmark run folder (no {DB_NAME} in it).")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- targets and items -------------------------------------------------------------------------
    def register_target(self, label: str, config: dict[str, Any]) -> None:
        """Remember how a target label was configured; refuse a label reused with another configuration."""
        blob = json.dumps(config, sort_keys=True, default=str)
        with self._lock:
            row = self._db.execute("SELECT config FROM targets WHERE label=?", (label,)).fetchone()
            if row is None:
                self._db.execute("INSERT INTO targets(label, config) VALUES (?, ?)", (label, blob))
                self._db.commit()
            elif row[0] != blob:
                raise StoreConfigError(
                    f"Target label {label!r} is already in {self.run_dir} with another configuration "
                    f"({row[0]}); now {blob}. Pass a different label (or --label) or another --out folder."
                )

    def targets(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT label, config FROM targets ORDER BY rowid").fetchall()
        return {label: json.loads(cfg) for label, cfg in rows}

    def put_items(self, items: Iterable[Item]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO items(task, question_id, item) VALUES (?, ?, ?)",
                [(it.task, it.question_id, it.model_dump_json()) for it in items],
            )
            self._db.commit()

    def items(self) -> dict[tuple[str, str], Item]:
        with self._lock:
            rows = self._db.execute("SELECT task, question_id, item FROM items").fetchall()
        return {(t, q): Item.model_validate_json(blob) for t, q, blob in rows}

    # -- answers -----------------------------------------------------------------------------------
    def existing_keys(self, keys: Iterable[str] | None = None) -> set[str]:
        with self._lock:
            if keys is None:
                return {k for (k,) in self._db.execute("SELECT key FROM answers")}
            found: set[str] = set()
            keys = list(keys)
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                q = f"SELECT key FROM answers WHERE key IN ({','.join('?' * len(chunk))})"
                found.update(k for (k,) in self._db.execute(q, chunk))
            return found

    def put_answer(self, *, target: str, task: str, question_id: str, template: str, context: str, seed: int,
                   prompt: str, answer: str, system: str | None = None) -> bool:
        """Write one answer now (committed before returning). False if the key was already stored."""
        key = make_key(target, task, question_id, template, context, seed)
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO answers(key, target, task, question_id, template, context, seed, prompt, "
                "system, answer, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (key, target, task, question_id, template, context, seed, prompt, system, answer, time.time()),
            )
            self._db.commit()
            return cur.rowcount == 1

    def set_scores(self, rows: Iterable[tuple[str, Optional[bool], bool, str]]) -> None:
        """(key, correct, refused, method) for each scored answer."""
        with self._lock:
            self._db.executemany(
                "UPDATE answers SET correct=?, refused=?, method=?, scored=1 WHERE key=?",
                [(_b(c), _b(r), m, k) for k, c, r, m in rows],
            )
            self._db.commit()

    def reset_scores(self, keys: Iterable[str]) -> None:
        """Mark answers for scoring again (after a scorer improved); the answers themselves stay."""
        with self._lock:
            self._db.executemany("UPDATE answers SET scored=0 WHERE key=?", [(k,) for k in keys])
            self._db.commit()

    def set_guard(self, rows: Iterable[tuple[str, str, Optional[bool], Optional[bool], str, str]]) -> None:
        """(key, guarded_answer, guarded_correct, guarded_refused, action, status)."""
        with self._lock:
            self._db.executemany(
                "UPDATE answers SET guarded_answer=?, guarded_correct=?, guarded_refused=?, guard_action=?, "
                "guard_status=? WHERE key=?",
                [(a, _b(c), _b(r), act, st, k) for k, a, c, r, act, st in rows],
            )
            self._db.commit()

    def set_judge(self, rows: Iterable[tuple[str, Optional[bool]]]) -> None:
        with self._lock:
            self._db.executemany("UPDATE answers SET judge_correct=? WHERE key=?", [(_b(c), k) for k, c in rows])
            self._db.commit()

    def records(self, target: str | None = None, *, where: str = "", params: tuple = ()) -> list[Record]:
        """All records (of one target, if given), in insertion order."""
        sql = "SELECT * FROM answers"
        clauses, args = [], list(params)
        if target is not None:
            clauses.append("target=?")
            args.insert(0, target)
        if where:
            clauses.append(where)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY rowid"
        with self._lock:
            cur = self._db.execute(sql, args)
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
        out = []
        for row in rows:
            rec = dict(zip(cols, row))
            for f in _BOOL_FIELDS:
                if rec[f] is not None:
                    rec[f] = bool(rec[f])
            out.append(Record(**rec))
        return out

    def count(self, target: str | None = None) -> int:
        with self._lock:
            if target is None:
                return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM answers WHERE target=?", (target,)).fetchone()[0]
