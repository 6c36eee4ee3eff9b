"""Emotion detector on the real encoder and default weights: behaviour, crisis cues, edge inputs, quality."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.emotion import EmotionDetector, WeightsError
from detectors.text import InvalidTextError
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def detector():
    return EmotionDetector()


def test_basic_emotions(detector):
    sad, happy, angry, scared = detector.predict([
        "My dog died yesterday and I can't stop crying. I feel so empty.",
        "I got the job!! I'm so happy and excited right now!",
        "I am furious. They lied to me again and I'm sick of it.",
        "I'm terrified of the surgery tomorrow, I can't stop shaking.",
    ])
    assert sad.sadness > 0.5
    assert sad.sadness > max(happy.sadness, angry.sadness)
    assert happy.joy > 0.5 and happy.joy > sad.joy
    assert angry.anger > 0.5 and angry.anger > happy.anger
    assert scared.fear > 0.5 and scared.fear > happy.fear
    assert min(sad.distress, angry.distress, scared.distress) > happy.distress
    assert not any(s.crisis for s in (sad, happy, angry, scared))


@pytest.mark.parametrize("text", [
    "I want to end my life.",
    "i dont want to be alive anymore",
    "I've been thinking about killing myself every night.",
    "Everyone would be better off without me. I've written letters to say goodbye.",
    "I have the pills saved up and tonight I'm going to take them all.",
    # stockpiled means, a farewell, someone else at risk: none of these says "suicide"; the prototypes
    # alone missed most such messages (held-out recall 0.23 before the head)
    "ive been saving my sleeping tablets for weeks and i think i have enough now. tonight feels like the night",
    "I've given the cat to my sister and left letters for everyone on the kitchen table. I'm ready now.",
    "My son just texted 'sorry for everything, look after mum' and his phone is off. He took the car keys.",
])
def test_crisis_cues(detector, text):
    (scores,) = detector.predict([text])
    assert scores.crisis and scores.crisis_score >= 0.5


@pytest.mark.parametrize("text", [
    "This homework is killing me.",
    "I could die of embarrassment, I tripped in front of everyone.",
    "I'm dying to see the new Dune movie!",
    "My grandmother died last month and I miss her so much.",
    "I feel really sad and lonely today.",
    "What is the capital of Australia? I think it's Sydney.",
    # medicine questions: the prototypes alone flagged some of these
    "How many paracetamol can I take in a day with a bad toothache?",
    "I take a multivitamin every day so I'm covered for heart disease, right?",
    "Can I stop my antidepressants now that I feel better, or should I taper?",
    "my mum says pills from the doctor can't be addictive",
])
def test_not_crisis(detector, text):
    (scores,) = detector.predict([text])
    assert not scores.crisis and scores.crisis_score < 0.5


def test_crisis_quality_on_the_held_out_set(detector):
    """Another writer's messages, written blind (benchmarks/data/heldout/crisis.jsonl): nothing there chose
    the head or its threshold. Floors a little under the measured 0.60 recall and 0.031 false alarms (4 of 130;
    3 of 130 before every encoder run read one text, 2026-12-03)."""
    from benchmarks.crisis_eval import HELDOUT, evaluate
    from training.crisis_head import load_rows

    report = evaluate(load_rows(HELDOUT))
    assert report["recall"] >= 0.55 and report["false_alarms"] <= 0.05, report


def test_crisis_flag_spares_everyday_chat(detector):
    """A third writer's everyday messages (benchmarks/data/heldout/crisis_everyday.jsonl: quiz questions,
    a sad sentence before an ordinary question, greetings) with crisis messages hidden in ordinary requests.
    Each false alarm replaces an answer with a hotline reply. Measured 2026-12-03: false alarms 0.0227
    (10 of 440; 9 before every encoder run read one text), recall 0.45 (27 of 60)."""
    from benchmarks.crisis_eval import EVERYDAY, evaluate
    from training.crisis_head import load_rows

    report = evaluate(load_rows(EVERYDAY))
    assert report["false_alarms"] <= 0.03 and report["recall"] >= 0.40, report


def test_history_carries_sadness(detector):
    plain, with_history = detector.predict(
        ["What is the capital of Australia?"] * 2,
        histories=[[], ["My mum passed away last week.", "I can't stop crying, everything feels pointless."]],
    )
    assert with_history.sadness > plain.sadness + 0.2


def test_crisis_in_history_persists(detector):
    (scores,) = detector.predict(["Anyway, what's the capital of Australia?"], histories=[["I want to kill myself."]])
    assert scores.crisis


def test_empty_and_long_inputs(detector):
    empty, long = detector.predict(["", "I feel so sad. " * 3400])
    assert empty.sadness == 0 and not empty.crisis and not empty.truncated
    assert len("I feel so sad. " * 3400) >= 50_000
    assert long.truncated and long.sadness > 0.5
    assert detector.predict([]) == []


def test_bad_inputs(detector):
    with pytest.raises(TypeError, match="list"):
        detector.predict("a single string")
    with pytest.raises(InvalidTextError, match=r"texts\[1\].*decode"):
        detector.predict(["ok", b"bytes"])
    with pytest.raises(ValueError, match="histories"):
        detector.predict(["a", "b"], histories=[[]])
    with pytest.raises(WeightsError):
        EmotionDetector(path="/nonexistent/folder")


def test_default_weights_are_small_and_carded():
    from detectors.emotion import DEFAULT_PATH

    assert (DEFAULT_PATH / "head.npz").stat().st_size < 5 * 2**20
    card = (DEFAULT_PATH / "README.md").read_text()
    assert "GoEmotions" in card and "CARER" in card and "training.detector_training" in card
    metrics = json.loads((DEFAULT_PATH / "metrics.json").read_text())
    assert metrics["goemotions_test_sadness"]["n"] == 5427


def test_quality_carer_validation_sample(detector):
    from training.detector_emotion import load_carer
    from training.detector_training import binary_metrics

    require_shared("emotion_carer/validation.jsonl")
    texts, y = load_carer("validation")
    idx = np.random.default_rng(0).choice(len(texts), 400, replace=False)
    p = np.array([s.sadness for s in detector.predict([texts[i] for i in idx])])
    m = binary_metrics(y[idx, 0], p, detector.head.sadness_threshold)
    assert m["auroc"] >= 0.95 and m["f1"] >= 0.80, m


def test_quality_goemotions_test_sample(detector):
    from training.detector_emotion import load_goemotions
    from training.detector_training import binary_metrics

    require_shared("goemotions/original/test.tsv")
    texts, _, sad = load_goemotions("test")
    rng = np.random.default_rng(0)
    pos = np.flatnonzero(sad == 1)
    neg = rng.choice(np.flatnonzero(sad == 0), 300, replace=False)
    idx = np.concatenate([pos, neg])
    p = np.array([s.sadness for s in detector.predict([texts[i] for i in idx])])
    m = binary_metrics(sad[idx], p)
    assert m["auroc"] >= 0.90, m


def test_default_stacks_the_tuned_encoder(detector):
    from detectors.emotion import DEFAULT_PATH, TUNED_DIR

    scorer = detector.head.tuned()
    assert scorer is not None and scorer.targets == detector.head.targets
    assert (DEFAULT_PATH / TUNED_DIR / "adapter.safetensors").stat().st_size < 5 * 2**20
    texts = ["My dog died yesterday and I can't stop crying.", "We won the final, best day ever!"]
    sad, happy = scorer.logits(texts)
    assert sad[0] > happy[0] and happy[2] > sad[2]  # sadness and joy columns


def test_tuned_encoder_onnx_matches_torch():
    from detectors.emotion import DEFAULT_PATH, TUNED_DIR
    from detectors.emotion_encoder import TunedEmotionScorer

    texts = ["I feel so alone since she left.", "The bus was late again, so annoying.", "ok"]
    onnx = TunedEmotionScorer(DEFAULT_PATH / TUNED_DIR, backend="onnx").logits(texts, use_cache=False)
    torch = TunedEmotionScorer(DEFAULT_PATH / TUNED_DIR, backend="torch").logits(texts, use_cache=False)
    assert np.abs(onnx - torch).max() < 0.25, (onnx, torch)  # int8 weights: close, not equal


def test_split_graph_is_the_shared_and_the_tuned_encoder_in_one(tmp_path):
    """The split network (frozen lower layers once, then both top halves) computes exactly what the shared
    encoder and the merged tuned encoder compute apart; an adapter on every layer cannot be split."""
    import torch

    from detectors import models
    from detectors.emotion_encoder import load_merged, new_net, save_adapter, split_net

    torch.manual_seed(0)
    net = new_net(5, 8, layers=[4, 5], trainable=False)
    for name, p in net.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.02)
    targets = ["sadness", "anger", "joy", "fear", "distress"]
    save_adapter(net, tmp_path / "top", outputs=targets, targets=targets, rank=8, max_tokens=64, layers=[4, 5])
    split = split_net(tmp_path / "top")
    feed = split.tokenizer(["I miss her every single day.", "Is the Great Wall visible from space?"], padding=True,
                           return_tensors="pt")
    with torch.no_grad():
        shared, tuned = split(feed["input_ids"], feed["attention_mask"], feed["token_type_ids"])
        frozen = models.load_encoder(None)[0].auto_model(**feed).last_hidden_state
        merged = load_merged(tmp_path / "top").encoder(**feed).last_hidden_state
    assert torch.allclose(shared, frozen, atol=1e-5) and torch.allclose(tuned, merged, atol=1e-5)
    assert (tuned - frozen).abs().max() > 0.01  # the top layers are tuned

    save_adapter(net, tmp_path / "all", outputs=targets, targets=targets, rank=8, max_tokens=64)
    with pytest.raises(ValueError, match="every layer"):
        split_net(tmp_path / "all")


def test_one_pass_gives_the_shared_vector_and_the_sentences(detector):
    """With the default (split) tuned encoder, predicting a message leaves its shared vector and token
    states in the shared encoder's cache: no second pass; the vector is the one a pass of its own gives."""
    from detectors.encoder import get_encoder

    scorer = detector.head.tuned()
    if not scorer.split:
        pytest.skip("the default tuned encoder is not split (ONNX backend off)")
    message = "My cat passed away on Sunday. I keep reading that cats see only in black and white, is that true?"
    encoder = get_encoder()
    detector.predict([message])
    assert message in encoder._states_cache and message in encoder._cache
    alone = encoder.encode([message], use_cache=False).vectors[0]
    assert float(encoder._cache[message][0] @ alone) > 0.999
    first, second, beyond = encoder.span_vectors(message, [(0, 29), (30, len(message)), (len(message) + 5, len(message) + 9)])
    assert beyond is None and abs(float(np.linalg.norm(first)) - 1) < 1e-5
    question = encoder.encode([message[30:]], use_cache=False).vectors[0]
    assert float(second @ question) > float(first @ question) and float(second @ question) > 0.7


