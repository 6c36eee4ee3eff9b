"""The shared sentence encoder: each text is encoded once and the vector is shared by every detector.

all-MiniLM-L6-v2 (the embedded encoder) runs either in torch (fp32) or, by default, in ONNX Runtime
with dynamic int8 quantisation, about 3x faster on CPU. The ONNX file is a cache artifact: it is
exported from the embedded torch weights at first use into ``$GUARDRAIL_HOME/onnx/`` and reused
afterwards; it is never shipped. Texts longer than the encoder's window are truncated and the
truncation is reported per text, never silently.

Set ``GUARDRAIL_ENCODER_BACKEND=torch`` to force the torch path (the benchmark compares both).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors import models
from detectors.tokens import load_core

MAX_TOKENS = 256  # all-MiniLM-L6-v2's trained window (sentence_bert_config.json)
# Texts per ONNX run. int8 ONNX quantizes a run's activations with one scale, so a text's vector moved
# with whatever shared its batch; the guard's proxy batches concurrent requests, and one user's message
# must not move another's scores. One text a run makes every reading depend on its own text only; on 2
# cores long texts ran as fast as 32 a run (held-out answers: 156-245 against 120-187 texts/s), short
# messages through the emotion graph somewhat slower (195-301 against 276-340 a second).
TEXTS_PER_RUN = 1
CACHE_SIZE = 4096
TOKEN_CACHE_SIZE = 512
STATES_CACHE_SIZE = 64  # whole messages' token states, for their sentences' vectors (``span_vectors``)
STATES_CHARS = 20_000  # ``token_states`` tokenizes at most this much of a text: its window is 256 tokens
BACKENDS = ("onnx", "torch")


@dataclass
class Encoded:
    """Unit-length sentence vectors (n, dim) and, per text, whether it was cut to the window."""

    vectors: np.ndarray
    truncated: list[bool]


@dataclass(frozen=True)
class TokenStates:
    """One text's token states (special tokens included, no padding) and their character offsets."""

    states: np.ndarray  # (tokens, dim)
    offsets: np.ndarray  # (tokens, 2); (0, 0) for [CLS] and [SEP]
    truncated: bool


def unit(vec: np.ndarray) -> np.ndarray:
    """``vec`` scaled to unit length, as float32 (a zero vector stays zero)."""
    return (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)


def span_tokens(offsets: np.ndarray, start: int, end: int) -> np.ndarray:
    """Which tokens (by their character ``offsets``; (0, 0) marks [CLS], [SEP] and padding) lie inside
    the characters [start, end) of their text."""
    return (offsets[:, 1] > 0) & (offsets[:, 0] >= start) & (offsets[:, 1] <= end)


def default_backend() -> str:
    backend = os.environ.get("GUARDRAIL_ENCODER_BACKEND", "onnx").lower()
    if backend not in BACKENDS:
        raise ValueError(f"GUARDRAIL_ENCODER_BACKEND={backend!r} is not one of {BACKENDS}: unset it or pick one.")
    if backend == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:  # pragma: no cover - onnxruntime is a dependency
            return "torch"
    return backend


