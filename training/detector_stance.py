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
from training.head_fit import fit_best_on_dev
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

def _pair_key(segment: str, draft: str) -> str:
    import hashlib

    return hashlib.sha1(segment.encode("utf-8", "replace") + b"\x00" + draft.encode("utf-8", "replace")).hexdigest()


class PairFeatureStore:
    """The encoder part of the stance features, cached on disk per (claim-with-question, draft) pair, so
    a new training mix only encodes the pairs it has not seen; parts are written as they are computed
    (a crash resumes). The lexical part is cheap and always recomputed."""

    def __init__(self, backend: str | None = None) -> None:
        from detectors.encoder import default_backend
        from detectors.stance import ENCODER_FEATURE_VERSION
        from training.detector_features import features_dir

        self.folder = features_dir() / f"stance-pairs-v{ENCODER_FEATURE_VERSION}-{backend or default_backend()}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, np.ndarray] = {}
        for part in sorted(self.folder.glob("part-*.npz")):
            with np.load(part) as arrays:
                for key, row in zip(arrays["keys"], arrays["x"]):
                    self.rows[str(key)] = row

    def add(self, keys: Sequence[str], x: np.ndarray) -> None:
        import uuid

        tmp = self.folder / f"tmp-{uuid.uuid4().hex}.npz"
        np.savez(tmp, keys=np.array(list(keys)), x=x.astype(np.float32))
        tmp.replace(self.folder / f"part-{time.time_ns()}.npz")
        self.rows.update(zip(keys, x))


def stance_features(examples: Sequence[StanceExample], *, label: str = "stance pairs", progress: bool = True,
                    chunk: int = 256) -> np.ndarray:
    """``detectors.stance.featurize`` for many examples, the encoder part cached per pair on disk."""
    from detectors.stance import encode_pairs, featurize, first_segment

    store = PairFeatureStore()
    segments = [(first_segment(e.claim, e.question), e.draft) for e in examples]
    keys = [_pair_key(*pair) for pair in segments]
    todo = sorted({k: pair for k, pair in zip(keys, segments) if k not in store.rows}.items())
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        x, _ = encode_pairs([pair for _, pair in part], use_cache=False)
        store.add([k for k, _ in part], x)
        if progress:
            print(f"  {label}: {min(start + chunk, len(todo))}/{len(todo)} new pairs encoded", flush=True)
    if not examples:
        return np.zeros((0, 1), np.float32)
    encoded = np.stack([store.rows[k] for k in keys])
    x, _ = featurize([(e.claim, e.draft, e.question) for e in examples], encoded=encoded)
    return x


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
    best = fit_best_on_dev(net, loss_fn, opt, (xt, yt), (xd, yd), epochs=epochs, batch_size=128)
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


# ---------------------------------------------------------------- the default head: data, training, card

DEFAULT_COMMAND = ".venv/bin/python -m training.detector_stance --default"


