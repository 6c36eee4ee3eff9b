"""Training the stance cross-encoder: a LoRA adapter plus classification head on the embedded MiniLM.

Uses the transformers ``Trainer`` with peft (so ``accelerate launch`` scales it unchanged), a wall-clock
cap (``time_limit_s``) for CPU machines, checkpoints for resuming, and a temperature fitted on dev
logits for calibrated probabilities. The saved folder is what ``detectors.stance.StanceDetector`` loads.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors import models
from detectors.stance import MAX_CLAIM_TOKENS, MAX_TOKENS, first_segment
from detectors.types import STANCE_LABELS
from training.stance_data import StanceExample

LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]


def _features(tokenizer: Any, examples: Sequence[StanceExample], max_tokens: int = MAX_TOKENS) -> list[dict[str, Any]]:
    firsts = [first_segment(e.claim, e.question) for e in examples]
    a_ids = tokenizer(firsts, add_special_tokens=False)["input_ids"]
    b_ids = tokenizer([e.draft for e in examples], add_special_tokens=False)["input_ids"]
    rows = []
    for a, b, e in zip(a_ids, b_ids, examples):
        a = a[:MAX_CLAIM_TOKENS]
        b = b[: max_tokens - len(a) - 3]
        ids = [tokenizer.cls_token_id] + a + [tokenizer.sep_token_id] + b + [tokenizer.sep_token_id]
        rows.append({"input_ids": ids, "token_type_ids": [0] * (len(a) + 2) + [1] * (len(b) + 1),
                     "attention_mask": [1] * len(ids), "labels": STANCE_LABELS.index(e.label)})
    return rows


class _TimeLimit:
    """Trainer callback: stop cleanly once the wall-clock budget is spent (the model is still saved)."""

    def __new__(cls, seconds: float) -> Any:
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def __init__(self) -> None:
                self.start = time.monotonic()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
                if time.monotonic() - self.start > seconds:
                    control.should_training_stop = True
                return control

        return Callback()


def new_model(rank: int = 16, seed: int = 0) -> tuple[Any, Any]:
    """The embedded encoder as a 4-way sequence classifier with a fresh LoRA adapter (head + pooler trainable)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch.manual_seed(seed)
    base_path = models.encoder_path(None)
    hf_logging.set_verbosity_error()
    base = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=len(STANCE_LABELS))
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=LORA_TARGETS,
                        modules_to_save=["classifier", "pooler"], task_type="SEQ_CLS")
    return get_peft_model(base, config), AutoTokenizer.from_pretrained(base_path)


def logits_for(model: Any, tokenizer: Any, examples: Sequence[StanceExample], batch_size: int = 64) -> np.ndarray:
    import torch
    from transformers import DataCollatorWithPadding

    collate = DataCollatorWithPadding(tokenizer)
    feats = _features(tokenizer, examples)
    order = np.argsort([len(f["input_ids"]) for f in feats])
    out = np.zeros((len(feats), len(STANCE_LABELS)), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = collate([{k: v for k, v in feats[i].items() if k != "labels"} for i in idx])
            out[idx] = model(**batch).logits.float().numpy()
    return out


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature that minimises dev negative log-likelihood (grid search)."""
    best, best_t = math.inf, 1.0
    for t in np.exp(np.linspace(np.log(0.3), np.log(5.0), 60)):
        z = logits / t
        z = z - z.max(1, keepdims=True)
        nll = -(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(1))).mean()
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def train_stance(train: Sequence[StanceExample], dev: Sequence[StanceExample], out: str | Path, *,
                 init_from: str | Path | None = None, epochs: float = 1.0, max_steps: int = -1,
                 time_limit_s: float | None = None, batch_size: int = 32, lr: float = 5e-4, rank: int = 16,
                 seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Train (or continue training ``init_from``) and save a StanceDetector folder at ``out``."""
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if init_from is not None:
        model, tokenizer = models.load_cross_encoder(init_from, num_labels=len(STANCE_LABELS), trainable=True)
    else:
        model, tokenizer = new_model(rank, seed)
    feats = _features(tokenizer, train)
    checkpoints = out / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=batch_size, learning_rate=lr,
        num_train_epochs=epochs, max_steps=max_steps, warmup_steps=20, weight_decay=0.01,
        lr_scheduler_type="linear", logging_steps=20, save_strategy="steps", save_steps=100, save_total_limit=1,
        report_to=[], seed=seed, dataloader_num_workers=0, disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(), remove_unused_columns=False,
    )
    callbacks = [_TimeLimit(time_limit_s)] if time_limit_s else []
    trainer = Trainer(model=model, args=args, train_dataset=feats, data_collator=DataCollatorWithPadding(tokenizer),
                      callbacks=callbacks)
    resume = any(checkpoints.glob("checkpoint-*")) if checkpoints.is_dir() else False
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.monotonic() - started
    model.save_pretrained(str(out))
    labels = np.array([STANCE_LABELS.index(e.label) for e in dev])
    temperature = fit_temperature(logits_for(model, tokenizer, dev), labels) if len(dev) else 1.0
    config = {"kind": "stance-cross-encoder", "labels": list(STANCE_LABELS), "temperature": temperature,
              "max_tokens": MAX_TOKENS, "encoder": models.DEFAULT_ENCODER, "lora_rank": rank,
              "train_examples": len(train), "steps": int(result.global_step), "train_seconds": round(seconds, 1)}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    import shutil

    shutil.rmtree(checkpoints, ignore_errors=True)
    return config
