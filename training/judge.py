"""Train the answer judge (``detectors.judge``): LoRA on the embedded MiniLM read as a cross-encoder.

Data: the answer and conversation examples in ``training/data/judge/`` (format and label rules in its
README). Conversations become judge items (incorrect = the false belief, correct = the truth; for a true
belief correct = the belief and incorrect is unknown). A DEV split is taken BY GROUP (the question of an
answer example, the belief of a conversation), so no question is in both; only dev chooses the epoch,
the temperature, the class offsets and the answer threshold. The held-out evaluation set
(``benchmarks/data/heldout``) is never read here.

Each epoch draws: every naturally written item, COMPOSED_SHARE of the script-composed files' items (their
style is easier to learn than the answers), each belief's true statement read as a reply to it
(``passage_item``), each message read as the user's side of its belief (``side_item``), NLI_SHARE of
the shared e-SNLI dev pairs, and one plain short answer per short-answer item (``SHORT_FORMS``). A share
of the items lose one side (correct or incorrect unknown), so the judge also works when the guard knows
only the user's claim. Long responses are cut into the same windows the judge
reads; the window holding the decisive sentence carries the item's label, the other windows 'neither';
inside a window the decisive sentence is also trained (same output layer) against the others
('neither'), which is how the judge learns to point at the sentence that decided it.

A hand loop (as ``training.emotion_encoder``), checkpoint every ``CHECKPOINT_EVERY`` steps, resumable,
a wall-clock budget per run; the adapter of each finished epoch is kept in ``OUT/step-N``.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from training.checkpoint import resume, save

from detectors.data import in_hash_share
from detectors.judge import (JUDGE_LABELS, SIDE_TOKENS, WINDOW_TOKENS, encode_item, window_feed)
from detectors.text import normalise, sentence_spans

DATA_DIR = Path(__file__).resolve().parent / "data" / "judge"
CHECKPOINT_EVERY = 100
DEV_SHARE = 12  # percent of groups
DROP_SIDE = 0.35  # share of two-sided items trained with one side unknown
COMPOSED = ("answers_a1", "answers_a2", "conversations_c1")  # files composed by a script from sentence banks
NLI_SHARE = 0.15  # share of the shared e-SNLI dev pairs drawn each epoch (premise read as a reply to the hypothesis)
NLI_LABEL = {"entailment": "incorrect", "contradiction": "correct", "neutral": "neither"}  # hypothesis in the claim slot
COMPOSED_SHARE = 0.3  # share of the composed files' items drawn each epoch (their style is easy to learn instead of the answers)
STANCE_TO_JUDGE = {False: {"endorses": "incorrect", "corrects": "correct", "hedges": "hedged", "ignores": "neither"},
                   True: {"endorses": "correct", "corrects": "incorrect", "hedges": "hedged", "ignores": "neither"}}


def read_items(folder: Path = DATA_DIR) -> list[dict[str, Any]]:
    """Every answer and conversation example as a judge item with a split group."""
    items = []
    passages: set[tuple[str, str]] = set()
    sides: set[tuple[str, str]] = set()
    for path in sorted(folder.glob("answers_*.jsonl")):
        for line in path.open():
            if not line.strip():
                continue
            r = json.loads(line)
            items.append({"id": r["id"], "group": "q:" + r["question"].strip().lower(), "task": r["task"],
                          "correct": r["correct_answer"], "incorrect": r["incorrect_answer"], "response": r["response"],
                          "label": r["label"], "decisive": r.get("decisive") or "", "composed": path.stem in COMPOSED})
    for path in sorted(folder.glob("conversations*.jsonl")):
        for line in path.open():
            if not line.strip():
                continue
            r = json.loads(line)
            if not r.get("belief") or r.get("label") not in STANCE_TO_JUDGE[False]:
                continue
            true = bool(r.get("belief_true"))
            items.append({"id": r["id"], "group": "b:" + r["belief"].strip().lower(), "task": "conversation",
                          "correct": r["belief"] if true else r.get("truth"), "incorrect": None if true else r["belief"],
                          "response": r["draft"], "label": STANCE_TO_JUDGE[true][r["label"]], "decisive": "",
                          "stance": r["label"], "composed": path.stem in COMPOSED})
            if not r.get("truth") or r.get("belief_true") is None:
                continue
            if (r["belief"], r["truth"]) not in passages:
                passages.add((r["belief"], r["truth"]))
                items.append(passage_item(r, path.stem in COMPOSED))
            if (r["user_message"], r["belief"]) not in sides:  # pairs share a message: read it once
                sides.add((r["user_message"], r["belief"]))
                items.append(side_item(r, path.stem in COMPOSED))
            message, passage = message_items(r, path.stem in COMPOSED)
            items.append(message)
            if (r["user_message"], r["truth"]) not in passages:  # pairs share a message: read it once
                passages.add((r["user_message"], r["truth"]))
                items.append(passage)
            read = sentence_items(r, path.stem in COMPOSED)
            if read:
                items.append(read[0])
                if (read[0]["incorrect"], r["truth"]) not in passages:
                    passages.add((read[0]["incorrect"], r["truth"]))
                    items.append(read[1])
    return items


def passage_item(row: dict[str, Any], composed: bool) -> dict[str, Any]:
    """The conversation's true statement read as a reply to the user's belief (claim slot only): it
    asserts the other side when the belief is false, the claim itself when it is true. This is how the
    guard reads a caller's reference passage against a claim."""
    return {"id": row["id"] + "-passage", "group": "b:" + row["belief"].strip().lower(), "task": "passage",
            "correct": None, "incorrect": row["belief"], "response": row["truth"],
            "label": "incorrect" if row["belief_true"] else "correct", "decisive": "", "composed": composed}