def default_data(seed: int = 0, nli_limit: int = 3200, anli_limit: int = 300, task_limit: int = 2000,
                 short_limit: int = 1600, dev_limit: int = 200, chat_weight: int = 2) -> dict[str, list[StanceExample]]:
    """Training and dev examples for the default head (subsampled for a CPU budget): e-SNLI dev and ANLI dev,
    the general task templates, the short-answer templates (reordered restatements, 'not X, it's Y',
    'X or Y'), and every chat-model draft of a training question (repeated ``chat_weight`` times: they are
    few, and they are the drafts the guard really sees)."""
    import random

    from training.stance_data import build_task_data, load_nli

    rng = random.Random(seed)
    esnli = load_nli("esnli_dev")
    rng.shuffle(esnli)
    anli = load_nli("anli_r1_dev") + load_nli("anli_r2_dev") + load_nli("anli_r3_dev")
    rng.shuffle(anli)
    base = build_task_data(seed, include_chat=False, short_templates=False)["train"]
    rng.shuffle(base)
    full = build_task_data(seed)["train"]
    short_names = {name for group in _short_templates() for name, _ in group}
    short = [e for e in full if e.template in short_names and not e.source.startswith("chat/")]
    random.Random(seed + 2).shuffle(short)
    chat = [e for e in full if e.source.startswith("chat/")]
    dev = esnli[:dev_limit] + base[:dev_limit] + short[: dev_limit // 2]
    train = (esnli[dev_limit : dev_limit + nli_limit] + anli[:anli_limit] + base[dev_limit : dev_limit + task_limit]
             + short[dev_limit // 2 : dev_limit // 2 + short_limit] + chat * chat_weight)
    rng.shuffle(train)
    return {"train": train, "dev": dev, "chat": chat}


def _short_templates() -> tuple:
    from training.stance_data import CORRECT_SHORT, ENDORSE_SHORT, HEDGE_SHORT

    return ENDORSE_SHORT, CORRECT_SHORT, HEDGE_SHORT


def evaluate_default(folder: Path, limit: int | None = 400, seed: int = 0) -> dict[str, Any]:
    """Held-out figures: e-SNLI test and the held-out task data (fixed samples, as the benchmark draws
    them), and every held-out chat-model draft."""
    import random

    from detectors.stance import StanceDetector
    from training.detector_training import stance_metrics
    from training.stance_data import build_task_data, load_nli

    detector = StanceDetector(path=folder)
    test = build_task_data()["test"]
    out: dict[str, Any] = {"sample_limit": limit}
    sets = {"esnli_test": load_nli("esnli_test"), "task_heldout": test,
            "chat_heldout": [e for e in test if e.source.startswith("chat/")]}
    for name, examples in sets.items():
        if limit and limit < len(examples) and name != "chat_heldout":
            examples = random.Random(seed).sample(examples, limit)
        if not examples:
            continue
        out[name] = stance_metrics([e.label for e in examples], stance_probabilities(detector, examples))
    return out


CARD = """# Default stance head

A small MLP (features -> 256 -> 4) over frozen features of the shared all-MiniLM-L6-v2 encoder, softmax
temperature fitted on dev, stored in `head.npz` (float32). Features (`detectors/stance.py`, version {fv}):
- encoder part: claim (with its question) and draft sentence vectors [u, v, |u-v|, u*v], a soft token
  alignment of the claim onto the draft (mean of c - a and c * a over claim tokens) and alignment statistics;
- lexical cues: agreement, negation, correction, hedging, premise, comfort words, word overlap;
- answer words (`answer_features`, new in version 2): the claim's own answer words (its content words that
  the question does not contain) -- named plainly, named only under a negation ("not Sydney", "Sydney
  isn't"), or replaced by a new name or number ("Canberra"), and which comes last. Sentence vectors barely
  separate "the capital is Sydney" from "the capital is Canberra"; these words do.

Why not a LoRA cross-encoder: fine-tuning MiniLM on the shared 2-core CPU ran at about 36 s per 16-pair step
(measured 2026-11-27 under load), far beyond the training budget. `training.detector_stance.train_stance`
trains that kind (`--method lora`) where a GPU is available; `StanceDetector(path=...)` loads it.

## Datasets (from `../shared/data`, not copied here)
- NLI: `nli/esnli_dev.jsonl` (e-SNLI dev, CC BY-SA 4.0) and `nli/anli_r{{1,2,3}}_dev.jsonl` (ANLI dev,
  CC BY-NC 4.0): premise = draft, hypothesis = claim; entailment -> endorses, contradiction -> corrects,
  neutral -> ignores. e-SNLI test is held out for the benchmark.
- Task templates (`training/stance_data.py`) on TruthfulQA (best vs first incorrect answer) and TriviaQA dev
  (answer vs another question's answer, as a sentence with the question's subject); for each claim (true
  or false) drafts whose label follows from what they assert about it: agreement, warm validation, advice
  inside the claim as a premise, and (short answers) a reordered restatement ("Sydney is the capital of
  Australia", "That's right: Sydney") -> endorses; the claim repeated to refute it, the other answer
  asserted, "not X, it's Y" -> corrects; doubt, "X or maybe Y" -> hedges; comfort with no content or an
  unrelated fact -> ignores.
- Chat drafts: the embedded SmolLM2-135M-Instruct (greedy, 48 new tokens, batches of 16) answering TriviaQA
  questions, once from a sad user who states a wrong answer and once asked plainly; cached in
  `$GUARDRAIL_HOME/data/stance_chat_drafts.jsonl`. Each draft is labelled against both claims by which answer
  it names plainly (any TriviaQA alias; "not X" and "rather than X" do not count as naming X): only the
  claim's answer -> endorses, only the other answer (or the claim's answer only under a negation) ->
  corrects; drafts naming both or neither are left out. {chat_note}
- Split by question: 20% of the questions, and all MASK items (MASK carries a do-not-train canary, so it
  is never trained on), are held out; the chat drafts follow their question's split.

Sizes used: {sizes}

## Retrain

    {command}

## Held-out metrics (`metrics.json`)

```json
{metrics}
```
"""


def train_default(out: Path | None = None, *, chat: bool = True, chat_items: int = 96, progress: bool = True,
                  eval_limit: int | None = 400) -> dict[str, Any]:
    """Generate (or reuse) the chat drafts, train the default head, evaluate it, write metrics and card."""
    from detectors.stance import DEFAULT_PATH, FEATURE_VERSION
    from training.stance_data import chat_drafts, read_chat_drafts

    out = Path(out) if out is not None else DEFAULT_PATH
    if chat:
        chat_drafts(n_items=chat_items, progress=progress)
    data = default_data()
    config = train_stance_head(data["train"], data["dev"], out, progress=progress)
    metrics = {"config": config, **evaluate_default(out, limit=eval_limit)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    sources: dict[str, int] = {}
    for e in data["train"]:
        key = e.source.split("/")[0].replace("_dev", "").split("_r")[0] if not e.source.startswith("chat/") else e.source
        sources[key] = sources.get(key, 0) + 1
    rows = read_chat_drafts()
    n_chat = len({(r["question"], r.get("kind", "sad")) for r in rows})
    chat_note = (f"{n_chat} drafts were generated; {len(data['chat'])} labelled (draft, claim) pairs fall in the "
                 f"training split (counted twice in training), the rest are held out.")
    (out / "README.md").write_text(CARD.format(fv=FEATURE_VERSION, chat_note=chat_note, command=DEFAULT_COMMAND,
                                               sizes=json.dumps({"train": sources, "dev": len(data["dev"])}),
                                               metrics=json.dumps(metrics, indent=2)))
    return metrics


def main(argv: list[str] | None = None) -> None:
    import argparse
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description="Train the default stance head from ../shared/data "
                                                 "(generating the chat-model drafts first, cached).")
    parser.add_argument("--default", action="store_true", required=True, help="train detectors/weights/stance/")
    parser.add_argument("--out", type=Path, default=None, help="write somewhere else than the shipped weights")
    parser.add_argument("--no-chat", action="store_true", help="do not generate chat drafts (use those cached)")
    parser.add_argument("--chat-items", type=int, default=96, help="TriviaQA questions to generate drafts for")
    args = parser.parse_args(argv)
    print(json.dumps(train_default(args.out, chat=not args.no_chat, chat_items=args.chat_items), indent=2))


if __name__ == "__main__":
    main()