def _slug(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _atomic_quantized_export(module: Any, example: dict[str, Any], target: Path, output_name: str | Sequence[str]) -> Path:
    """Export a torch module to ONNX, quantise its weights to int8, and move it into place atomically.
    ``output_name``: one output, or several (token states, batch x tokens each)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    names = list(example)
    fp32 = target.with_name(target.stem + f".fp32.{os.getpid()}.onnx")
    tmp = target.with_name(target.stem + f".int8.{os.getpid()}.tmp.onnx")
    outputs = [output_name] if isinstance(output_name, str) else list(output_name)
    axes = {name: {0: "batch", 1: "tokens"} for name in names + outputs}
    if outputs == ["logits"]:
        axes["logits"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(
            module.eval(),
            tuple(example[name] for name in names),
            str(fp32),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    fp32.unlink(missing_ok=True)
    os.replace(tmp, target)
    return target


class _Bert(object):
    """Wraps a BERT-like model so ONNX sees keyword inputs and one tensor output."""

    @staticmethod
    def wrap(model: Any, output: str) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return getattr(out, output)

        return Wrapped()


def _example_feed(tokenizer: Any) -> dict[str, Any]:
    example = dict(tokenizer(["a short example", "and another one"], ["with a pair", "too"], padding=True, return_tensors="pt"))
    example.setdefault("token_type_ids", example["input_ids"] * 0)
    return {k: example[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def export_onnx_int8(model: Any, tokenizer: Any, target: Path, *, output: str) -> Path:
    """Export a BERT-like torch model (``last_hidden_state`` or ``logits`` output) to int8 ONNX at ``target``."""
    return _atomic_quantized_export(_Bert.wrap(model, output), _example_feed(tokenizer), target, output)


def encoder_onnx_path(name: str | None = None) -> Path:
    """Where the int8 ONNX copy of an encoder is cached (built at first use)."""
    source = models.encoder_path(name)
    return models.guardrail_home() / "onnx" / f"encoder-{_slug(source)}-int8.onnx"


def ensure_encoder_onnx(name: str | None = None) -> Path:
    target = encoder_onnx_path(name)
    if not target.is_file():
        with models._lock:
            if not target.is_file():
                st = models.load_encoder(name)
                export_onnx_int8(st[0].auto_model, st.tokenizer, target, output="last_hidden_state")
    return target


class SharedEncoder:
    """Mean-pooled, unit-length MiniLM sentence vectors with a per-process LRU cache keyed by text."""

    def __init__(self, name: str | None = None, backend: str | None = None, max_tokens: int = MAX_TOKENS) -> None:
        self.name = name
        self.backend = backend or default_backend()
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}.")
        self.max_tokens = max_tokens
        self.source = models.encoder_path(name)
        self.tokenizer = models.load_tokenizer(self.source)
        self.tokenizer.model_max_length = 10**9  # we cut to the window ourselves and record it; silence the notice
        self.core = load_core(self.source)  # thread-safe: the HF tokenizer's settings are shared state
        self._session: Any = None
        self._torch: Any = None
        if self.backend == "onnx":
            self._session = models.load_onnx_session(ensure_encoder_onnx(name))
        else:
            self._torch = models.load_encoder(name)[0].auto_model.eval()
        self._cache: OrderedDict[str, tuple[np.ndarray, bool]] = OrderedDict()
        self._token_cache: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray, bool]] = OrderedDict()
        self._states_cache: OrderedDict[str, TokenStates] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def dim(self) -> int:
        return 384

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> tuple[dict[str, np.ndarray], list[bool]]:
        """Token ids for a batch, padded to its longest member, and which texts were cut."""
        batch = self.core.batch(texts, max_tokens or self.max_tokens)
        return batch.feed, batch.truncated

    def _hidden(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self._session is not None:
            return self._session.run(None, feed)[0]
        import torch

        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
            return self._torch(**tensors).last_hidden_state.numpy()

    def _encode_uncached(self, texts: list[str], batch_size: int) -> tuple[np.ndarray, list[bool]]:
        order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        truncated = [False] * len(texts)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            feed, cut = self.tokenize([texts[i] for i in idx])
            hidden = self._hidden(feed)
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            vectors[idx] = pooled
            for j, i in enumerate(idx):
                truncated[i] = cut[j]
        return vectors, truncated

    def encode_tokens(self, texts: Sequence[str], batch_size: int = TEXTS_PER_RUN, max_tokens: int | None = None,
                      use_cache: bool = True) -> tuple[list[np.ndarray], Encoded]:
        """Per-text token vectors (unit length, special tokens dropped) and the sentence vectors, in one
        pass. The sentence vectors also fill the ``encode`` cache, so a text is never encoded twice."""
        texts = list(texts)
        limit = max_tokens or self.max_tokens
        tokens: list[np.ndarray | None] = [None] * len(texts)
        pooled = np.zeros((len(texts), self.dim), dtype=np.float32)
        truncated = [False] * len(texts)
        missing: dict[str, list[int]] = {}
        with self._cache_lock:
            for i, text in enumerate(texts):
                hit = self._token_cache.get((text, limit)) if use_cache else None
                if hit is not None:
                    tokens[i], pooled[i], truncated[i] = hit
                else:
                    missing.setdefault(text, []).append(i)
        unique = list(missing)
        order = np.argsort([len(t) for t in unique])
        for start in range(0, len(unique), batch_size):
            idx = order[start : start + batch_size]
            feed, cut = self.tokenize([unique[k] for k in idx], limit)
            hidden = self._hidden(feed)
            mask = feed["attention_mask"]
            for j, k in enumerate(idx):
                n = int(mask[j].sum())
                states = hidden[j, :n]
                vec = unit(states.mean(0))
                inner = states[1 : max(2, n - 1)]  # drop [CLS] and [SEP]
                inner = inner / np.clip(np.linalg.norm(inner, axis=1, keepdims=True), 1e-12, None)
                value = (inner.astype(np.float32), vec.astype(np.float32), cut[j])
                for i in missing[unique[k]]:
                    tokens[i], pooled[i], truncated[i] = value
                if use_cache:
                    with self._cache_lock:
                        self._token_cache[(unique[k], limit)] = value
                        while len(self._token_cache) > TOKEN_CACHE_SIZE:
                            self._token_cache.popitem(last=False)
                        if limit == MAX_TOKENS:
                            self._cache[unique[k]] = (value[1], value[2])
        return tokens, Encoded(pooled, truncated)  # type: ignore[return-value]

    def adopt(self, found: dict[str, TokenStates]) -> None:
        """Take token states computed elsewhere by this encoder's own layers (the emotion detector's split
        graph runs them in the same pass as its tuned layers): each text's vector and states are cached
        as if ``encode`` and ``token_states`` had run."""
        with self._cache_lock:
            for text, found_states in found.items():
                self._remember(text, found_states)

    def _remember(self, text: str, states: TokenStates) -> None:  # under _cache_lock
        self._cache[text] = (unit(states.states.mean(0)), states.truncated)
        self._states_cache[text] = states
        for cache, size in ((self._cache, CACHE_SIZE), (self._states_cache, STATES_CACHE_SIZE)):
            while len(cache) > size:
                cache.popitem(last=False)

    def token_states(self, text: str) -> TokenStates:
        """The token states of one pass over ``text`` (cut to the window), cached."""
        with self._cache_lock:
            hit = self._states_cache.get(text)
        if hit is not None:
            return hit
        batch = self.core.batch([text[:STATES_CHARS]], self.max_tokens)  # a 200 KB message is not tokenized whole
        mask = batch.feed["attention_mask"][0].astype(bool)
        states = TokenStates(self._hidden(batch.feed)[0][mask], batch.offsets[0][mask],
                             batch.truncated[0] or len(text) > STATES_CHARS)
        with self._cache_lock:
            self._remember(text, states)
        return states

    def span_vectors(self, text: str, spans: Sequence[tuple[int, int]]) -> list[np.ndarray | None]:
        """Unit vectors of character spans of ``text`` (its sentences), mean-pooled over their tokens in
        one pass over the whole text: a message's sentences cost no pass of their own. None for a span with
        no token in the encoder's window. (Pooled without the text's [CLS] and [SEP]: on the index dev
        set that matched as many false beliefs as encoding each sentence alone, 22 of 41 against 20, with
        5 of 76 false flags against 4; with them, 22 and 6.)"""
        found = self.token_states(text)
        out: list[np.ndarray | None] = []
        for a, b in spans:
            inside = span_tokens(found.offsets, a, b)
            out.append(unit(found.states[inside].mean(0)) if inside.any() else None)
        return out

    def encode(self, texts: Sequence[str], batch_size: int = TEXTS_PER_RUN, use_cache: bool = True) -> Encoded:
        """Vectors for ``texts``; texts seen before in this process are not encoded again."""
        texts = list(texts)
        if not texts:
            return Encoded(np.zeros((0, self.dim), dtype=np.float32), [])
        results: list[tuple[np.ndarray, bool] | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        with self._cache_lock:
            for i, text in enumerate(texts):
                hit = self._cache.get(text) if use_cache else None
                if hit is not None:
                    self._cache.move_to_end(text)
                    results[i] = hit
                else:
                    missing.setdefault(text, []).append(i)
        if missing:
            unique = list(missing)
            vectors, cut = self._encode_uncached(unique, batch_size)
            with self._cache_lock:
                for k, text in enumerate(unique):
                    value = (vectors[k], cut[k])
                    for i in missing[text]:
                        results[i] = value
                    if use_cache:
                        self._cache[text] = value
                        while len(self._cache) > CACHE_SIZE:
                            self._cache.popitem(last=False)
        return Encoded(np.stack([r[0] for r in results]), [r[1] for r in results])  # type: ignore[index]


def get_encoder(name: str | None = None, backend: str | None = None) -> SharedEncoder:
    """The process-wide shared encoder (one per model and backend), so every detector reuses its cache."""
    backend = backend or default_backend()
    return models.cached_object(("shared-encoder", name or models.DEFAULT_ENCODER, backend), lambda: SharedEncoder(name, backend))


def merge_adapter(net: Any, adapter: Path, error: type[Exception] = ValueError) -> Any:
    """Load a LoRA adapter (and its output layer) into ``net``, merge it into the encoder's weights and
    return the network in eval mode; ``error`` names an adapter that does not fit."""
    from safetensors.torch import load_file

    missing, unexpected = net.load_state_dict(load_file(str(adapter)), strict=False)
    lost = [k for k in missing if "lora_" in k or k.startswith("out.")]
    if lost or unexpected:
        raise error(f"{adapter} does not fit the network (missing {lost[:3]}, unexpected {unexpected[:3]}).")
    net.encoder = net.encoder.merge_and_unload()
    return net.eval()


def tuned_tokens_onnx(adapter: Path, prefix: str, build: Any, outputs: Sequence[str] | None = None) -> Path:
    """The int8 ONNX export of a LoRA-tuned encoder's token states, made once and cached under
    ``$GUARDRAIL_HOME/onnx`` by the adapter's hash; ``build()`` returns the merged network, or, with
    ``outputs``, a module (input_ids, attention_mask, token_type_ids) -> one tensor per output name."""
    import hashlib

    from detectors import models

    digest = hashlib.sha1(adapter.read_bytes())
    digest.update(models.encoder_path(None).encode())
    target = models.guardrail_home() / "onnx" / f"{prefix}-{digest.hexdigest()[:12]}-tokens-int8.onnx"
    if not target.is_file():
        with models._lock:
            if not target.is_file():
                net = build()
                if outputs is None:
                    export_onnx_int8(net.encoder, net.tokenizer, target, output="last_hidden_state")
                else:
                    _atomic_quantized_export(net, _example_feed(net.tokenizer), target, list(outputs))
    return target

