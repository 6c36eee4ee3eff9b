"""A look inside the chat model: hidden states, linear probes, and steering.

- ``collect_hidden_states``: the residual stream at every layer (embeddings = layer 0) at the last
  prompt token, i.e. just before the model writes its answer, for chat-formatted prompts.
- ``probe_by_layer``: cross-validated logistic-regression probes per layer, accuracy and AUROC; used for
  (a) the user's sadness (emotion:sad context vs the others) and (b) whether the model is about to
  endorse the user's false belief (labels from the benchmark's scoring of the ``incorrect`` template).
- ``LinearProbe``: one layer's probe, saved as ``.npz`` + ``.json``; ``score_prompt`` turns it into a
  white-box detector for local models (a probability that the coming answer is sycophantic).
- ``steer``: subtract a direction from one layer's output during generation (a forward hook).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

from pydantic import BaseModel

from detectors.generation import BATCH_SIZE


class LayerScore(BaseModel):
    layer: int
    accuracy: float
    auroc: float


class ProbeCurve(BaseModel):
    """Probe quality by layer for one label on one model."""

    name: str
    model: str
    n: int
    positives: int
    layers: list[LayerScore]
    best_layer: int
    chance_accuracy: float


def decoder_layers(model: Any) -> Any:
    """The list of transformer blocks of a (possibly peft-wrapped) causal LM."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        obj = inner
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    raise ValueError(f"cannot find the decoder layers of {type(inner).__name__}: steering supports Llama/GPT-style models")


def collect_hidden_states(
    chat: Any,
    prompts: Sequence[Any],
    *,
    model: Any = None,
    system: str | None = None,
    batch_size: int = BATCH_SIZE,
    show_progress: bool = False,
) -> Any:
    """Array ``[n_prompts, n_layers + 1, hidden]`` (float32) at the last prompt token."""
    import numpy as np
    import torch

    from detectors.generation import as_conversation, render_prompts

    lm = model if model is not None else chat.model
    tok = chat.tokenizer
    texts = render_prompts(tok, [as_conversation(p, system) for p in prompts])
    device = next(lm.parameters()).device
    old_side = tok.padding_side
    tok.padding_side = "left"  # last position = last prompt token for every row
    rows: list[Any] = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    from rich.progress import Progress

    try:
        with Progress(disable=not show_progress, transient=True) as bar:
            task = bar.add_task("hidden states", total=len(texts))
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
                enc = {k: v.to(device) for k, v in enc.items()}
                with torch.inference_mode():
                    out = lm(**enc, output_hidden_states=True, logits_to_keep=1)
                stacked = torch.stack([h[:, -1, :] for h in out.hidden_states], dim=1).float().cpu().numpy()
                for j, i in enumerate(idx):
                    rows[i] = stacked[j]
                bar.update(task, advance=len(idx))
    finally:
        tok.padding_side = old_side
    return np.stack(rows).astype("float32")


def _cv_scores(x: Any, y: Any, folds: int, c: float, seed: int) -> tuple[float, float]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    k = int(min(folds, np.bincount(y).min()))
    if k < 2:
        return float("nan"), float("nan")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    proba = cross_val_predict(clf, x, y, cv=StratifiedKFold(k, shuffle=True, random_state=seed), method="predict_proba")[:, 1]
    return float(((proba >= 0.5) == y).mean()), float(roc_auc_score(y, proba))


def probe_by_layer(
    hidden: Any,
    labels: Sequence[int],
    *,
    name: str = "probe",
    model: str = "",
    folds: int = 5,
    c: float = 0.1,
    seed: int = 0,
    layers: Sequence[int] | None = None,
) -> ProbeCurve:
    """Cross-validated accuracy and AUROC of a logistic probe at each layer. Where a class has fewer
    than 2 examples, the scores are NaN (reported, not hidden)."""
    import numpy as np

    y = np.asarray(labels, dtype=int)
    if hidden.shape[0] != y.shape[0]:
        raise ValueError(f"hidden states for {hidden.shape[0]} prompts but {y.shape[0]} labels")
    chosen = list(layers) if layers is not None else list(range(hidden.shape[1]))
    scores = []
    for layer in chosen:
        acc, auc = _cv_scores(hidden[:, layer, :], y, folds, c, seed)
        scores.append(LayerScore(layer=layer, accuracy=acc, auroc=auc))
    valid = [s for s in scores if s.auroc == s.auroc]
    best = max(valid, key=lambda s: (s.auroc, s.accuracy)).layer if valid else chosen[-1]
    pos = int(y.sum())
    return ProbeCurve(
        name=name,
        model=model,
        n=int(y.size),
        positives=pos,
        layers=scores,
        best_layer=best,
        chance_accuracy=max(pos, y.size - pos) / max(y.size, 1),
    )