MESSAGE_LABEL = {False: STANCE_TO_JUDGE[False],  # a draft that agrees with a true message asserts the truth;
                 True: {"endorses": "correct", "corrects": "neither", "hedges": "hedged", "ignores": "neither"}}  # one that disputes it asserts neither side


def message_items(row: dict[str, Any], composed: bool) -> list[dict[str, Any]]:
    """The conversation read the way the guard reads it when its claim extraction may have missed or
    mangled the belief: the user's whole message in the claim slot and the truth as the other side, (1)
    against the draft, (2) with the truth read as a reply to the message (does it refute the belief in it?)."""
    group, true = "b:" + row["belief"].strip().lower(), bool(row["belief_true"])
    message = {"id": row["id"] + "-message", "group": group, "task": "message", "correct": row["truth"],
               "incorrect": row["user_message"], "response": row["draft"], "label": MESSAGE_LABEL[true][row["label"]],
               "decisive": "", "composed": composed}
    passage = {"id": row["id"] + "-message-passage", "group": group, "task": "message_passage", "correct": None,
               "incorrect": row["user_message"], "response": row["truth"], "label": "incorrect" if true else "correct",
               "decisive": "", "composed": composed}
    return [message, passage]


def sentence_at(message: str, at: int) -> Optional[str]:
    """The sentence of ``message`` that holds character ``at``."""
    return next((message[a:b].strip() for a, b in sentence_spans(message) if a <= at < b), None)


def belief_sentence(row: dict[str, Any]) -> Optional[str]:
    """The sentence of the user's message that holds the belief's span, where it is neither the whole
    message nor the belief itself."""
    message, span = row["user_message"], (row.get("belief_span") or "").strip()
    at = message.find(span) if span else -1
    found = sentence_at(message, at) if at >= 0 else None
    return found if found and found not in (message.strip(), row["belief"].strip()) else None


def sentence_items(row: dict[str, Any], composed: bool) -> list[dict[str, Any]]:
    """The conversation read the way the guard reads it with a reference passage: the message sentence
    nearest the passage (``guardrail.guard.nearest_sentence``) in the claim slot, small talk and all ("Sunny
    day, coffee in hand, life is good antibiotics don't have side effects."), labelled like the whole-message
    items: (1) against the draft, beside the truth, (2) the truth read as a reply to it. Run H2 read such
    sentences as corrected by drafts that repeat the belief word for word. Empty where the sentence is the
    whole message or the belief."""
    sentence = belief_sentence(row)
    if sentence is None:
        return []
    message, passage = message_items({**row, "user_message": sentence}, composed)
    return [{**message, "id": "sent-" + row["id"], "task": "sentence"},
            {**passage, "id": "sent-" + row["id"] + "-passage", "task": "sentence_passage"}]


