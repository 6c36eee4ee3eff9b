"""The LoRA-tuned emotion encoder: MiniLM with LoRA adapters merged in, mean pooling, a linear output.

It is the third scorer of the emotion detector, beside the MLP over the shared (frozen) vector and the
lexical model: the frozen vector carries too little emotion for the sadness targets, so this pass
tunes the encoder itself (trained by ``training.emotion_encoder``). Only the adapter ships (~3 MB);
at first use it is merged into the embedded encoder and exported to int8 ONNX under
``$GUARDRAIL_HOME/onnx/``, like the shared encoder. It costs one extra encoder pass per message,
with its own per-process cache so earlier turns are not encoded again.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors import models
from detectors.encoder import TEXTS_PER_RUN, TokenStates, span_tokens
from detectors.text import first_and_last, sentence_spans
from detectors.tokens import load_core

ADAPTER_FILE, CONFIG_FILE = "adapter.safetensors", "adapter.json"
KIND = "emotion-lora-encoder"
LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
CACHE_SIZE = 2048
MAX_SENTENCES = 8  # a message's first four and last four sentences are also scored on their own


def new_net(n_outputs: int, rank: int = 16, *, trainable: bool = True, layers: Sequence[int] | None = None) -> Any:
    """A fresh network: the embedded encoder with LoRA adapters (rank ``rank``) on ``layers`` (all when
    None) and a linear output. Adapters on the top layers only let the guard run the frozen lower layers
    once for both the shared vector and this encoder (``split_net``)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    source = models.encoder_path(None)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the checkpoint's unused pooler weights are expected: no load report
    try:
        encoder = AutoModel.from_pretrained(source, add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(verbosity)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05 if trainable else 0.0, target_modules=LORA_TARGETS,
                        layers_to_transform=list(layers) if layers is not None else None,
                        layers_pattern="layer" if layers is not None else None)
    encoder = get_peft_model(encoder, config)

    class EmotionEncoderNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(0.1)
            self.out = torch.nn.Linear(encoder.config.hidden_size, n_outputs)
            self.tokenizer = models.load_tokenizer(source)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return self.out(self.dropout(pooled))

        def trainable_state(self) -> dict[str, Any]:
            return {k: v.detach().clone() for k, v in self.state_dict().items() if "lora_" in k or k.startswith("out.")}

    return EmotionEncoderNet()


def save_adapter(net: Any, out: Path, **config: Any) -> None:
    """Write the LoRA weights and output layer (``adapter.safetensors``) and ``adapter.json``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.trainable_state().items()}, str(out / ADAPTER_FILE))
    (out / CONFIG_FILE).write_text(json.dumps({"kind": KIND, "encoder": "embedded:all-minilm-l6-v2", **config}, indent=2) + "\n")


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file() or not (folder / ADAPTER_FILE).is_file():
        raise FileNotFoundError(f"{folder} has no tuned emotion encoder ({CONFIG_FILE} + {ADAPTER_FILE}).")
    config = json.loads(path.read_text())
    if config.get("kind") != KIND:
        raise ValueError(f"{path} describes {config.get('kind')!r}, not {KIND!r}.")
    return config


def load_merged(folder: Path) -> Any:
    """The torch network with the adapter merged into the encoder's weights, in eval mode."""
    from detectors.encoder import merge_adapter

    config = read_config(folder)
    net = new_net(len(config["outputs"]), config["rank"], trainable=False, layers=config.get("layers"))
    return merge_adapter(net, folder / ADAPTER_FILE, ValueError)


def tuned_layers(folder: Path) -> list[int] | None:
    """The encoder layers the adapter tunes (None: all of them)."""
    layers = read_config(folder).get("layers")
    return None if layers is None else [int(i) for i in layers]


