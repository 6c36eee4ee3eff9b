"""Fine-tune the embedded MiniLM for emotion with LoRA: the tuned-encoder scorer of the emotion detector.

The frozen-vector head reaches its ceiling below the sadness targets (docs/detectors.md), so this
trains LoRA adapters on every linear layer of the top two layers of all-MiniLM-L6-v2 (``TOP_LAYERS``)
plus a linear layer over the mean-pooled tokens. Outputs: the five targets (sadness, anger, joy, fear, distress) and, as auxiliary tasks that
only shape the encoder, the 28 GoEmotions labels (masked on CARER rows) and the 6 CARER labels (masked
on GoEmotions rows). Two passes over all of GoEmotions train and CARER train (less 1,200 dev rows),
length-bucketed batches, linear decay. A checkpoint every ``CHECKPOINT_EVERY`` steps lets a stopped
run resume where it stopped.

Output folder: ``adapter.safetensors`` (LoRA weights and the output layer, ~3 MB) and
``adapter.json`` (rank, targets, outputs); ``detectors.emotion_encoder`` merges them into the base
encoder and runs it in int8 ONNX Runtime.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from training.checkpoint import resume, save
from training.detector_emotion import (TARGETS, default_emotion_corpus, goemotions_labels, load_carer, load_goemotions,
                                      read_carer, read_goemotions)

CHECKPOINT_EVERY = 200
N_LAYERS = 6  # all-MiniLM-L6-v2
# Adapters on the top two layers only: the guard then runs the four frozen layers below them once for the
# shared vector and this encoder (``detectors.emotion_encoder.split_net``), 8 layers per message, not 12.
TOP_LAYERS = 2
MAX_TOKENS = 64
CARER_NAMES = ("sadness", "joy", "love", "anger", "fear", "surprise")


def multitask_corpus(seed: int = 0) -> dict[str, Any]:
    """Training texts, labels (n, 5 + 28 + 6), a loss mask (which labels each row's source has), and the
    output names. Rows: all GoEmotions train rows and the CARER train rows outside the emotion head's dev
    set, so all three scorers can be stacked on that dev set. GoEmotions test and CARER validation are
    never read here."""
    names = goemotions_labels()
    n_go, n_ca = len(names), len(CARER_NAMES)
    g_texts, g_ids = read_goemotions("train")
    _, g_y, _ = load_goemotions("train")
    c_texts, c_labels = read_carer("train")
    _, c_y = load_carer("train")
    held_out = set(default_emotion_corpus(seed)["dev"][0])
    c_train = np.array([i for i, t in enumerate(c_texts) if t not in held_out])

    first_go, first_ca = len(TARGETS), len(TARGETS) + n_go
    y = np.zeros((len(g_texts) + len(c_train), first_ca + n_ca), np.float32)
    mask = np.zeros_like(y)
    y[: len(g_texts), : len(TARGETS)] = g_y
    for row, ids in enumerate(g_ids):
        y[row, [first_go + i for i in ids]] = 1.0
    mask[: len(g_texts), :first_ca] = 1.0
    carer = slice(len(g_texts), None)
    y[carer, : len(TARGETS)] = c_y[c_train]
    y[np.arange(len(g_texts), len(y)), [first_ca + c_labels[i] for i in c_train]] = 1.0
    mask[carer, : len(TARGETS)] = 1.0
    mask[carer, first_ca:] = 1.0
    return {
        "train": (g_texts + [c_texts[i] for i in c_train], y, mask),
        "outputs": list(TARGETS) + [f"goemotions:{n}" for n in names] + [f"carer:{n}" for n in CARER_NAMES],
    }


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int, pool: int = 50) -> list[np.ndarray]:
    """Random batches of similar-length texts (less padding): shuffle, sort within pools, shuffle batches."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = order[start : start + batch_size * pool]
        chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def train_emotion_encoder(out: str | Path, *, rank: int = 16, lr: float = 5e-4, batch_size: int = 32,
                          budget_s: float | None = None, epochs: int = 2, seed: int = 0, threads: int | None = None,
                          limit: int | None = None, progress: bool = True, top_layers: int = TOP_LAYERS) -> dict[str, Any]:
    """Train the LoRA emotion encoder into ``out`` (resuming from ``out/checkpoint.pt`` if present), with
    adapters on its ``top_layers`` top layers (every layer when ``top_layers`` >= ``N_LAYERS``)."""
    import torch

    from detectors.emotion_encoder import new_net, save_adapter

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    corpus = multitask_corpus(seed)
    texts, y, mask = corpus["train"]
    if limit:
        keep = np.random.default_rng(seed).permutation(len(texts))[:limit]
        texts, y, mask = [texts[i] for i in keep], y[keep], mask[keep]
    if top_layers < 1:
        raise ValueError(f"top_layers must be at least 1, got {top_layers}.")
    layers = None if top_layers >= N_LAYERS else list(range(N_LAYERS - top_layers, N_LAYERS))
    net = new_net(len(corpus["outputs"]), rank=rank, layers=layers)
    tokenizer = net.tokenizer
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]]
    batches = [b for e in range(epochs) for b in bucketed_batches(lengths, batch_size, seed + e)]
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    total, warmup = len(batches), min(100, len(batches) // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    pos = (y * mask).sum(0) / np.clip(mask.sum(0), 1, None)
    pos_weight = np.ones(y.shape[1], np.float32)
    pos_weight[: len(TARGETS)] = np.sqrt((1 - pos[: len(TARGETS)]) / np.clip(pos[: len(TARGETS)], 1e-3, None))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(pos_weight), reduction="none")

    checkpoint = out / "checkpoint.pt"
    settings = {"rank": rank, "lr": lr, "batch_size": batch_size, "epochs": epochs, "seed": seed, "limit": limit,
                "rows": len(texts), "layers": layers}
    step, elapsed = resume(checkpoint, settings, net, optimizer, schedule)
    if step and progress:
        print(f"resuming at step {step}/{total}", flush=True)
    net.train()
    started = time.monotonic() - elapsed
    while step < total:
        idx = batches[step]
        feed = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        logits = net(feed["input_ids"], feed["attention_mask"])
        m = torch.from_numpy(mask[idx])
        loss = (loss_fn(logits, torch.from_numpy(y[idx])) * m).sum() / m.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step(); schedule.step(); optimizer.zero_grad()
        step += 1
        if progress and step % 50 == 0:
            print(f"step {step}/{total} loss {loss.item():.4f} {time.monotonic() - started:.0f}s", flush=True)
        over_budget = budget_s is not None and time.monotonic() - started > budget_s
        if step % CHECKPOINT_EVERY == 0 or step == total or over_budget:
            save(checkpoint, settings, net, optimizer, schedule, step, time.monotonic() - started)
        if over_budget:
            break
    net.eval()
    save_adapter(net, out, outputs=corpus["outputs"], targets=list(TARGETS), rank=rank, max_tokens=MAX_TOKENS,
                 **({"layers": layers} if layers is not None else {}))
    info = {"steps": step, "planned_steps": total, "examples_seen": min(step * batch_size, len(texts)),
            "train_rows": len(texts), "seconds": round(time.monotonic() - started, 1), "rank": rank, "lr": lr,
            "batch_size": batch_size, "epochs": epochs, "layers": layers}
    (out / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Train the LoRA emotion encoder (GoEmotions + CARER) into OUT.")
    parser.add_argument("out")
    parser.add_argument("--budget-s", type=float, default=None, help="stop (and save) after this many seconds")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="train on a random subset of this many rows")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--top-layers", type=int, default=TOP_LAYERS,
                        help=f"adapters on the top N layers (default {TOP_LAYERS}: the guard shares the frozen ones below "
                             f"with the shared encoder; {N_LAYERS} tunes every layer, one more encoder pass per message)")
    args = parser.parse_args(argv)
    print(json.dumps(train_emotion_encoder(args.out, budget_s=args.budget_s, threads=args.threads, limit=args.limit,
                                           epochs=args.epochs, top_layers=args.top_layers, rank=args.rank, lr=args.lr), indent=2))


if __name__ == "__main__":
    main()