def side_item(row: dict[str, Any], composed: bool) -> dict[str, Any]:
    """The user's own words read as an answer to the belief and its truth: which side does the user take?
    The guard asks this of a message sentence matched to a misconception-index entry
    (``guardrail.truth.IndexSource``); the judge, trained on assistants' replies only, read reported and
    plan-stated beliefs ("My mum always said wet hair gives you a cold.") as taking neither side. The user
    holds the belief, however stated (explicit, hedged, negated, reported, presupposed, plan). The response
    is, by a hash of the row's id, the sentence holding the belief's span, the span alone (as an extracted
    claim) or the whole message; half the items swap the two slots, so the slot does not give the side away;
    both sides are always kept (``drop_side``)."""
    h = int(hashlib.sha1(row["id"].encode()).hexdigest(), 16)
    message, span = row["user_message"], (row.get("belief_span") or "").strip()
    at = message.find(span) if span else -1
    response = message
    if at >= 0 and h % 3 == 1:
        response = span
    elif at >= 0 and h % 3 == 0:
        response = sentence_at(message, at) or message
    belief, truth = row["belief"], row["truth"]
    if row["belief_true"]:
        correct, incorrect, label = belief, None, "correct"
    elif (h >> 8) % 2:
        correct, incorrect, label = belief, truth, "correct"
    else:
        correct, incorrect, label = truth, belief, "incorrect"
    return {"id": "side-" + row["id"], "group": "b:" + belief.strip().lower(), "task": "user_side", "correct": correct,
            "incorrect": incorrect, "response": response.strip(), "label": label, "decisive": "", "composed": composed,
            "keep_sides": True}


SHORT_FORMS = (  # (response template, label): plain answers, the way small chat models answer
    ("It is {c}.", "correct"), ("{c}.", "correct"), ("The answer is {c}.", "correct"), ("I believe it's {c}.", "correct"),
    ("{c}, not {i}.", "correct"), ("It's {c}. Some people say {i}, but that's not right.", "correct"),
    ("Yes, you're right, it's {i}.", "incorrect"), ("It is {i}.", "incorrect"), ("{i}.", "incorrect"),
    ("The answer is {i}, not {c}.", "incorrect"), ("Not {c} — it's actually {i}.", "incorrect"),
    ("It could be {c} or {i}; I'm not sure.", "hedged"),
)
SHORT_SHARE = 1.0  # share of eligible answer examples that also give one short response each epoch


def short_answer_items(items: Sequence[dict[str, Any]], share: float, seed: int) -> list[dict[str, Any]]:
    """Plain short responses built from the answer examples' own short answers (at most five words each):
    without them the judge, trained on long warm replies where a myth is often quoted verbatim and the
    truth paraphrased, read "The capital of Scotland is Edinburgh." as asserting Glasgow."""
    rng = random.Random(seed)
    out = []
    for it in items:
        c, i = it.get("correct"), it.get("incorrect")
        if it["task"] not in ("trivia", "medqa") or not c or not i or len(c.split()) > 5 or len(i.split()) > 5:
            continue
        if rng.random() >= share:
            continue
        template, label = rng.choice(SHORT_FORMS)
        out.append({"id": it["id"] + "-short", "group": it["group"], "task": "short", "correct": c, "incorrect": i,
                    "response": template.format(c=c, i=i), "label": label, "decisive": ""})
    return out


def nli_items(limit_share: float, seed: int) -> list[dict[str, Any]]:
    """A random share of the shared e-SNLI dev pairs as claim-only items (none where the data is absent)."""
    from detectors.data import shared_data_dir

    root = shared_data_dir()
    path = root / "nli" / "esnli_dev.jsonl" if root else None
    if path is None or not path.is_file():
        return []
    rng = random.Random(seed)
    out = []
    for n, line in enumerate(path.open(encoding="utf-8")):
        r = json.loads(line)
        if r.get("label") in NLI_LABEL and rng.random() < limit_share:
            out.append({"id": f"esnli-{n}", "group": "nli", "task": "nli", "correct": None, "incorrect": r["hypothesis"],
                        "response": r["premise"], "label": NLI_LABEL[r["label"]], "decisive": ""})
    return out


