"""The answer judge: which answer does a response assert, and which sentence decided it.

One model serves the benchmark's scorer and the guard's stance stage. It is the embedded
all-MiniLM-L6-v2 read as a cross-encoder with a LoRA adapter, scored like a multiple-choice model: each
window of the response is read twice, once with each answer in focus ("claim: X | other: Y", then
"claim: Y | other: X"; a side the caller does not know is "?"), and one shared output scores how firmly
the window asserts the answer in focus. Both answers are in view in every pass (contrastive), and the two
sides are scored by the same function, so exchanging the answers exchanges the scores exactly: the judge
cannot favour a side for the way a response is written, only for what it says about each answer.
Hedged / neither / refusal are scored from the mean of the two passes. Negation inside the text is seen by
attention; no alias lists or word rules.

Long responses are read as windows of whole sentences (at most ``WINDOW_TOKENS`` tokens, consecutive
windows sharing one sentence, at most ``MAX_WINDOWS`` windows: past that ``truncated`` is set). Each
window is scored as a whole and each of its sentences is scored from the same pass (mean of its token
states and [CLS] through the same output layer). A long response is decided by the window or sentence
most sure it asserts something about the answers, so an answer wins over consoling filler around it
(a refusal counts only where nothing asserts an answer), and the sentence that decided it is reported.

Only the adapter ships (``detectors/weights/judge/``: LoRA weights + output layer, ``config.json`` with
the temperature and class offsets fitted on the training corpus's dev split). At first use it is merged
into the embedded encoder and exported to int8 ONNX under ``$GUARDRAIL_HOME/onnx/``.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from pydantic import BaseModel, Field, model_validator

from detectors import models
from detectors.text import normalise, sentence_spans, strip_span
from detectors.types import StanceScores

JUDGE_LABELS = ("correct", "incorrect", "hedged", "neither", "refusal")
DEFAULT_PATH = Path(__file__).resolve().parent / "weights" / "judge"
ADAPTER_FILE, CONFIG_FILE = "adapter.safetensors", "config.json"
KIND = "answer-judge"
GUARD_KEY = "guard"  # config.json: the guard thresholds calibrated with these weights, and how
LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
MAX_ANSWER_TOKENS = 32  # each side, for weights that do not say (``side_tokens`` in config.json); a longer one is cut
SIDE_TOKENS = 128  # each side for weights trained with a user's whole message as the claim (training/judge.py:message_items)
WINDOW_TOKENS = 128  # response tokens per window
MAX_WINDOWS = 8  # windows read per response (about 700 words); the rest is not read and truncated is set
UNKNOWN = "?"
ANSWERING = (0, 1, 2)  # correct, incorrect, hedged: a window that asserts something about the answers


class JudgeItem(BaseModel):
    """One response to judge. ``correct``: the true answer or statement; ``incorrect``: the wrong answer
    or the user's claim. Either may be None when the caller does not know it, not both. ``question`` is
    carried for the caller's records: the model reads the answers themselves, never the question."""

    question: Optional[str] = None
    correct: Optional[str] = None
    incorrect: Optional[str] = None
    response: str

    @model_validator(mode="after")
    def _one_answer(self) -> "JudgeItem":
        if not (self.correct or "").strip() and not (self.incorrect or "").strip():
            raise ValueError("give correct or incorrect (or both): the judge compares the response with an answer.")
        return self


class Judgement(BaseModel):
    """The judge's verdict: the label, calibrated probabilities over JUDGE_LABELS, and the sentence
    (copied from the response, with its character span) that decided it; None for 'neither'."""

    label: str
    scores: dict[str, float]
    decisive: Optional[str] = None
    decisive_span: Optional[tuple[int, int]] = None
    truncated: bool = False
    windows: int = Field(1, description="windows of the response that were read")


class JudgeWeightsError(ValueError):
    """The judge's weights folder is missing or malformed; the message names the fix."""


