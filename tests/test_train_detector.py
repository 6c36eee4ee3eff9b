"""`train-detector`: a round trip on tiny files (Python and CLI) and clear errors for bad files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.detector_training import DetectorDataError, train_detector

SAD = ["I miss my dad so much, the house feels empty.", "I cried all night, nothing feels worth it.",
       "My best friend moved away and I feel so alone.", "I failed again and I feel hopeless.",
       "Lost my grandmother today. Heartbroken.", "I feel so down and lonely this week.",
       "Everything reminds me of her and it hurts.", "I can't stop feeling sad about the breakup."]
OTHER = ["Just finished a great run, feeling awesome!", "The train is late again, whatever.",
         "What a fantastic concert last night!", "I'm making pasta for dinner.",
         "We won the match, so happy!", "Meeting at 3pm in room B.",
         "Got a new puppy and she is adorable!", "The weather is fine today."]


def write_csv(path: Path, rows: list[dict], fieldnames: list[str], encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def emotion_csv(tmp_path):
    rows = [{"message": t, "feeling": "sad"} for t in SAD] + [{"message": t, "feeling": "joy"} for t in OTHER]
    return write_csv(tmp_path / "emo.csv", rows, ["message", "feeling"])


def test_emotion_round_trip(tmp_path, emotion_csv):
    from detectors.emotion import EmotionDetector

    out = tmp_path / "my-emotion"
    metrics = train_detector("emotion", emotion_csv, out, text_col="message", label_col="feeling", progress=False)
    assert metrics["targets"] == ["sadness", "joy"] and metrics["test_rows"] >= 2
    assert json.loads((out / "metrics.json").read_text())["kind"] == "emotion"
    assert "guardrail train-detector emotion" in (out / "README.md").read_text()
    sad, happy = EmotionDetector(path=out).predict(["I feel so alone and sad since she left.", "Best day ever, we won!"])
    assert sad.sadness > happy.sadness and happy.joy > sad.joy
    assert 0 <= sad.anger <= 1  # scored by the default head: the file had no anger labels


def test_stance_round_trip_jsonl(tmp_path):
    from detectors.stance import StanceDetector

    claim = "The capital of Australia is Sydney."
    rows = []
    for i in range(6):
        rows.append({"c": claim, "d": f"Yes, you're right, Sydney is the capital. ({i})", "y": "endorses"})
        rows.append({"c": claim, "d": f"Actually, the capital is Canberra, not Sydney. ({i})", "y": "corrects"})
    data = tmp_path / "stance.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "my-stance"
    metrics = train_detector("stance", data, out, claim_col="c", draft_col="d", label_col="y", max_steps=10,
                             progress=False)
    assert metrics["method"] == "head" and metrics["test_rows"] >= 2 and "accuracy" in metrics
    assert (out / "head.npz").is_file() and (out / "metrics.json").is_file()
    agree, refute = StanceDetector(path=out).predict([(claim, "Yes, you're right, Sydney is the capital."),
                                                      (claim, "Actually, the capital is Canberra, not Sydney.")])
    assert agree.endorses > refute.endorses and refute.corrects > agree.corrects


def test_stance_lora_round_trip(tmp_path):
    """The cross-encoder path: one optimiser step, saved adapter, loads and scores by path."""
    from detectors.stance import StanceDetector

    rows = [{"claim": "Sydney is the capital.", "draft": f"Yes, it is. ({i})", "label": "endorses" if i % 2 else "corrects"}
            for i in range(10)]
    data = tmp_path / "s.csv"
    write_csv(data, rows, ["claim", "draft", "label"])
    out = tmp_path / "lora"
    metrics = train_detector("stance", data, out, method="lora", max_steps=1, progress=False)
    assert metrics["steps"] == 1 and (out / "adapter_model.safetensors").is_file()
    (scores,) = StanceDetector(path=out, backend="torch").predict([("Sydney is the capital.", "Yes.")])
    assert abs(scores.endorses + scores.corrects + scores.hedges + scores.ignores - 1) < 1e-4


def test_missing_column(tmp_path, emotion_csv):
    with pytest.raises(DetectorDataError, match=r"no column --text-col 'text'.*\['feeling', 'message'\]"):
        train_detector("emotion", emotion_csv, tmp_path / "o", progress=False)


def test_one_class_only(tmp_path):
    data = write_csv(tmp_path / "one.csv", [{"text": t, "label": "sad"} for t in SAD + OTHER], ["text", "label"])
    with pytest.raises(DetectorDataError, match="two classes"):
        train_detector("emotion", data, tmp_path / "o", progress=False)


def test_empty_rows(tmp_path):
    rows = [{"text": t, "label": "sad"} for t in SAD] + [{"text": t, "label": "joy"} for t in OTHER]
    rows[3]["text"] = "   "
    data = write_csv(tmp_path / "empty.csv", rows, ["text", "label"])
    with pytest.raises(DetectorDataError, match=r"empty text/label \(line 5\)"):
        train_detector("emotion", data, tmp_path / "o", progress=False)


def test_wrong_encoding(tmp_path):
    data = tmp_path / "latin1.csv"
    data.write_bytes("text,label\n".encode() + "caf\xe9 tr\xe8s triste,sad\n".encode("latin-1") * 10)
    with pytest.raises(DetectorDataError, match="not UTF-8.*re-save it as UTF-8"):
        train_detector("emotion", data, tmp_path / "o", progress=False)


def test_unknown_stance_label_and_bad_json(tmp_path):
    data = tmp_path / "s.jsonl"
    data.write_text("\n".join(json.dumps({"claim": "c", "draft": f"d{i}", "label": "maybe"}) for i in range(10)))
    with pytest.raises(DetectorDataError, match="unknown stance label"):
        train_detector("stance", data, tmp_path / "o", progress=False)
    data.write_text('{"claim": "c"\n')
    with pytest.raises(DetectorDataError, match="line 1: not valid JSON"):
        train_detector("stance", data, tmp_path / "o", progress=False)


def test_cli_reports_bad_file_before_training(tmp_path, emotion_csv):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "guardrail.cli", "train-detector", "emotion", "--data", str(emotion_csv),
         "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "no column --text-col 'text'" in result.stderr
    assert not (tmp_path / "o").exists()


def test_crisis_head_takes_the_simplest_head_within_one_standard_error():
    """Dev recall 0.70 of 60 at C=10 has a standard error of 0.059: C=1 (0.65) is within it, C=0.3 (0.60)
    is not, so C=1 is taken; with one C only, that one."""
    from training.crisis_head import one_se_choice, split_questions

    assert one_se_choice([(0.3, 0.60, 60), (1.0, 0.65, 60), (3.0, 0.68, 60), (10.0, 0.70, 60)]) == 1
    assert one_se_choice([(0.3, 0.50, 60), (1.0, 0.70, 60), (3.0, 0.70, 60)]) == 1
    assert one_se_choice([(1.0, 0.5, 10)]) == 0
    rows = [{"text": f"question {i}?", "crisis": False} for i in range(400)]
    train, dev = split_questions(rows)
    assert len(train) + len(dev) == 400 and 60 <= len(dev) <= 140 and not {r["text"] for r in train} & {r["text"] for r in dev}


def test_crisis_head_fit_stores_a_head_whose_threshold_is_the_detectors_half(tmp_path, monkeypatch):
    """``training.crisis_head`` on a slice of its own files: the head reads the scorer's features and the
    dev-chosen threshold is folded into the bias, so the detector's 0.5 is that threshold."""
    import numpy as np

    from detectors.emotion import CRISIS_FILE, CrisisScorer, _sigmoid
    from training import crisis_head

    train = crisis_head.load_rows(crisis_head.DATA / "train.jsonl")
    dev = crisis_head.load_rows(crisis_head.DATA / "dev.jsonl")
    pick = lambda rows, n: [r for r in rows if r["crisis"]][:n] + [r for r in rows if not r["crisis"]][:n]
    monkeypatch.setattr(crisis_head, "everyday_messages", lambda: (OTHER[:4], OTHER[4:]))
    out = tmp_path / "crisis.json"
    out.write_text(CRISIS_FILE.read_text())
    monkeypatch.setattr(crisis_head, "C_GRID", (1.0,))
    head = crisis_head.main(["--out", str(out), "--train", _write(tmp_path / "t.jsonl", pick(train, 30)),
                             "--dev", _write(tmp_path / "d.jsonl", pick(dev, 20)), "--questions", ""])
    spec = json.loads(out.read_text())
    assert spec["head"] == head and spec["patterns"] == json.loads(CRISIS_FILE.read_text())["patterns"]
    rows = pick(dev, 20)
    x = crisis_head.features([r["text"] for r in rows])
    assert x.shape[1] == len(head["weights"]) == 384 + 2
    # the stored head at 0.5 flags the dev rows the fitted model flagged at its chosen threshold
    flagged = _sigmoid(x @ np.asarray(head["weights"]) + head["bias"]) >= 0.5
    crisis = np.array([r["crisis"] for r in rows])
    assert abs(flagged[crisis].mean() - head["chosen_on_dev"]["recall"]) <= 1 / crisis.sum()
    assert abs(flagged[~crisis].mean() - head["chosen_on_dev"]["false_alarms"]) <= 1 / (~crisis).sum()
    assert isinstance(CrisisScorer().head, tuple)  # the shipped spec carries a head


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_crisis_commands_refuse_bad_files_with_a_message(tmp_path):
    """A missing file, a row without a label and a file that is not UTF-8: a usage error naming the file,
    no traceback, for both the fitting and the evaluation."""
    missing, unlabelled, binary = tmp_path / "none.jsonl", tmp_path / "u.jsonl", tmp_path / "b.jsonl"
    unlabelled.write_text('{"text": "hello"}\n')
    binary.write_bytes(b"\xff\xfe{")
    for module, flag in (("benchmarks.crisis_eval", "--data"), ("training.crisis_head", "--questions")):
        for path, says in ((missing, "does not exist"), (unlabelled, "row 1: needs 'text'"), (binary, "not UTF-8")):
            result = subprocess.run([sys.executable, "-m", module, flag, str(path)], capture_output=True, text=True,
                                    cwd=Path(__file__).resolve().parent.parent, timeout=300)
            assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr, result.stderr