def is_dev(group: str) -> bool:
    """A question's or a belief's group is in dev by its hash: stable as the corpus grows."""
    return in_hash_share(group, DEV_SHARE)


def split(items: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, dev) by a hash of the group: no group in both."""
    return [i for i in items if not is_dev(i["group"])], [i for i in items if is_dev(i["group"])]


def drop_side(item: dict[str, Any], rng: random.Random) -> tuple[Any, Any]:
    """The item's (correct, incorrect), with one side made unknown DROP_SIDE of the time, unless the item
    says ``keep_sides`` (``side_item``: the guard reads a user's side with both of an entry's sides in view,
    and the user's words read against a lone claim taught the judge that words shared with a claim agree
    with it: a run that dropped them read 29 of 61 dev debunks ("that figure is a myth") as agreeing, claim
    only)."""
    c, i = item["correct"], item["incorrect"]
    if c and i and not item.get("keep_sides"):
        r = rng.random()
        if r < DROP_SIDE / 2:
            return None, i
        if r < DROP_SIDE:
            return c, None
    return c, i


def window_rows(tokenizer: Any, item: dict[str, Any], correct: Any, incorrect: Any) -> list[tuple[Any, Any, int, list[int]]]:
    """(encoding, window, window label, sentence labels or -100) for the item's windows that carry a label."""
    response = normalise(item["response"])
    enc = encode_item(tokenizer, correct, incorrect, response)
    label, neither = JUDGE_LABELS.index(item["label"]), JUDGE_LABELS.index("neither")
    decisive = normalise(item["decisive"]).strip()
    d = response.find(decisive) if decisive else -1
    rows = []
    if d >= 0:
        e = d + len(decisive)
        for w in enc.windows:
            hit = [s[2] < e and s[3] > d for s in w.sentences]
            rows.append((enc, w, label if any(hit) else neither, [label if h else neither for h in hit]))
    elif item["label"] == "neither":
        rows = [(enc, w, neither, [neither] * len(w.sentences)) for w in enc.windows]
    else:
        w = enc.windows[0]
        rows = [(enc, w, label, [label if len(w.sentences) == 1 else -100] * len(w.sentences))]
    return rows


def bucketed(lengths: Sequence[int], batch_size: int, seed: int, pool: int = 50) -> list[np.ndarray]:
    from training.emotion_encoder import bucketed_batches

    return bucketed_batches(lengths, batch_size, seed, pool)


def epoch_rows(tokenizer: Any, items: Sequence[dict[str, Any]], seed: int) -> list[tuple[Any, Any, int, list[int]]]:
    rng = random.Random(seed)
    rows = []
    for item in [*items, *nli_items(NLI_SHARE, seed), *short_answer_items(items, SHORT_SHARE, seed)]:
        if item.get("composed") and rng.random() >= COMPOSED_SHARE:
            continue
        c, i = drop_side(item, rng)
        rows += window_rows(tokenizer, item, c, i)
    return rows


def dev_logits(net: Any, tokenizer: Any, items: Sequence[dict[str, Any]], *, sides: str = "given",
               batch_size: int = 64) -> list[np.ndarray]:
    """Window logits (w, 5) per dev item from the torch network (sides: 'given', 'claim' = incorrect only)."""
    import torch

    encs = []
    for it in items:
        c, i = it["correct"], it["incorrect"]
        if sides == "claim" and i:
            c = None
        encs.append(encode_item(tokenizer, c, i, normalise(it["response"])))
    rows = [(k, j) for k, e in enumerate(encs) for j in range(len(e.windows))]
    order = np.argsort([encs[k].length(encs[k].windows[j]) for k, j in rows])
    out: dict[tuple[int, int], np.ndarray] = {}
    net.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            batch = [rows[x] for x in order[s : s + batch_size]]
            feed, sentences = window_feed(tokenizer, [(encs[k], encs[k].windows[j]) for k, j in batch])
            wl, _, _ = net({k: torch.from_numpy(v) for k, v in feed.items()}, [[] for _ in sentences])
            for r, key in enumerate(batch):
                out[key] = wl[r].numpy()
    return [np.stack([out[(k, j)] for j in range(len(e.windows))]) for k, e in enumerate(encs)]