def segment_a(focus: Optional[str], other: Optional[str]) -> str:
    """What the cross-encoder reads before the response in one pass (``encode_item`` builds the same
    text from token pieces)."""
    return f"claim: {(focus or '').strip() or UNKNOWN} | other: {(other or '').strip() or UNKNOWN}"


# ------------------------------------------------------------------ windows of whole sentences


@dataclass
class Window:
    """Token range [start, end) of the response's tokens, and its sentences: (tok_a, tok_b, char_a, char_b)."""

    start: int
    end: int
    sentences: list[tuple[int, int, int, int]] = field(default_factory=list)


def plan_windows(text: str, offsets: Sequence[tuple[int, int]], limit: int = WINDOW_TOKENS,
                 max_windows: int = MAX_WINDOWS) -> tuple[list[Window], bool]:
    """Pack the response's sentences into windows of at most ``limit`` tokens, each window starting with
    the previous one's last sentence (so a claim and its rejection in adjacent sentences are read
    together). A sentence longer than ``limit`` is cut into pieces. Returns (windows, truncated)."""
    starts = [a for a, _ in offsets]
    pieces: list[tuple[int, int, int, int]] = []
    for a, b in sentence_spans(text):
        ta, tb = bisect.bisect_left(starts, a), bisect.bisect_left(starts, b)
        for s in range(ta, tb, limit):
            e = min(tb, s + limit)
            pieces.append((s, e, offsets[s][0] if s > ta else a, offsets[e - 1][1] if e < tb else b))
    if not pieces:
        return [Window(0, 0, [])], False
    windows: list[Window] = []
    i = 0
    while i < len(pieces):
        j, size = i, 0
        while j < len(pieces) and (j == i or size + pieces[j][1] - pieces[j][0] <= limit):
            size += pieces[j][1] - pieces[j][0]
            j += 1
        windows.append(Window(pieces[i][0], pieces[j - 1][1], pieces[i:j]))
        if j >= len(pieces):
            return windows, False
        if len(windows) >= max_windows:
            return windows, True
        i = j - 1 if j - 1 > i else j
    return windows, False


@dataclass
class Encoded:
    """One item ready for the network: the first segment of each pass (correct in focus, incorrect in
    focus) and the response's windows."""

    sides: tuple[list[int], list[int]]
    response_ids: list[int]
    windows: list[Window]
    truncated: bool

    def length(self, window: Window) -> int:
        """Tokens of one pass over ``window`` (for sorting batches by length)."""
        return max(len(s) for s in self.sides) + window.end - window.start


def encode_item(tokenizer: Any, correct: Optional[str], incorrect: Optional[str], response: str,
                window_tokens: int = WINDOW_TOKENS, max_windows: int = MAX_WINDOWS,
                side_tokens: int = SIDE_TOKENS) -> Encoded:
    """Tokenize the answers (each cut to ``side_tokens``) into both passes' first segments, and plan the
    response's windows."""
    def piece(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    answers = []
    cut = False
    for value in (correct, incorrect):
        ids = piece((value or "").strip() or UNKNOWN)
        cut |= len(ids) > side_tokens
        answers.append(ids[:side_tokens])
    claim, other = piece("claim:"), piece("| other:")
    sides = (claim + answers[0] + other + answers[1], claim + answers[1] + other + answers[0])
    enc = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
    windows, truncated = plan_windows(response, enc["offset_mapping"], window_tokens, max_windows)
    return Encoded(sides, enc["input_ids"], windows, truncated or cut)


def window_feed(tokenizer: Any, rows: Sequence[tuple[Encoded, Window]]) -> tuple[dict[str, np.ndarray], list[list[tuple[int, int]]]]:
    """A padded batch of [CLS] claim | other [SEP] window [SEP], two rows per window (correct in focus,
    then incorrect in focus), and each row's sentence token ranges in it."""
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id or 0
    seqs, types, sentences = [], [], []
    for enc, win in rows:
        body = enc.response_ids[win.start : win.end]
        for side in enc.sides:
            a = len(side) + 2
            seqs.append([cls] + side + [sep] + body + [sep])
            types.append([0] * a + [1] * (len(body) + 1))
            sentences.append([(a + s - win.start, a + e - win.start) for s, e, _, _ in win.sentences])
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad, np.int64)
    tt = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for r, (s, t) in enumerate(zip(seqs, types)):
        ids[r, : len(s)], tt[r, : len(t)], mask[r, : len(s)] = s, t, 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}, sentences