def split_net(folder: Path) -> Any:
    """One network, two outputs: the shared (frozen) encoder's token states and the tuned encoder's. The
    layers below the first tuned one are the same in both, so they run once; only the tuned layers run
    twice (frozen and tuned). The guard's one pass per user message for every detector."""
    import torch

    layers = tuned_layers(folder)
    if not layers:
        raise ValueError(f"{folder} tunes every layer: it cannot share the lower ones with the shared encoder.")
    first = min(layers)
    tuned_net = load_merged(folder)
    frozen = models.load_encoder(None)[0].auto_model.eval()
    tuned = tuned_net.encoder
    for i in range(first):  # the lower layers must be the shared encoder's own
        for (name, a), b in zip(frozen.encoder.layer[i].state_dict().items(), tuned.encoder.layer[i].state_dict().values()):
            if not torch.equal(a, b):
                raise ValueError(f"{folder}: layer {i} ({name}) differs from the shared encoder's; retrain the adapter.")

    class SplitEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.frozen, self.tuned_top = frozen, torch.nn.ModuleList(tuned.encoder.layer[first:])
            self.tokenizer = tuned_net.tokenizer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.frozen.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            mask, _ = self.frozen._create_attention_masks(attention_mask=attention_mask, encoder_attention_mask=None,
                                                          embedding_output=hidden, encoder_hidden_states=None, cache=None)
            for layer in self.frozen.encoder.layer[:first]:
                hidden = layer(hidden, mask)
            shared, own = hidden, hidden
            for layer in self.frozen.encoder.layer[first:]:
                shared = layer(shared, mask)
            for layer in self.tuned_top:
                own = layer(own, mask)
            return shared, own

    return SplitEncoder().eval()


SPLIT_OUTPUTS = ("shared_states", "tuned_states")


def ensure_onnx(folder: Path) -> Path:
    """The merged encoder's token states as int8 ONNX, exported once (cached by the adapter's hash); for an
    adapter on the top layers only, the split graph (``split_net``: shared and tuned token states)."""
    from detectors.encoder import tuned_tokens_onnx

    if tuned_layers(folder):
        return tuned_tokens_onnx(folder / ADAPTER_FILE, "emotion-split", lambda: split_net(folder), SPLIT_OUTPUTS)
    return tuned_tokens_onnx(folder / ADAPTER_FILE, "emotion-encoder", lambda: load_merged(folder))