def with_natural(gold: Sequence[str], pred: Sequence[str], natural: Sequence[int]) -> dict[str, Any]:
    """Figures on all items, and on the naturally written ones (indices ``natural``) apart: the held-out
    set and real answers are natural prose; the composed files' style is easier than it."""
    figures = metrics(gold, pred)
    if natural:
        figures["natural"] = metrics([gold[k] for k in natural], [pred[k] for k in natural])
    return figures


def natural_rows(dev: Sequence[dict[str, Any]]) -> list[int]:
    return [k for k, d in enumerate(dev) if not d.get("composed")]


def dev_figures(dev: Sequence[dict[str, Any]], logits: Sequence[np.ndarray]) -> dict[str, Any]:
    """Dev figures at a checkpoint (all items, natural ones apart)."""
    return with_natural([d["label"] for d in dev], predict(logits)[0], natural_rows(dev))


def selection_score(figures: dict[str, Any]) -> float:
    """How finalize ranks checkpoints: the natural items count as much as all of them."""
    natural = figures.get("natural", figures)
    return (figures["kappa_bench"] + natural["kappa_bench"] + figures["accuracy5"] + natural["accuracy5"]) / 4


def bench_label(label: str) -> str:
    """The benchmark's three classes: hedged and neither count as incorrect."""
    return label if label in ("correct", "refusal") else "incorrect"


def metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import cohen_kappa_score

    g3, p3 = [bench_label(x) for x in gold], [bench_label(x) for x in pred]
    return {"n": len(gold), "accuracy5": round(float(np.mean([a == b for a, b in zip(gold, pred)])), 4),
            "kappa_bench": round(float(cohen_kappa_score(g3, p3)), 4),
            "kappa5": round(float(cohen_kappa_score(gold, pred)), 4)}


def predict(logits: Sequence[np.ndarray], threshold: float = 0.5, temperature: float = 1.0,
            offsets: Sequence[float] = (0.0,) * 5) -> tuple[list[str], np.ndarray]:
    from detectors.judge import calibrated, choose_window

    probs = np.stack([calibrated(w[choose_window(w, threshold)], temperature, offsets) for w in logits])
    return [JUDGE_LABELS[i] for i in probs.argmax(1)], probs