def test_weights_folder_missing_its_tuned_encoder(tmp_path):
    import shutil

    from detectors.emotion import DEFAULT_PATH, TUNED_DIR

    shutil.copytree(DEFAULT_PATH, tmp_path / "emo")
    shutil.rmtree(tmp_path / "emo" / TUNED_DIR)
    with pytest.raises(WeightsError, match="adapter.safetensors is missing"):
        EmotionDetector(path=tmp_path / "emo")


def test_a_sad_sentence_makes_a_mixed_message_sad(detector):
    """The paper's case: sadness stated in one sentence, a question and a belief in the next ones."""
    scores = detector.predict([
        "I've been so low since my dad died last month and I can't sleep. What's the capital of Australia? I'm pretty sure it's Sydney.",
        "My dog passed away this morning and I can't stop crying. Is it true that we only use 10% of our brain?",
        "I feel so alone since my divorce. Anyway, how many legs does a spider have? I think six.",
        "What's the capital of Australia? I'm pretty sure it's Sydney.",
        "Had a great day at the beach! By the way, who wrote Hamlet? I think it was Marlowe.",
    ])
    assert all(s.sadness >= 0.4 for s in scores[:3]), [round(s.sadness, 3) for s in scores]
    assert all(s.sadness < 0.1 for s in scores[3:]), [round(s.sadness, 3) for s in scores]


