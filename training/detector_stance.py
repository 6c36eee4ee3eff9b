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


# ---------------------------------------------------------------- the default: a head over frozen features

def stance_features(examples: Sequence[StanceExample], *, label: str = "stance pairs", progress: bool = True,
                    chunk: int = 512) -> np.ndarray:
    """``detectors.stance.featurize`` for many examples, cached on disk in chunks (a crash resumes)."""
    import hashlib

    from detectors.encoder import default_backend
    from detectors.stance import FEATURE_VERSION, featurize, first_segment
    from training.detector_features import features_dir

    pairs = [(first_segment(e.claim, e.question), e.draft) for e in examples]
    digest = hashlib.sha1(f"stance{FEATURE_VERSION}{default_backend()}".encode())
    for claim, draft in pairs:
        digest.update(claim.encode("utf-8", "replace") + b"\x00" + draft.encode("utf-8", "replace") + b"\x01")
    folder = features_dir() / f"stance-{digest.hexdigest()[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, len(pairs), chunk):
        path = folder / f"{start:08d}.npy"
        if path.is_file():
            parts.append(np.load(path))
            continue
        x, _ = featurize(pairs[start : start + chunk], use_cache=False)
        np.save(path.with_suffix(".tmp.npy"), x)
        path.with_suffix(".tmp.npy").replace(path)
        parts.append(x)
        if progress:
            print(f"  {label}: {min(start + chunk, len(pairs))}/{len(pairs)} pairs encoded", flush=True)
    return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)


def train_stance_head(train: Sequence[StanceExample], dev: Sequence[StanceExample], out: str | Path, *,
                      init_from: str | Path | None = None, hidden: int = 256, epochs: int = 40, lr: float = 1e-3,
                      seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Train the 4-way MLP head over frozen features (optionally starting from ``init_from``'s head),
    keep the best dev epoch, fit a temperature on dev, and save a StanceDetector folder at ``out``."""
    import torch

    started = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x = stance_features(train, label="train", progress=progress)
    y = np.array([STANCE_LABELS.index(e.label) for e in train])
    x_dev = stance_features(dev, label="dev", progress=progress) if len(dev) else x
    y_dev = np.array([STANCE_LABELS.index(e.label) for e in dev]) if len(dev) else y
    torch.manual_seed(seed)
    start_arrays = dict(np.load(Path(init_from) / "head.npz")) if init_from else None
    if start_arrays is not None:
        mu, sd = start_arrays["mu"], start_arrays["sd"]
        hidden = start_arrays["w1"].shape[1]
    else:
        mu, sd = x.mean(0), x.std(0) + 1e-4
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                              torch.nn.Linear(hidden, len(STANCE_LABELS)))
    if start_arrays is not None:
        with torch.no_grad():
            net[0].weight.copy_(torch.from_numpy(start_arrays["w1"].T.astype(np.float32)))
            net[0].bias.copy_(torch.from_numpy(start_arrays["b1"].astype(np.float32)))
            net[3].weight.copy_(torch.from_numpy(start_arrays["w2"].T.astype(np.float32)))
            net[3].bias.copy_(torch.from_numpy(start_arrays["b2"].astype(np.float32)))
    xt = torch.from_numpy(((x - mu) / sd).astype(np.float32))
    yt = torch.from_numpy(y)
    xd = torch.from_numpy(((x_dev - mu) / sd).astype(np.float32))
    yd = torch.from_numpy(y_dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    best, best_state = float("inf"), {k: v.clone() for k, v in net.state_dict().items()}
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for s in range(0, len(xt), 128):
            idx = perm[s : s + 128]
            opt.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            dev_loss = float(loss_fn(net(xd), yd))
        if dev_loss < best:
            best, best_state = dev_loss, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    with torch.no_grad():
        dev_logits = net(xd).numpy()
    temperature = fit_temperature(dev_logits, y_dev)
    arrays = {"w1": net[0].weight.detach().numpy().T, "b1": net[0].bias.detach().numpy(),
              "w2": net[3].weight.detach().numpy().T, "b2": net[3].bias.detach().numpy(), "mu": mu, "sd": sd}
    np.savez_compressed(out / "head.npz", **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})
    from detectors.stance import FEATURE_VERSION

    config = {"kind": "stance-head", "labels": list(STANCE_LABELS), "temperature": temperature,
              "feature_version": FEATURE_VERSION, "encoder": models.DEFAULT_ENCODER, "hidden": hidden,
              "train_examples": len(train), "dev_examples": len(dev), "dev_loss": round(best, 4),
              "train_seconds": round(time.monotonic() - started, 1)}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return config


def stance_probabilities(detector: Any, examples: Sequence[StanceExample]) -> np.ndarray:
    """``detector.predict`` probabilities for many examples; for the head kind from disk-cached pair
    features (the same numbers, without re-encoding on every evaluation)."""
    from detectors.encoder import default_backend

    if detector.kind == "stance-head" and detector.backend == default_backend():
        logits = detector._head.logits(stance_features(examples, progress=False)) / detector.temperature
        probs = np.exp(logits - logits.max(1, keepdims=True))
        return probs / probs.sum(1, keepdims=True)
    scores = detector.predict([(e.claim, e.draft, e.question) for e in examples])
    return np.array([[getattr(s, label) for label in STANCE_LABELS] for s in scores])