def length_batches(texts: Sequence[str], batch_size: int) -> list[np.ndarray]:
    """Indices in batches of similar length: sorted by length, and a new batch wherever a text is over
    twice as long as the batch's first, so short texts are not padded to a long one's length."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    batches: list[list[int]] = []
    for i in order:
        if not batches or len(batches[-1]) >= batch_size or len(texts[i]) > 2 * len(texts[batches[-1][0]]) + 40:
            batches.append([])
        batches[-1].append(int(i))
    return [np.array(b) for b in batches]


@dataclass(frozen=True)
class TunedScores:
    """Raw scores of one text: the whole text, and each of its first sentences when it has several."""

    whole: np.ndarray  # (targets,)
    sentences: np.ndarray  # (k, targets); k = 0 for a one-sentence text
    sentence_texts: tuple[str, ...]


class TunedEmotionScorer:
    """The tuned encoder's raw scores (logits) for the detector's targets, per text and per sentence.

    One encoder pass per text: the token states are mean-pooled over the whole text (as in training)
    and, for a text of several sentences, over each sentence's tokens (with [CLS] and [SEP]), so a
    message that says it is sad in one sentence and asks a question in the next is not averaged away.
    """

    def __init__(self, folder: str | Path, backend: str | None = None) -> None:
        from safetensors.numpy import load_file

        from detectors.encoder import MAX_TOKENS, default_backend

        self.folder = Path(folder)
        self.config = read_config(self.folder)
        self.targets: list[str] = list(self.config["targets"])
        weights = load_file(str(self.folder / ADAPTER_FILE))
        n = len(self.targets)
        self.w, self.bias = weights["out.weight"][:n].T.astype(np.float32), weights["out.bias"][:n].astype(np.float32)
        self.max_tokens = MAX_TOKENS
        self.tokenizer = models.load_tokenizer(models.encoder_path(None))
        self.core = load_core(models.encoder_path(None))  # cuts per call: never the shared tokenizer's state
        self.backend = backend or default_backend()
        self._session = models.load_onnx_session(ensure_onnx(self.folder)) if self.backend == "onnx" else None
        self._torch = load_merged(self.folder).encoder if self._session is None else None
        # the split graph also gives the shared encoder's token states from the same pass (``score_shared``)
        self.split = self._session is not None and bool(tuned_layers(self.folder))
        self._cache: OrderedDict[str, TunedScores] = OrderedDict()
        self._lock = threading.Lock()

    def _hidden(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(this encoder's token states, the shared encoder's from the same pass or None)."""
        if self._session is not None:
            outputs = self._session.run(None, feed)
            return (outputs[1], outputs[0]) if self.split else (outputs[0], None)
        import torch

        with torch.inference_mode():
            return self._torch(**{k: torch.from_numpy(v) for k, v in feed.items()}).last_hidden_state.numpy(), None

    def _run(self, texts: list[str], batch_size: int = TEXTS_PER_RUN) -> tuple[list[TunedScores], list[TokenStates | None]]:
        out: list[TunedScores | None] = [None] * len(texts)
        shared: list[TokenStates | None] = [None] * len(texts)
        for idx in length_batches(texts, batch_size):
            batch = [texts[i] for i in idx]
            enc = self.core.batch(batch, self.max_tokens)
            hidden, frozen = self._hidden(enc.feed)
            for row, i in enumerate(idx):
                mask = enc.feed["attention_mask"][row].astype(bool)
                out[i] = self._pool(texts[i], hidden[row], mask, enc.offsets[row])
                if frozen is not None:
                    shared[i] = TokenStates(frozen[row][mask], enc.offsets[row][mask], enc.truncated[row])
        return out, shared  # type: ignore[return-value]

    def _pool(self, text: str, hidden: np.ndarray, mask: np.ndarray, offsets: np.ndarray) -> TunedScores:
        whole = hidden[mask].mean(0) @ self.w + self.bias
        spans = first_and_last(sentence_spans(text), MAX_SENTENCES)  # a long message's opening and its close
        spans = spans if len(spans) > 1 else []
        special = mask & (offsets[:, 1] == 0)
        vectors, kept = [], []
        for a, b in spans:
            inside = mask & span_tokens(offsets, a, b)
            if inside.any():  # a sentence past the encoder's window has no tokens
                vectors.append(hidden[inside | special].mean(0))
                kept.append(text[a:b].strip())
        sentences = np.array(vectors) @ self.w + self.bias if vectors else np.zeros((0, len(self.targets)), np.float32)
        return TunedScores(whole.astype(np.float32), sentences.astype(np.float32), tuple(kept))

    def score(self, texts: Sequence[str], use_cache: bool = True) -> list[TunedScores]:
        return self.score_shared(texts, use_cache)[0]

    def score_shared(self, texts: Sequence[str], use_cache: bool = True) -> tuple[list[TunedScores], dict[str, TokenStates]]:
        """Scores per text, and the shared encoder's token states of the texts this call ran (with the
        split graph; empty otherwise): the caller hands them to the shared encoder (``SharedEncoder.adopt``)."""
        texts = list(texts)
        if not use_cache:
            scores, shared = self._run(texts)
            return scores, {t: s for t, s in zip(texts, shared) if s is not None}
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh_scores, fresh_shared = self._run(missing) if missing else ([], [])
        fresh = dict(zip(missing, fresh_scores))
        with self._lock:
            self._cache.update(fresh)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            cached = {t: self._cache[t] for t in texts if t in self._cache}
        scores = [fresh.get(t) or cached.get(t) or self._run([t])[0][0] for t in texts]  # (evicted meanwhile: again)
        return scores, {t: s for t, s in zip(missing, fresh_shared) if s is not None}

    def logits(self, texts: Sequence[str], use_cache: bool = True) -> np.ndarray:
        """Whole-text raw scores, (n, len(targets))."""
        scores = self.score(texts, use_cache)
        return np.stack([s.whole for s in scores]) if scores else np.zeros((0, len(self.targets)), np.float32)
