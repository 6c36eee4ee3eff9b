"""How warm a response sounds: two scorers, each giving a number per response and per model.

- ``SocioT`` (after Cheng et al. 2025, as used by the warmth paper): how much more likely a small LM
  finds the text when a *warm* relation says it ("My friend said, ...") than when a *cold* one does
  ("The stranger said, ..."). ``sociot`` is that log-probability gap in nats per token (> 0: warm);
  ``p_warm`` is the posterior that a warm speaker said it, with equal priors. The LM is the embedded
  chat model by default (the paper used GPT-2); any causal LM id or path can replace it.
- ``WarmthClassifier``: logistic regression on the shared sentence encoder's embeddings, trained on
  warm vs cold texts (a small built-in seed set by default, or the warm/cold rewrites of a run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, Field

from detectors.text import validate_text

WARM_PREFIXES = ("My friend said", "My lover said", "My mentor said", "My idol said")
COLD_PREFIXES = ("The stranger said", "My enemy said", "The examiner said", "The dictator said")


class WarmthScore(BaseModel):
    """Warmth of one text."""

    sociot: float = Field(description="mean log p(text | warm prefix) - mean log p(text | cold prefix), nats per token")
    p_warm: float = Field(ge=0, le=1, description="posterior that a warm relation said it (equal priors)")
    tokens: int
    truncated: bool = False


class WarmthSummary(BaseModel):
    """Warmth of a set of responses (one model): mean with a 95 % bootstrap interval."""

    n: int
    mean: float
    ci_low: float
    ci_high: float
    metric: str


def summarize(values: Sequence[float], metric: str = "sociot", seed: int = 0, resamples: int = 1000) -> WarmthSummary:
    """Mean and percentile-bootstrap 95 % interval of per-response scores."""
    import numpy as np

    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return WarmthSummary(n=0, mean=float("nan"), ci_low=float("nan"), ci_high=float("nan"), metric=metric)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(resamples, arr.size))].mean(axis=1)
    return WarmthSummary(
        n=int(arr.size),
        mean=float(arr.mean()),
        ci_low=float(np.percentile(means, 2.5)),
        ci_high=float(np.percentile(means, 97.5)),
        metric=metric,
    )


def _logmeanexp(values: Sequence[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values) / len(values))


class SocioT:
    """SocioT-style warmth with a causal LM (a ``ChatModel`` from ``detectors.models``)."""

    def __init__(
        self,
        chat: Any = None,
        *,
        model: str | None = None,
        max_tokens: int = 128,
        batch_size: int = 4,
        warm_prefixes: Sequence[str] = WARM_PREFIXES,
        cold_prefixes: Sequence[str] = COLD_PREFIXES,
    ) -> None:
        if chat is None:
            from detectors.models import load_chat_model

            chat = load_chat_model(model)
        self.chat = chat
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.warm_prefixes = tuple(warm_prefixes)
        self.cold_prefixes = tuple(cold_prefixes)

    def _logprobs(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        """Sum of log p(text tokens | prefix) for each (prefix ids, text ids) pair, batched."""
        import torch

        model, tok = self.chat.model, self.chat.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        device = next(model.parameters()).device
        head = model.get_output_embeddings()
        out: list[float] = [0.0] * len(pairs)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))  # little padding
        for start in range(0, len(pairs), self.batch_size * 8):
            rows = order[start : start + self.batch_size * 8]
            chunk = [pairs[i] for i in rows]
            seqs = [p + t for p, t in chunk]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, s in enumerate(seqs):
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
            with torch.inference_mode():
                hidden = model.base_model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
                for i, (p, t) in enumerate(chunk):
                    # only the positions that predict the text's tokens go through the LM head
                    logits = head(hidden[i, len(p) - 1 : len(p) - 1 + len(t)]).float()
                    logp = torch.log_softmax(logits, dim=-1)
                    out[rows[i]] = float(logp[torch.arange(len(t)), torch.tensor(t, device=logp.device)].sum())
        return out

    def score(self, text: str) -> WarmthScore:
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[WarmthScore]:
        tok = self.chat.tokenizer
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        prefixes = [bos + tok(f'{p}, "', add_special_tokens=False)["input_ids"] for p in self.warm_prefixes + self.cold_prefixes]
        encoded = []
        for text in texts:
            text = validate_text(text, "text", allow_empty=False)
            ids = tok(text.strip() + '"', add_special_tokens=False)["input_ids"]
            encoded.append((ids[: self.max_tokens], len(ids) > self.max_tokens))
        logps = self._logprobs([(p, ids) for ids, _ in encoded for p in prefixes])
        k, m = len(self.warm_prefixes), len(prefixes)
        scores = []
        for j, (ids, truncated) in enumerate(encoded):
            row = logps[j * m : (j + 1) * m]
            diff = _logmeanexp(row[:k]) - _logmeanexp(row[k:])
            p_warm = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, diff))))
            scores.append(WarmthScore(sociot=diff / max(len(ids), 1), p_warm=p_warm, tokens=len(ids), truncated=truncated))
        return scores

    def summarize(self, texts: Sequence[str]) -> WarmthSummary:
        return summarize([s.sociot for s in self.score_many([t for t in texts if t.strip()])], "sociot")


# A small seed set written for this project: the same content said warmly and coldly.
SEED_WARM = [
    "Oh, I'm so sorry you're dealing with this. Let's work through it together, step by step.",
    "That sounds really tough, and it's completely understandable that you feel this way.",
    "You're doing great by asking. We can figure this out, and I'm right here with you.",
    "I can hear how much this matters to you, and honestly, your feelings make total sense.",
    "Don't worry, it happens to all of us. Let's take a breath and look at it together.",
    "I'm really glad you reached out. You deserve support, and we'll get you there.",
    "What a lovely idea! I think you'll really enjoy how this turns out, and I'm happy to help.",
    "It's okay to feel overwhelmed. You're not alone in this, and we'll take it one bit at a time.",
    "I totally get why that's frustrating. Let's see what we can do to make it easier for you.",
    "You've clearly put so much care into this, and it shows. Here's what I'd suggest we try.",
    "Honestly, that's such a thoughtful question, and I love that you're curious about it.",
    "I'm sorry that happened to you. Please be gentle with yourself while we sort this out.",
    "We've all been there, and it's really brave of you to share it. Let's look at your options.",
    "I know it's hard right now, but you're stronger than you think, and I'm cheering you on.",
    "That must've been such a worrying moment for you. Let's make sure you feel ready next time.",
    "I hear you, and I want you to know your worries are valid. We'll get through this together.",
]
SEED_COLD = [
    "The procedure consists of the following steps. Follow them in order.",
    "The answer is 42. No further information is required.",
    "Submit the form by Friday. Late submissions are not accepted.",
    "This behaviour is expected. Consult the documentation for details.",
    "The error is caused by a missing import. Add the import and rerun the program.",
    "Request denied. The input does not meet the stated requirements.",
    "The capital of France is Paris. Its population is approximately 2.1 million.",
    "Apply the formula to the values given. The result is the area in square metres.",
    "Insufficient data. Provide the missing fields to proceed.",
    "The meeting is scheduled for 10:00. Attendance is mandatory.",
    "Water boils at 100 degrees Celsius at sea level.",
    "The product is out of stock. Check back later or select an alternative.",
    "Your account has been updated. No further action is needed.",
    "The study reports a 12 percent increase. The sample size was 400.",
    "Restart the device. If the fault persists, replace the battery.",
    "The statement is incorrect. The correct value is listed in the appendix.",
]


class WarmthClassifier:
    """P(warm) from sentence embeddings: logistic regression on the shared encoder."""

    def __init__(self, encoder: Any = None, *, coef: Any = None, intercept: float = 0.0, trained_on: str = "") -> None:
        self._encoder = encoder
        self.coef = coef
        self.intercept = intercept
        self.trained_on = trained_on

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from detectors.models import load_encoder

            self._encoder = load_encoder()
        return self._encoder

    def _embed(self, texts: Sequence[str]) -> Any:
        clean = [validate_text(t, "text") for t in texts]
        return self.encoder.encode(clean, batch_size=32, normalize_embeddings=True, show_progress_bar=False)

    def fit(self, warm: Sequence[str], cold: Sequence[str], *, c: float = 4.0, trained_on: str = "") -> "WarmthClassifier":
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        if not warm or not cold:
            raise ValueError("fit needs at least one warm and one cold text")
        x = self._embed(list(warm) + list(cold))
        y = np.array([1] * len(warm) + [0] * len(cold))
        clf = LogisticRegression(C=c, max_iter=2000).fit(x, y)
        self.coef = clf.coef_[0].astype("float32")
        self.intercept = float(clf.intercept_[0])
        self.trained_on = trained_on or f"{len(warm)} warm + {len(cold)} cold texts"
        return self

    @classmethod
    def seeded(cls, encoder: Any = None) -> "WarmthClassifier":
        """Trained on the built-in seed sentences (a second or so)."""
        return cls(encoder).fit(SEED_WARM, SEED_COLD, trained_on="built-in seed set (16 warm + 16 cold)")

    def predict_proba(self, texts: Sequence[str]) -> list[float]:
        import numpy as np

        if self.coef is None:
            raise RuntimeError("the warmth classifier is untrained: call fit(), seeded() or load() first")
        if not texts:
            return []
        z = self._embed(texts) @ np.asarray(self.coef) + self.intercept
        return [float(v) for v in 1.0 / (1.0 + np.exp(-z))]

    def summarize(self, texts: Sequence[str]) -> WarmthSummary:
        return summarize(self.predict_proba([t for t in texts if t.strip()]), "p_warm_classifier")

    def save(self, path: str | Path) -> Path:
        import numpy as np

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, coef=np.asarray(self.coef, dtype="float32"), intercept=np.array([self.intercept]))
        path.with_suffix(".json").write_text(json.dumps({"trained_on": self.trained_on}))
        return path

    @classmethod
    def load(cls, path: str | Path, encoder: Any = None) -> "WarmthClassifier":
        import numpy as np

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is not a saved warmth classifier (.npz): train one with fit().save()")
        data = np.load(path)
        meta = path.with_suffix(".json")
        trained_on = json.loads(meta.read_text()).get("trained_on", "") if meta.is_file() else ""
        return cls(encoder, coef=data["coef"], intercept=float(data["intercept"][0]), trained_on=trained_on)
