"""The LoRA-tuned emotion encoder: MiniLM with LoRA adapters merged in, mean pooling, a linear output.

It is the third scorer of the emotion detector, beside the MLP over the shared (frozen) vector and the
lexical model: the frozen vector carries too little emotion for the sadness targets, so this pass
tunes the encoder itself (trained by ``training.emotion_encoder``). Only the adapter ships (~3 MB);
at first use it is merged into the embedded encoder and exported to int8 ONNX under
``$GUARDRAIL_HOME/onnx/``, like the shared encoder. It costs one extra encoder pass per message,
with its own per-process cache so earlier turns are not encoded again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors import models

ADAPTER_FILE, CONFIG_FILE = "adapter.safetensors", "adapter.json"
KIND = "emotion-lora-encoder"
LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
CACHE_SIZE = 2048


def new_net(n_outputs: int, rank: int = 16, *, trainable: bool = True) -> Any:
    """A fresh network: the embedded encoder with LoRA adapters (rank ``rank``) and a linear output."""
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
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05 if trainable else 0.0, target_modules=LORA_TARGETS)
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
    from safetensors.torch import load_file

    config = read_config(folder)
    net = new_net(len(config["outputs"]), config["rank"], trainable=False)
    missing, unexpected = net.load_state_dict(load_file(str(folder / ADAPTER_FILE)), strict=False)
    lost = [k for k in missing if "lora_" in k or k.startswith("out.")]
    if lost or unexpected:
        raise ValueError(f"{folder / ADAPTER_FILE} does not fit the network (missing {lost[:3]}, unexpected {unexpected[:3]}).")
    net.encoder = net.encoder.merge_and_unload()
    return net.eval()


def onnx_path(folder: Path) -> Path:
    digest = hashlib.sha1((folder / ADAPTER_FILE).read_bytes())
    digest.update(models.encoder_path(None).encode())
    return models.guardrail_home() / "onnx" / f"emotion-encoder-{digest.hexdigest()[:12]}-int8.onnx"


def ensure_onnx(folder: Path) -> Path:
    """Merge and export the tuned encoder to int8 ONNX once (cached under ``$GUARDRAIL_HOME/onnx``)."""
    from detectors.encoder import _atomic_quantized_export

    target = onnx_path(folder)
    if not target.is_file():
        with models._lock:
            if not target.is_file():
                net = load_merged(folder)
                example = dict(net.tokenizer(["a short example", "and another one here"], padding=True, return_tensors="pt"))
                example = {k: example[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
                _atomic_quantized_export(net, example, target, "logits")
    return target


class TunedEmotionScorer:
    """``logits(texts) -> (n, len(targets))`` raw scores of the tuned encoder for the detector's targets."""

    def __init__(self, folder: str | Path, backend: str | None = None) -> None:
        from detectors.encoder import default_backend, get_encoder

        self.folder = Path(folder)
        self.config = read_config(self.folder)
        self.targets: list[str] = list(self.config["targets"])
        self.backend = backend or default_backend()
        self.encoder = get_encoder(None, self.backend)  # for its tokenizer and window (truncation is recorded there)
        self._session = models.load_onnx_session(ensure_onnx(self.folder)) if self.backend == "onnx" else None
        self._torch = load_merged(self.folder) if self._session is None else None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _run(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])
        out = np.zeros((len(texts), len(self.targets)), np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            feed, _ = self.encoder.tokenize([texts[i] for i in idx])
            if self._session is not None:
                logits = self._session.run(None, feed)[0]
            else:
                import torch

                with torch.inference_mode():
                    logits = self._torch(**{k: torch.from_numpy(v) for k, v in feed.items()}).numpy()
            out[idx] = logits[:, : len(self.targets)]
        return out

    def logits(self, texts: Sequence[str], use_cache: bool = True) -> np.ndarray:
        texts = list(texts)
        return self._cached(texts) if use_cache else self._run(texts)

    def _cached(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            fresh = self._run(missing)
            with self._lock:
                for text, row in zip(missing, fresh):
                    self._cache[text] = row
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        with self._lock:
            rows = [self._cache.get(t) for t in texts]
        if any(r is None for r in rows):  # evicted meanwhile by another thread: compute those again
            again = self._run([t for t, r in zip(texts, rows) if r is None])
            it = iter(again)
            rows = [r if r is not None else next(it) for r in rows]
        return np.stack(rows) if rows else np.zeros((0, len(self.targets)), np.float32)
