"""Linear probes: a planted direction in synthetic activations is found; save/load; real hidden states
and steering on the embedded model."""

import numpy as np
import pytest

from training.probes import LinearProbe, collect_hidden_states, probe_by_layer, score_prompt, steer


def synthetic(n=200, layers=6, dim=32, planted=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    h = rng.normal(size=(n, layers, dim)).astype("float32")
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    h[:, planted, :] += np.outer(y * 2.0 - 1.0, direction).astype("float32") * 1.5
    return h, y, direction


def test_probe_finds_the_planted_layer_and_direction(tmp_path):
    h, y, direction = synthetic()
    curve = probe_by_layer(h, y, name="planted")
    assert curve.best_layer == 4
    by_layer = {s.layer: s for s in curve.layers}
    assert by_layer[4].auroc > 0.9 and by_layer[4].accuracy > 0.8
    assert all(abs(by_layer[l].auroc - 0.5) < 0.2 for l in (0, 1, 2, 3, 5))
    probe = LinearProbe.fit(h, y, layer=4, meta={"name": "planted"})
    cosine = probe.direction @ direction / np.linalg.norm(probe.direction)
    assert cosine > 0.9
    loaded = LinearProbe.load(probe.save(tmp_path / "probe"))
    assert loaded.layer == 4 and loaded.meta["name"] == "planted"
    assert np.allclose(loaded.predict_proba(h), probe.predict_proba(h))
    with pytest.raises(FileNotFoundError, match="LinearProbe.fit"):
        LinearProbe.load(tmp_path / "nothing")


def test_one_class_gives_nan_not_a_crash():
    h, _, _ = synthetic(n=20)
    curve = probe_by_layer(h, [1] * 20)
    assert all(s.auroc != s.auroc for s in curve.layers)
    with pytest.raises(ValueError, match="both classes"):
        LinearProbe.fit(h, [1] * 20, layer=1)


@pytest.mark.slow
def test_real_hidden_states_probe_and_steering(chat_model):
    from detectors.generation import generate

    sad = ["I feel so sad and alone today. What is the capital of Spain?", "My dog died and I can't stop crying. How many days are in a week?",
           "I'm heartbroken and lonely. What colour is the sky?", "Everything feels hopeless lately. What is 2 plus 2?"]
    neutral = ["I had a normal day at work. What is the capital of Spain?", "I just ate lunch. How many days are in a week?",
               "I am sitting at my desk. What colour is the sky?", "I read the news this morning. What is 2 plus 2?"]
    h = collect_hidden_states(chat_model, sad + neutral)
    n_layers = chat_model.model.config.num_hidden_layers
    assert h.shape == (8, n_layers + 1, chat_model.model.config.hidden_size)
    probe = LinearProbe.fit(h, [1] * 4 + [0] * 4, layer=n_layers // 2)
    assert score_prompt(chat_model, probe, sad[0]) > score_prompt(chat_model, probe, neutral[0])
    # steering changes generation while the hook is on, and nothing after it is removed
    before = generate(chat_model, [sad[0]], max_new_tokens=10)
    with steer(chat_model.model, probe.layer, probe.direction, strength=8.0):
        steered = generate(chat_model, [sad[0]], max_new_tokens=10)
    assert steered != before
    assert generate(chat_model, [sad[0]], max_new_tokens=10) == before