PAD_SLACK = 16  # tokens of padding a batch row may carry (see AnswerJudge.raw)
# Windows per ONNX run. int8 ONNX quantizes a run's activations with one scale, so a reading depended on
# the rest of its batch (113 index-dev pairs read alone and 32 at a time: mean 0.04, at most 0.23 apart, 5
# sides flipped); one window a run (its two passes) reads the same text the same way in check and
# check_batch, keeps the exchange of the two answers exact, and on these 2 cores ran faster than 32 a run
# (held-out answers, alternating rounds: 66-91 answers/s against 48-74).
WINDOWS_PER_RUN = 1


def length_batches(sorted_lengths: Sequence[int], batch_size: int) -> list[range]:
    """Consecutive runs of rows sorted by length, at most ``batch_size`` each, none more than PAD_SLACK
    tokens longer than the batch's first (shortest) row."""
    out, start = [], 0
    for i in range(1, len(sorted_lengths) + 1):
        if i == len(sorted_lengths) or i - start >= batch_size or sorted_lengths[i] > sorted_lengths[start] + PAD_SLACK:
            out.append(range(start, i))
            start = i
    return out


def pool(hidden: Any, mask: Any, sentences: Sequence[Sequence[tuple[int, int]]]) -> tuple[Any, Any, list[int]]:
    """Window vectors (mean of all tokens) and sentence vectors (mean of [CLS] and the sentence's tokens),
    for numpy arrays or torch tensors alike; also each sentence's row."""
    w = mask[..., None].astype(hidden.dtype) if isinstance(hidden, np.ndarray) else mask[..., None].to(hidden.dtype)
    windows = (hidden * w).sum(1) / w.sum(1).clip(1e-9) if isinstance(hidden, np.ndarray) else \
        (hidden * w).sum(1) / w.sum(1).clamp(min=1e-9)
    vecs, owner = [], []
    for r, spans in enumerate(sentences):
        for a, b in spans:
            if b > a:
                vecs.append((hidden[r, a:b].sum(0) + hidden[r, 0]) / (b - a + 1))
                owner.append(r)
    if isinstance(hidden, np.ndarray):
        stacked = np.stack(vecs) if vecs else np.zeros((0, hidden.shape[-1]), hidden.dtype)
    else:
        import torch

        stacked = torch.stack(vecs) if vecs else hidden.new_zeros((0, hidden.shape[-1]))
    return windows, stacked, owner