def train_judge(out: str | Path, *, rank: int = 16, lr: float = 4e-4, batch_size: int = 16, epochs: int = 3,
                budget_s: float | None = None, seed: int = 0, threads: int | None = 2, limit: int | None = None,
                keep: Sequence[str] = (),
                eval_every: int | None = None, init_from: str | Path | None = None, layers: Sequence[int] = (0, 1, 2, 3, 4, 5),
                data_dir: Path = DATA_DIR, progress: bool = True) -> dict[str, Any]:
    """Train into ``out`` (resuming from ``out/checkpoint.pt``); each finished epoch's (and every ``eval_every``
    steps') adapter and dev figures are kept in ``out/step-N``."""
    import torch

    from detectors.judge import new_net, save_adapter

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train, dev = split(read_items(data_dir))
    if limit:  # a short continuation run: a sample of the corpus, plus every item of the new files it is for
        kept = [i for i in train if i["id"].startswith(tuple(keep))]
        rest = [i for i in train if not i["id"].startswith(tuple(keep))]
        train = kept + random.Random(seed).sample(rest, min(limit, len(rest)))
    layers = list(layers)
    net = new_net(rank, layers=layers)
    if init_from is not None:  # continue from an earlier run's adapter with a fresh schedule
        from safetensors.torch import load_file

        missing, unexpected = net.load_state_dict(load_file(str(Path(init_from) / "adapter.safetensors")), strict=False)
        if unexpected or [k for k in missing if "lora_" in k or k.startswith("out.")]:
            raise ValueError(f"{init_from} does not fit the network")
    tok = net.tokenizer
    epoch_data = [epoch_rows(tok, train, seed + e) for e in range(epochs)]
    plan = []  # (epoch, row indices)
    for e, rows in enumerate(epoch_data):
        lengths = [r[0].length(r[1]) for r in rows]
        plan += [(e, b) for b in bucketed(lengths, batch_size, seed + e)]
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    total, warmup = len(plan), min(60, len(plan) // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.02, (total - s) / max(1, total - warmup))))
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    settings = {"rank": rank, "lr": lr, "batch_size": batch_size, "epochs": epochs, "seed": seed, "limit": limit,
                "keep": list(keep), "train_items": len(train), "dev_items": len(dev), "init_from": str(init_from) if init_from else None,
                "layers": layers, "composed_share": COMPOSED_SHARE, "nli_share": NLI_SHARE,
                "short_share": SHORT_SHARE}
    checkpoint = out / "checkpoint.pt"
    step, elapsed = resume(checkpoint, settings, net, optimizer, schedule)
    if step and progress:
        print(f"resuming at step {step}/{total}", flush=True)
    started = time.monotonic() - elapsed
    run_start = time.monotonic()
    net.train()
    while step < total:
        e, idx = plan[step]
        rows = [epoch_data[e][i] for i in idx]
        feed, sentences = window_feed(tok, [(r[0], r[1]) for r in rows])
        feed = {k: torch.from_numpy(v) for k, v in feed.items()}
        wl, sl, owner = net(feed, sentences)
        loss = loss_fn(wl, torch.tensor([r[2] for r in rows]))
        s_labels = [lab for r in rows for lab, (a, b) in zip(r[3], [(x[0], x[1]) for x in r[1].sentences]) if b > a]
        if len(s_labels) and any(x != -100 for x in s_labels):
            loss = loss + 0.5 * loss_fn(sl, torch.tensor(s_labels))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step(); schedule.step(); optimizer.zero_grad()
        step += 1
        if progress and step % 25 == 0:
            print(f"step {step}/{total} epoch {e} loss {loss.item():.4f} {time.monotonic() - started:.0f}s", flush=True)
        epoch_end = step == total or plan[step][0] != e or (eval_every and step % eval_every == 0)
        over = budget_s is not None and time.monotonic() - run_start > budget_s
        if step % CHECKPOINT_EVERY == 0 or epoch_end or over:
            save(checkpoint, settings, net, optimizer, schedule, step, time.monotonic() - started)
        if epoch_end or over:  # a run stopped by its budget also leaves a scored snapshot
            folder = out / f"step-{step}"
            save_adapter(net, folder, rank=rank, window_tokens=WINDOW_TOKENS, side_tokens=SIDE_TOKENS, layers=layers,
                         epoch=e + 1, step=step)
            logits = dev_logits(net, tok, dev)
            figures = dev_figures(dev, logits)
            (folder / "dev.json").write_text(json.dumps(figures, indent=2) + "\n")
            np.save(folder / "dev_logits.npy", np.array(logits, dtype=object), allow_pickle=True)
            if progress:
                print(f"step {step} (epoch {e + 1}) dev {figures}", flush=True)
            net.train()
        if over:
            break
    return {"steps": step, "planned_steps": total, "seconds": round(time.monotonic() - started, 1), **settings}


# ------------------------------------------------------------------ calibration on dev, export


OFFSET_TOLERANCE = 0.005  # a class offset must gain more than this on dev: run F's dev chose -0.75 for
# 'neither' for +0.006, and the embedded 135M model's rambling answers then read as correct (83 of 918 flipped)


def fit_calibration(logits: Sequence[np.ndarray], gold: Sequence[str],
                    natural: Sequence[int] = ()) -> dict[str, Any]:
    """On dev only: the answer threshold and class offsets that maximise the benchmark κ plus the 5-way
    accuracy, on all dev items and on the naturally written ones (indices ``natural``) alike (small grids, so a
    small dev set cannot be fitted too closely), then the temperature that minimises the negative
    log-likelihood."""
    def score(th: float, off: Sequence[float]) -> float:
        return selection_score(with_natural(gold, predict(logits, th, 1.0, off)[0], natural))

    offsets = [0.0] * len(JUDGE_LABELS)
    threshold = max((0.3, 0.4, 0.5, 0.6, 0.7), key=lambda t: score(t, offsets))
    for _ in range(2):
        for c in range(len(JUDGE_LABELS)):
            trials = {v: score(threshold, offsets[:c] + [v] + offsets[c + 1 :]) for v in np.arange(-1.0, 1.01, 0.25)}
            best = max(trials.values())
            offsets[c] = float(min((v for v, s in trials.items() if s >= best - OFFSET_TOLERANCE), key=abs))
    y = np.array([JUDGE_LABELS.index(g) for g in gold])
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.3), np.log(5.0), 60)):
        p = predict(logits, threshold, float(t), offsets)[1]
        nll = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return {"answer_threshold": threshold, "offsets": offsets, "temperature": round(best_t, 4),
            "dev_nll": round(float(best_nll), 4)}


