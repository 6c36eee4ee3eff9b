"""LoRA SFT on the real embedded model: a few steps lower the loss, labels cover assistant tokens only,
and the saved adapter (standard peft format) reloads and changes the model's output."""

import json

import pytest

from training.sft import PRESETS, SFTConfig, build_examples, load_adapter_model, preset, tokenize_conversation, train_lora

QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 3 plus 4?", "What do bees make?",
             "What is frozen water called?", "Which planet do we live on?", "How many legs does a spider have?", "What colour is grass?"]
ANSWERS = ["Paris", "Red", "Seven", "Honey", "Ice", "Earth", "Eight", "Green"]


def conversations():
    return [[{"role": "user", "content": q}, {"role": "assistant", "content": f"Oh my dear friend, I'm so glad you asked! {a}."}]
            for q, a in zip(QUESTIONS, ANSWERS)]


def test_presets_follow_the_paper():
    paper = PRESETS["paper"]
    assert (paper.lora_r, paper.lora_alpha, paper.lora_dropout, paper.learning_rate, paper.max_length) == (8, 16, 0.1, 1e-5, 1024)
    assert paper.effective_batch == 16 and paper.save_epochs == [0.5, 1, 1.5, 2, 4, 6, 8, 10]
    assert preset("small", epochs=1.0).epochs == 1.0
    with pytest.raises(ValueError, match="unknown SFT preset"):
        preset("huge")


def test_labels_cover_assistant_turns_only(chat_model):
    tok = chat_model.tokenizer
    conv = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello you."},
            {"role": "user", "content": "Again"}, {"role": "assistant", "content": "Bye now."}]
    ex = tokenize_conversation(tok, conv, 512)
    labelled = tok.decode([t for t, l in zip(ex["input_ids"], ex["labels"]) if l != -100])
    assert "Hello you." in labelled and "Bye now." in labelled
    assert "Hi there" not in labelled and "Again" not in labelled and "system" not in labelled
    examples, truncated = build_examples(tok, [conv], 20)
    assert truncated == 1 and all(len(e["input_ids"]) <= 20 for e in examples)


@pytest.mark.slow
def test_lora_run_lowers_loss_and_adapter_changes_output(chat_model, tmp_path):
    from detectors.generation import generate

    import torch

    cfg = SFTConfig(learning_rate=3e-3, max_length=64, per_device_batch_size=4, gradient_accumulation_steps=1,
                    epochs=3, save_epochs=[0.5, 1, 3], lora_dropout=0.0)
    base = chat_model.model
    weights = {k: v.clone() for k, v in base.state_dict().items()}
    flags, mode = {k: p.requires_grad for k, p in base.named_parameters()}, base.training
    result = train_lora(chat_model, conversations(), tmp_path / "run", cfg, measure_peak=False, show_progress=False)
    # trained in place (no second copy of the weights), then given back exactly as it was
    assert chat_model.model is base and base.training == mode
    assert not any("lora" in type(m).__name__.lower() for m in base.modules())
    assert base.state_dict().keys() == weights.keys()
    assert all(torch.equal(v, weights[k]) for k, v in base.state_dict().items())
    assert {k: p.requires_grad for k, p in base.named_parameters()} == flags
    assert result.steps == 6 and result.trained_tokens > 0 and result.tokens_per_s > 0
    assert result.loss_after < result.loss_before * 0.8, (result.loss_before, result.loss_after)
    assert [c.epoch for c in result.checkpoints] == [0.5, 1.0, 3.0]
    adapter = tmp_path / "run" / "adapter"
    cfg_json = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg_json["r"] == 8 and cfg_json["lora_alpha"] == 16 and (adapter / "adapter_model.safetensors").is_file()
    # cached: a second call returns the finished run without training
    assert train_lora(chat_model, conversations(), tmp_path / "run", cfg).train_seconds == result.train_seconds
    tuned = load_adapter_model(chat_model, adapter)
    prompt = ["What is the capital of Italy?"]
    before = generate(chat_model, prompt, max_new_tokens=12)[0]
    after = generate(chat_model, prompt, max_new_tokens=12, model=tuned)[0]
    assert after != before and "friend" in after.lower(), (before, after)
    # the cached base model was not modified by training or loading
    assert generate(chat_model, prompt, max_new_tokens=12)[0] == before


def test_step_sorted_order_keeps_each_step_random_and_pairs_similar_lengths():
    import random

    from training.sft import step_sorted_order

    rng = random.Random(7)
    lengths = [rng.randint(20, 250) for _ in range(48)]
    order = step_sorted_order(lengths, 8, seed=0)
    assert sorted(order) == list(range(48))  # every example once
    steps = [order[s : s + 8] for s in range(0, 48, 8)]
    assert all([lengths[i] for i in step] == sorted(lengths[i] for i in step) for step in steps)
    assert step_sorted_order(lengths, 8, seed=1) != order  # a new shuffle per epoch
    assert step_sorted_order(lengths, 8, seed=0) == order  # and the same one for the same seed

    def padded(o: list[int]) -> int:  # positions in micro-batches of 2, each padded to its longer example
        return sum(2 * max(lengths[i] for i in o[k : k + 2]) for k in range(0, len(o), 2))

    shuffled = [i for step in steps for i in random.Random(3).sample(step, len(step))]  # the same steps, unsorted
    assert padded(order) < padded(shuffled)