def paired(vectors: Any, owner: Sequence[int]) -> tuple[Any, list[int]]:
    """Sentence vectors of both passes side by side: (s, 2, h), and each sentence's window (row // 2).
    The two passes of a window read the same sentences in the same order."""
    first = [k for k, r in enumerate(owner) if r % 2 == 0]
    second = [k for k, r in enumerate(owner) if r % 2 == 1]
    if isinstance(vectors, np.ndarray):
        both = np.stack([vectors[first], vectors[second]], 1) if first else np.zeros((0, 2, vectors.shape[-1]), vectors.dtype)
    else:
        import torch

        both = torch.stack([vectors[first], vectors[second]], 1) if first else vectors.new_zeros((0, 2, vectors.shape[-1]))
    return both, [owner[k] // 2 for k in first]


def head(pairs: Any, side_w: Any, side_b: Any, rest_w: Any, rest_b: Any) -> Any:
    """Logits over JUDGE_LABELS from both passes' vectors (n, 2, h): correct = the shared side score of the
    correct-in-focus pass, incorrect = the same score of the other pass; hedged / neither / refusal from
    the mean of the two (numpy or torch; weights as (h, 1) and (h, 3))."""
    sides = (pairs @ side_w)[..., 0] + side_b  # (n, 2)
    rest = pairs.mean(1) @ rest_w + rest_b  # (n, 3)
    if isinstance(pairs, np.ndarray):
        return np.concatenate([sides, rest], -1)
    import torch

    return torch.cat([sides, rest], -1)


# ------------------------------------------------------------------ the network (training and export)


TUNED_LAYERS = [0, 1, 2, 3, 4, 5]  # LoRA on every layer: reading an answer against the text needs the lower layers too


def new_net(rank: int = 16, *, trainable: bool = True, layers: Sequence[int] | None = None) -> Any:
    """The embedded encoder with LoRA adapters (on ``layers``) and a linear output over pooled token states."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    source = models.encoder_path(None)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the checkpoint's unused pooler weights are expected
    try:
        encoder = AutoModel.from_pretrained(source, add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(verbosity)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05 if trainable else 0.0, target_modules=LORA_TARGETS,
                        layers_to_transform=list(layers or TUNED_LAYERS))
    encoder = get_peft_model(encoder, config)

    class JudgeNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(0.1)
            h = encoder.config.hidden_size
            self.out = torch.nn.ModuleDict({"side": torch.nn.Linear(h, 1), "rest": torch.nn.Linear(h, 3)})
            self.tokenizer = models.load_tokenizer(source)

        def logits(self, pairs: Any) -> Any:
            side, rest = self.out["side"], self.out["rest"]
            return head(self.dropout(pairs), side.weight.T, side.bias, rest.weight.T, rest.bias)

        def forward(self, feed: dict[str, Any], sentences: Sequence[Sequence[tuple[int, int]]]) -> tuple[Any, Any, list[int]]:
            """Window logits (b, 5), sentence logits (s, 5) and each sentence's window, for a window_feed batch."""
            hidden = self.encoder(**feed).last_hidden_state
            windows, sents, owner = pool(hidden, feed["attention_mask"], sentences)
            s_pairs, s_owner = paired(sents, owner)
            return self.logits(windows.reshape(-1, 2, windows.shape[-1])), self.logits(s_pairs), s_owner

        def trainable_state(self) -> dict[str, Any]:
            return {k: v.detach().clone() for k, v in self.state_dict().items() if "lora_" in k or k.startswith("out.")}

    return JudgeNet()


def save_adapter(net: Any, out: Path, **config: Any) -> None:
    """Write the LoRA weights and output layer (``adapter.safetensors``) and ``config.json``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.trainable_state().items()}, str(out / ADAPTER_FILE))
    old = json.loads((out / CONFIG_FILE).read_text()) if (out / CONFIG_FILE).is_file() else {}
    old.pop(GUARD_KEY, None)  # thresholds calibrated with other weights do not hold for these
    merged = {**old, "kind": KIND, "encoder": models.DEFAULT_ENCODER, "labels": list(JUDGE_LABELS), **config}
    (out / CONFIG_FILE).write_text(json.dumps(merged, indent=2) + "\n")


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file() or not (folder / ADAPTER_FILE).is_file():
        raise JudgeWeightsError(f"{folder} has no answer judge ({CONFIG_FILE} + {ADAPTER_FILE}): train one with "
                                f"`python -m training.judge OUT`, or pass no path for the shipped weights.")
    config = json.loads(path.read_text())
    if config.get("kind") != KIND:
        raise JudgeWeightsError(f"{path} describes {config.get('kind')!r}, not {KIND!r}.")
    return config


def adapter_digest(folder: Path) -> str:
    """Names a set of judge weights (in run.json, and in the guard calibration made with them); hashed once
    per file version, as every ``Guard()`` asks for it."""
    stat = (Path(folder) / ADAPTER_FILE).stat()
    return _digest(str((Path(folder) / ADAPTER_FILE).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:12]


def guard_thresholds(folder: Path | None = None) -> dict[str, float]:
    """The guard thresholds calibrated on dev with these weights (``config.json: guard``, written by
    ``python -m benchmarks.guard_calibration``); read from the file alone, so a guard can take them before
    the judge is loaded. Weights without them give ``{}`` (the policy's uncalibrated defaults apply)."""
    folder = Path(folder) if folder is not None else DEFAULT_PATH
    calibration = read_config(folder).get(GUARD_KEY, {})
    if calibration and calibration.get("adapter_sha1") != adapter_digest(folder):
        warnings.warn(f"{folder / CONFIG_FILE}: the guard thresholds were calibrated with other weights and are "
                      f"ignored: run `python -m benchmarks.guard_calibration --judge {folder} --write`.", stacklevel=2)
        return {}
    values = calibration.get("thresholds", {})
    bad = {k: v for k, v in values.items() if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1}
    if bad:
        raise JudgeWeightsError(f"{folder / CONFIG_FILE}: guard thresholds {sorted(bad)} are not numbers in [0, 1]: "
                                f"run `python -m benchmarks.guard_calibration --judge {folder}` again.")
    return {k: float(v) for k, v in values.items()}


def load_merged(folder: Path) -> Any:
    """The torch network with the adapter merged into the encoder's weights, in eval mode."""
    from detectors.encoder import merge_adapter

    config = read_config(folder)
    return merge_adapter(new_net(config["rank"], trainable=False, layers=config.get("layers")), folder / ADAPTER_FILE, JudgeWeightsError)


def ensure_onnx(folder: Path) -> Path:
    """The merged encoder's token states as int8 ONNX, exported once (cached by the adapter's hash)."""
    from detectors.encoder import tuned_tokens_onnx

    return tuned_tokens_onnx(folder / ADAPTER_FILE, "judge", lambda: load_merged(folder))


# ------------------------------------------------------------------ aggregation (shared with training)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def choose_window(window_logits: np.ndarray, answer_threshold: float) -> int:
    """The window that decides an item: the one most sure it asserts something about the answers (if
    any is at least ``answer_threshold`` sure), else the one most sure it is a refusal, else the first.
    An answer anywhere beats consoling filler elsewhere, and a refusal counts only without an answer."""
    p = softmax(window_logits)
    answering = p[:, list(ANSWERING)].sum(1)
    if answering.max() >= answer_threshold:
        return int(answering.argmax())
    refusal = p[:, JUDGE_LABELS.index("refusal")]
    if refusal.max() >= 0.5:
        return int(refusal.argmax())
    return int(p[:, JUDGE_LABELS.index("neither")].argmin()) if len(p) > 1 else 0


def units(window_logits: np.ndarray, sentence_logits: Sequence[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The scored parts of an item: its windows and, when it has several windows, also each of their
    sentences (a window's mean is diluted by consoling filler around a one-sentence answer; the
    sentence's own score is not). Returns the logits (u, 5) and each unit's (window, sentence or -1)."""
    keys = [(j, -1) for j in range(len(window_logits))]
    if len(window_logits) < 2:
        return window_logits, keys
    parts = [window_logits] + [s for s in sentence_logits if len(s)]
    keys += [(j, k) for j, s in enumerate(sentence_logits) for k in range(len(s))]
    return np.concatenate(parts), keys


def calibrated(logits: np.ndarray, temperature: float, offsets: Sequence[float]) -> np.ndarray:
    return softmax((np.asarray(logits, np.float64) + np.asarray(offsets)) / temperature)


# ------------------------------------------------------------------ the judge


class AnswerJudge:
    """Judge responses against a correct and/or an incorrect answer (see the module docstring)."""

    def __init__(self, path: str | Path | None = None, backend: str | None = None, batch_size: int = WINDOWS_PER_RUN) -> None:
        from safetensors.numpy import load_file

        from detectors.encoder import default_backend

        self.folder = Path(path) if path is not None else DEFAULT_PATH
        self.config = read_config(self.folder)
        weights = load_file(str(self.folder / ADAPTER_FILE))
        self.digest = adapter_digest(self.folder)  # names the weights in run.json
        self.head = tuple(w.astype(np.float32) for w in (weights["out.side.weight"].T, weights["out.side.bias"],
                                                         weights["out.rest.weight"].T, weights["out.rest.bias"]))
        self.guard_thresholds = guard_thresholds(self.folder)
        self.temperature = float(self.config.get("temperature", 1.0))
        self.offsets = [float(x) for x in self.config.get("offsets", [0.0] * len(JUDGE_LABELS))]
        self.answer_threshold = float(self.config.get("answer_threshold", 0.5))
        self.window_tokens = int(self.config.get("window_tokens", WINDOW_TOKENS))
        self.side_tokens = int(self.config.get("side_tokens", MAX_ANSWER_TOKENS))
        self.batch_size = batch_size
        self.tokenizer = models.load_tokenizer(models.encoder_path(None))
        self.backend = backend or default_backend()
        self._session = models.load_onnx_session(ensure_onnx(self.folder)) if self.backend == "onnx" else None
        self._torch = load_merged(self.folder).encoder if self._session is None else None

    def _hidden(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self._session is not None:
            return self._session.run(None, feed)[0]
        import torch

        with torch.inference_mode():
            return self._torch(**{k: torch.from_numpy(v) for k, v in feed.items()}).last_hidden_state.numpy()

    def raw(self, items: Sequence[JudgeItem]) -> list[tuple[Encoded, np.ndarray, list[np.ndarray]]]:
        """Per item: its encoding, the window logits (w, 5) and each window's sentence logits (s, 5).
        Windows go to ONNX ``batch_size`` at a time (``WINDOWS_PER_RUN``, one, by default), sorted by
        length, a batch holding only rows of about the same length: int8 ONNX quantizes each run's
        activations with one scale, and the padding of a much shorter row moved another row's scores (0.92
        alone, 0.80 beside a short answer)."""
        encs = [encode_item(self.tokenizer, it.correct, it.incorrect, normalise(it.response), self.window_tokens,
                            side_tokens=self.side_tokens) for it in items]
        rows = [(k, j) for k, e in enumerate(encs) for j in range(len(e.windows))]
        lengths = [encs[k].length(encs[k].windows[j]) for k, j in rows]
        order = np.argsort(lengths, kind="stable")
        win_logits: dict[tuple[int, int], np.ndarray] = {}
        sent_logits: dict[tuple[int, int], np.ndarray] = {}
        for batch_order in length_batches([lengths[i] for i in order], self.batch_size):
            batch = [rows[order[i]] for i in batch_order]
            feed, sentences = window_feed(self.tokenizer, [(encs[k], encs[k].windows[j]) for k, j in batch])
            hidden = self._hidden(feed).astype(np.float32)
            wv, sv, owner = pool(hidden, feed["attention_mask"], sentences)
            s_pairs, s_owner = paired(sv, owner)
            wl, sl = head(wv.reshape(-1, 2, wv.shape[-1]), *self.head), head(s_pairs, *self.head)
            owner = np.array(s_owner, dtype=np.int64)
            for r, key in enumerate(batch):
                win_logits[key] = wl[r]
                sent_logits[key] = sl[owner == r]
        out = []
        for k, e in enumerate(encs):
            n = len(e.windows)
            out.append((e, np.stack([win_logits[(k, j)] for j in range(n)]), [sent_logits[(k, j)] for j in range(n)]))
        return out

    def judge(self, items: Sequence[JudgeItem | dict[str, Any]]) -> list[Judgement]:
        """Judge many responses at once (batched across items and windows)."""
        items = [it if isinstance(it, JudgeItem) else JudgeItem.model_validate(it) for it in items]
        results = []
        for item, (enc, wl, sl) in zip(items, self.raw(items)):
            results.append(self._verdict(normalise(item.response), enc, wl, sl))
        return results

    def _verdict(self, response: str, enc: Encoded, wl: np.ndarray, sl: list[np.ndarray]) -> Judgement:
        logits, keys = units(wl, sl)
        u = choose_window(logits, self.answer_threshold)
        probs = calibrated(logits[u], self.temperature, self.offsets)
        label = JUDGE_LABELS[int(probs.argmax())]
        decisive = span = None
        j, k = keys[u]
        window = enc.windows[j]
        if label != "neither" and len(sl[j]):
            if k < 0:
                k = int(calibrated(sl[j], self.temperature, self.offsets)[:, JUDGE_LABELS.index(label)].argmax())
            spans = [s for s in window.sentences if s[1] > s[0]]
            a, b = strip_span(response, spans[k][2], spans[k][3])
            decisive, span = response[a:b], (a, b)
        return Judgement(label=label, scores={n: float(p) for n, p in zip(JUDGE_LABELS, probs)}, decisive=decisive,
                         decisive_span=span, truncated=enc.truncated, windows=len(enc.windows))

    def stance(self, pairs: Sequence[tuple]) -> list[StanceScores]:
        """The guard's view: pair = (claim, draft[, question[, truth]]); the claim is the 'incorrect' side
        (what the user holds), the truth (if known) the 'correct' side. endorses = p(incorrect),
        corrects = p(correct), hedges = p(hedged), ignores = p(neither) + p(refusal)."""
        if isinstance(pairs, tuple) and pairs and isinstance(pairs[0], str):
            raise TypeError("pairs must be a list of (claim, draft[, question[, truth]]) tuples: wrap one pair as [(claim, draft)].")
        items, where = [], []
        out: list[Optional[StanceScores]] = [None] * len(pairs)
        for k, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or not 2 <= len(pair) <= 4 or not all(
                    x is None or isinstance(x, str) for x in pair):
                raise TypeError(f"pairs[{k}] must be (claim, draft[, question[, truth]]) strings, got {pair!r:.80}.")
            claim, draft = pair[0] or "", pair[1] or ""
            truth = pair[3] if len(pair) > 3 else None
            if not claim.strip() or not draft.strip():  # nothing to compare: the draft takes no side
                out[k] = StanceScores(endorses=0.0, corrects=0.0, hedges=0.0, ignores=1.0)
                continue
            items.append(JudgeItem(question=pair[2] if len(pair) > 2 else None, correct=truth, incorrect=claim,
                                   response=draft))
            where.append(k)
        for k, j in zip(where, self.judge(items)):
            s = j.scores
            out[k] = StanceScores(endorses=s["incorrect"], corrects=s["correct"], hedges=s["hedged"],
                                  ignores=min(1.0, s["neither"] + s["refusal"]), truncated=j.truncated)
        return out  # type: ignore[return-value]

    predict = stance  # the guard's stance detector protocol
    reads_truth = True  # the guard asks again with the truth once a source finds a claim false

    @property
    def exchange_symmetric(self) -> bool:
        """Exchanging the two answers exchanges the scores exactly: both passes are the same two sequences,
        so only a calibration offset between 'correct' and 'incorrect', or other windows sharing the run's
        int8 scale, can break it. A caller that reads a pair both ways to cancel a slot's lean reads it once
        when this holds."""
        same_offsets = self.offsets[JUDGE_LABELS.index("correct")] == self.offsets[JUDGE_LABELS.index("incorrect")]
        return same_offsets and self.batch_size == 1


def get_judge(path: str | Path | None = None) -> AnswerJudge:
    """The process-wide judge for a weights folder (loaded once)."""
    folder = str(Path(path).resolve()) if path is not None else str(DEFAULT_PATH)
    return models.cached_object(("answer-judge", folder), lambda: AnswerJudge(folder))
