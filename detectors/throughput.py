"""Counts the token positions a causal LM's body runs over, so a long job can say where its time went.

A forward pre-hook on the decoder body (``model.base_model``) sees every forward pass: generation's
prefill and each decoding step, training's forward, hidden-state probes and SocioT's log-probabilities.
It counts positions run (padding included) and, of them, the padded ones (attention mask 0), which are
work wasted. The hook is a plain closure over one ``ForwardCount``, so the LoRA copies made with
``copy.deepcopy`` keep counting into the same object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ForwardCount:
    """Running totals; ``since(earlier)`` gives one stage's share."""

    positions: int = 0  # token positions the body ran over, padding included
    padded: int = 0  # of them, positions whose attention mask is 0
    calls: int = 0

    def snapshot(self) -> "ForwardCount":
        return ForwardCount(self.positions, self.padded, self.calls)

    def since(self, earlier: "ForwardCount") -> "ForwardCount":
        return ForwardCount(self.positions - earlier.positions, self.padded - earlier.padded, self.calls - earlier.calls)


def count_forwards(model: Any) -> ForwardCount:
    """Attach a counter to ``model``'s decoder body (once; a second call returns the same counter)."""
    body = getattr(model, "base_model", model)
    existing = getattr(body, "_guardrail_forward_count", None)
    if existing is not None:
        return existing
    count = ForwardCount()

    def hook(_module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            embeds = kwargs.get("inputs_embeds")
            if embeds is None:
                return
            rows, width = embeds.shape[0], embeds.shape[1]
        else:
            rows, width = ids.shape[0], ids.shape[-1]
        count.positions += rows * width
        count.calls += 1
        mask = kwargs.get("attention_mask")
        if mask is not None and getattr(mask, "dim", lambda: 0)() == 2:
            count.padded += int((mask[:, -width:] == 0).sum())

    body.register_forward_pre_hook(hook, with_kwargs=True)
    body._guardrail_forward_count = count
    return count


def forward_flops_per_position(model: Any) -> float:
    """2·N over the body's weights (embeddings excluded). The LM head is left out: it runs only at the
    positions that need logits, and SocioT and training slice those."""
    cfg = model.config
    total = sum(p.numel() for p in model.parameters())
    embedding = cfg.vocab_size * cfg.hidden_size
    body = total - embedding * (1 if getattr(cfg, "tie_word_embeddings", False) else 2)
    return 2.0 * body


def stage_throughput(count: ForwardCount, seconds: float, flops_per_position: float, peak_gflops: float | None) -> dict:
    """Positions per second, the share wasted on padding, and the body's GFLOP/s beside the matmul peak."""
    seconds = max(seconds, 1e-9)
    gflops = count.positions * flops_per_position / seconds / 1e9
    return {"positions": count.positions, "padded_share": round(count.padded / count.positions, 3) if count.positions else None,
            "positions_per_s": round(count.positions / seconds, 1), "forward_gflops": round(gflops, 2),
            "fraction_of_peak": round(gflops / peak_gflops, 3) if peak_gflops else None}