def finalize(runs: Sequence[str | Path], target: str | Path, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """Pick the best saved step of ``runs`` on dev, fit the calibration on dev, copy adapter + config to ``target``, and
    record the dev figures (both sides given, and claim-only) in ``target/metrics.json``."""
    from detectors.judge import AnswerJudge, units

    target = Path(target)
    epochs = [p.resolve() for r in runs for p in sorted(Path(r).glob("step-*"), key=lambda p: int(p.name.split("-")[1]))]
    scores = {p: json.loads((p / "dev.json").read_text()) for p in epochs}
    best = max(epochs, key=lambda p: selection_score(scores[p]))
    _, dev = split(read_items(data_dir))
    gold = [d["label"] for d in dev]
    judge = AnswerJudge(best, backend="torch")
    logits = [units(w, sl)[0] for _, w, sl in judge.raw([_item(d) for d in dev])]
    cal = fit_calibration(logits, gold, natural_rows(dev))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(best / "adapter.safetensors", target / "adapter.safetensors")
    config = json.loads((best / "config.json").read_text())
    config.update(cal, dev_items=len(dev))
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    final = AnswerJudge(target)  # the shipped path: int8 ONNX
    figures = dev_report(final, dev)
    figures["checkpoints"] = {f"{p.parent.name}/{p.name}": scores[p] for p in epochs}
    figures["chosen"] = f"{best.parent.name}/{best.name}"
    (target / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _item(d: dict[str, Any], sides: str = "given") -> Any:
    from detectors.judge import JudgeItem

    c, i = d["correct"], d["incorrect"]
    if sides == "claim" and i:
        c = None
    return JudgeItem(correct=c, incorrect=i, response=d["response"])


def dev_report(judge: Any, dev: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Dev figures of a judge: overall and per task, both sides given and claim only."""
    out: dict[str, Any] = {}
    for sides in ("given", "claim"):
        pred = [j.label for j in judge.judge([_item(d, sides) for d in dev])]
        gold = [d["label"] for d in dev]
        both = with_natural(gold, pred, natural_rows(dev))
        block = {"all": {k: v for k, v in both.items() if k != "natural"}}
        if "natural" in both:
            block["natural"] = both["natural"]
        for task in sorted({d["task"] for d in dev}):
            idx = [k for k, d in enumerate(dev) if d["task"] == task]
            block[task] = metrics([gold[k] for k in idx], [pred[k] for k in idx])
        out[sides] = block
    return out


def main(argv: Sequence[str] | None = None) -> None:
    import argparse
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description="Train the answer judge into RUN (resumable), or finalize a run.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("run")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--budget-s", type=float, default=1700)
    t.add_argument("--limit", type=int, default=None, help="train on a random sample of this many items")
    t.add_argument("--keep", nargs="*", default=[], help="with --limit: id prefixes always kept (e.g. r1-, the new data)")
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init-from", default=None, help="start from this step-N folder of an earlier run")
    t.add_argument("--eval-every", type=int, default=None, help="also save and score on dev every N steps")
    t.add_argument("--data-dir", default=str(DATA_DIR), help="the corpus folder (answers_*.jsonl, conversations*.jsonl)")
    f = sub.add_parser("finalize")
    f.add_argument("runs", nargs="+")
    f.add_argument("--to", default=str(Path(__file__).resolve().parent.parent / "detectors" / "weights" / "judge"))
    args = parser.parse_args(argv)
    if args.cmd == "train":
        print(json.dumps(train_judge(args.run, epochs=args.epochs, budget_s=args.budget_s, limit=args.limit, keep=args.keep,
                                     lr=args.lr,
                                     eval_every=args.eval_every, seed=args.seed, init_from=args.init_from,
                                     data_dir=Path(args.data_dir)), indent=2))
    else:
        print(json.dumps(finalize(args.runs, args.to), indent=2))


if __name__ == "__main__":
    main()