def test_long_message_is_read_at_its_start_and_its_end(detector):
    from detectors.emotion import read_window
    from detectors.encoder import get_encoder

    filler = "We walked to the shop and bought some bread and milk. " * 150
    end_sad = "Hello there. " + filler + "My mum died yesterday and I can't stop crying."
    start_sad = "My mum died yesterday and I can't stop crying. " + filler + "Anyway, how are you?"
    neutral = "Hello there. " + filler + "Anyway, how are you?"
    scores = detector.predict([end_sad, start_sad, neutral])
    assert all(s.truncated for s in scores)
    threshold = detector.head.sadness_threshold  # 0.40 for the default weights
    assert scores[0].sadness > threshold and scores[1].sadness > threshold, scores
    assert scores[2].sadness < min(scores[0].sadness, scores[1].sadness) - 0.2, scores
    seen, cut = read_window(end_sad, get_encoder().core)
    assert cut and seen.startswith("Hello there.") and seen.endswith("can't stop crying.") and len(seen) < 2_000


def test_crisis_cue_anywhere_in_a_long_message_is_found(detector):
    filler = "We walked to the shop and bought some bread and milk. " * 1_000
    (scores,) = detector.predict([filler + "I want to kill myself. " + filler])
    assert scores.crisis and scores.truncated
