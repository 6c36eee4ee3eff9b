"""Task loaders on the shared files, on the embedded task, and on broken files (clear errors)."""

from __future__ import annotations

import json

import pytest

from benchmarks.tasks import (
    TaskFileError,
    load_disinfo,
    load_embedded,
    load_medqa,
    load_task,
    load_triviaqa,
    load_truthfulqa,
)
from tests.conftest import require_shared


def test_embedded_task_is_complete():
    items = load_embedded()
    assert len(items) >= 150
    assert len({it.question_id for it in items}) == len(items)
    assert len({it.question for it in items}) == len(items)
    for it in items:
        assert it.best_correct in it.correct_answers and it.best_incorrect in it.incorrect_answers
        lower_true = {a.lower() for a in it.correct_answers}
        assert not lower_true & {a.lower() for a in it.incorrect_answers}, it.question_id


def test_shared_loaders_read_the_real_files():
    tq = load_triviaqa(require_shared("triviaqa/triviaqa_dpr_dev.jsonl"))
    assert len(tq) == 8837 and all(it.correct_answers for it in tq)
    assert all(it.best_incorrect.lower() not in {a.lower() for a in it.correct_answers} for it in tq[:500])
    tf = load_truthfulqa(require_shared("truthfulqa/TruthfulQA_v2025_with_best_incorrect.csv"))
    assert len(tf) == 790
    assert tf[0].best_incorrect == "You grow watermelons in your stomach"
    tf_old = load_truthfulqa(require_shared("truthfulqa/TruthfulQA.csv"))
    assert len(tf_old) == 817 and tf_old[0].best_incorrect == "You grow watermelons in your stomach"
    mq = load_medqa(require_shared("medqa/medqa_usmle_4opt_test.jsonl"))
    assert len(mq) == 1273
    first = mq[0]
    assert first.answer_idx == "B" and set(first.options) == {"A", "B", "C", "D"}
    assert "\nB. Tell the attending that he cannot fail to disclose this mistake" in first.question
    assert not first.best_incorrect.startswith("B.")
    di = load_disinfo(require_shared("mask/disinformation.csv"))
    assert len(di) == 125
    birds = di[0]
    assert birds.best_correct == "Birds are living organisms that evolved naturally."
    assert birds.best_incorrect == "Birds are not living organisms that evolved naturally."
    assert "final_answer" not in birds.question and birds.question.endswith("?")


def test_sampling_is_seeded_stable_and_nested():
    require_shared("truthfulqa/TruthfulQA_v2025_with_best_incorrect.csv")
    a = [it.question_id for it in load_task("truthfulqa", n=50, seed=3)]
    b = [it.question_id for it in load_task("truthfulqa", n=50, seed=3)]
    c = [it.question_id for it in load_task("truthfulqa", n=50, seed=4)]
    big = [it.question_id for it in load_task("truthfulqa", n=100, seed=3)]
    assert a == b and a != c and len(a) == 50
    assert set(a) <= set(big)
    assert len(load_task("embedded", n=10_000)) == len(load_embedded())


def test_bad_names_and_sizes():
    with pytest.raises(ValueError, match="Unknown task 'trivia'.*triviaqa"):
        load_task("trivia")
    with pytest.raises(ValueError, match="n must be at least 1"):
        load_task("embedded", n=0)


def test_broken_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "trivia.jsonl"
    path.write_text('{"id": "a", "question": "Q?", "answers": ["x"]}\n{"id": "b", "question": \n')
    with pytest.raises(TaskFileError, match=r"trivia\.jsonl, line 2: not valid JSON"):
        load_triviaqa(path)
    path.write_text('{"id": "a", "question": "Q?", "answers": []}\n')
    with pytest.raises(TaskFileError, match="empty list"):
        load_triviaqa(path)
    path.write_text("")
    with pytest.raises(TaskFileError, match="has no rows"):
        load_triviaqa(path)
    med = tmp_path / "med.jsonl"
    med.write_text(json.dumps({"question": "Q", "options": {"A": "x", "B": "y"}, "answer_idx": "E"}) + "\n")
    with pytest.raises(TaskFileError, match=r"line 1: answer_idx 'E' is not one of the options"):
        load_medqa(med)
    emb = tmp_path / "emb.jsonl"
    emb.write_text(json.dumps({"id": "e1", "question": "Q?", "answer": "a", "aliases": ["a"]}) + "\n")
    with pytest.raises(TaskFileError, match="'false_aliases' is missing"):
        load_embedded(emb)


def test_broken_csv_names_missing_columns_and_rows(tmp_path):
    path = tmp_path / "tqa.csv"
    path.write_text("Question,Best Answer\nQ?,A\n")
    with pytest.raises(TaskFileError, match=r"missing column\(s\) \['Correct Answers', 'Incorrect Answers'\]"):
        load_truthfulqa(path)
    path.write_text("Question,Best Answer,Correct Answers,Incorrect Answers\nQ?,A,A; B,\n")
    with pytest.raises(TaskFileError, match="row 2: 'Incorrect Answers' is empty"):
        load_truthfulqa(path)
    dis = tmp_path / "dis.csv"
    dis.write_text("proposition,ground_truth,belief_elicit_1\nThe sky is blue.,The sky is blue.,Is it?\n")
    with pytest.raises(TaskFileError, match=r"row 2: proposition lacks '<pivotal>a/b</pivotal>'"):
        load_disinfo(dis)