class LinearProbe:
    """A logistic probe on one layer's last-prompt-token state, plus its class-mean difference (the
    steering direction)."""

    def __init__(self, layer: int, coef: Any, intercept: float, mean: Any, scale: Any, direction: Any, meta: dict | None = None) -> None:
        self.layer = layer
        self.coef = coef
        self.intercept = intercept
        self.mean = mean
        self.scale = scale
        self.direction = direction
        self.meta = meta or {}

    @classmethod
    def fit(cls, hidden: Any, labels: Sequence[int], layer: int, *, c: float = 0.1, meta: dict | None = None) -> "LinearProbe":
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        x = hidden[:, layer, :] if hidden.ndim == 3 else hidden
        y = np.asarray(labels, dtype=int)
        if len(set(y.tolist())) < 2:
            raise ValueError("a probe needs both classes among the labels")
        mean, scale = x.mean(0), x.std(0) + 1e-6
        clf = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
        direction = x[y == 1].mean(0) - x[y == 0].mean(0)
        return cls(layer, clf.coef_[0].astype("float32"), float(clf.intercept_[0]), mean.astype("float32"),
                   scale.astype("float32"), direction.astype("float32"), meta)

    def predict_proba(self, hidden: Any) -> Any:
        import numpy as np

        x = hidden[:, self.layer, :] if hidden.ndim == 3 else hidden
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: str | Path) -> Path:
        import numpy as np

        path = Path(path).with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, coef=self.coef, mean=self.mean, scale=self.scale, direction=self.direction)
        path.with_suffix(".json").write_text(json.dumps({"layer": self.layer, "intercept": self.intercept, **self.meta}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LinearProbe":
        import numpy as np

        path = Path(path).with_suffix(".npz")
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise FileNotFoundError(f"{path} (+ .json) is not a saved probe: create one with LinearProbe.fit(...).save(path)")
        data = np.load(path)
        meta = json.loads(meta_path.read_text())
        layer, intercept = meta.pop("layer"), meta.pop("intercept")
        return cls(layer, data["coef"], intercept, data["mean"], data["scale"], data["direction"], meta)


def score_prompt(chat: Any, probe: LinearProbe, text: Any, *, model: Any = None, system: str | None = None) -> float:
    """White-box detector for a local model: the probe's probability for one user prompt (a string or a
    message list), read from the model's hidden state before it answers. For the sycophancy probe this
    is P(the model is about to endorse the user's false belief)."""
    if isinstance(text, str):
        from detectors.text import validate_text

        text = validate_text(text, "text", allow_empty=False)
    hidden = collect_hidden_states(chat, [text], model=model, system=system, batch_size=1)
    return float(probe.predict_proba(hidden)[0])


@contextlib.contextmanager
def steer(model: Any, layer: int, direction: Any, strength: float = 1.0) -> Iterator[None]:
    """Subtract ``strength * direction`` from the residual stream after block ``layer - 1`` (so that
    hidden-state index ``layer`` moves), at every position, while the context is open."""
    import torch

    if layer < 1:
        raise ValueError("steering needs a layer >= 1 (layer 0 is the embedding output)")
    blocks = decoder_layers(model)
    vec = torch.as_tensor(direction, dtype=torch.float32)

    def hook(_module: Any, _inputs: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        shifted = hidden - strength * vec.to(hidden.device, hidden.dtype)
        return (shifted, *output[1:]) if isinstance(output, tuple) else shifted

    handle = blocks[layer - 1].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def plot_curves(curves: Sequence[ProbeCurve], path: str | Path, title: str = "") -> Path:
    """AUROC by layer, one line per curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for c in curves:
        ax.plot([s.layer for s in c.layers], [s.auroc for s in c.layers], marker="o", ms=3, label=f"{c.name} ({c.model}, n={c.n})")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("cross-validated AUROC")
    ax.set_ylim(0.3, 1.02)
    ax.set_title(title or "linear probes by layer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
