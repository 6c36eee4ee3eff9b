"""Batched chat generation with a local causal LM: one implementation for the demo, the benchmark's
local target, the guard's re-ask probe and the reproduction.

Batches are left-padded and sorted by length so that a batch costs little more than one prompt.
"""

from __future__ import annotations

from typing import Any, Sequence

Message = dict[str, str]

# Prompts per generation batch. Greedy decoding on a CPU reads every weight once per step whatever the
# batch, so bigger batches share that cost: 96 benchmark prompts of the reproduction, 48 new tokens,
# SmolLM2-135M on 2 cores took 39.4 s in batches of 16, 30.9 s in 32, 31.1 s in 48 (2026-12-03).
BATCH_SIZE = 32


def as_conversation(prompt: str | Sequence[Message], system: str | None = None) -> list[Message]:
    """A bare string becomes one user turn; an optional system prompt goes first."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if system and not (messages and messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def render_prompts(tokenizer: Any, conversations: Sequence[Sequence[Message]]) -> list[str]:
    """Apply the model's chat template, ending with the assistant's turn opener."""
    return [
        tokenizer.apply_chat_template(list(conv), tokenize=False, add_generation_prompt=True)
        for conv in conversations
    ]


def generate(
    chat: Any,
    prompts: Sequence[str | Sequence[Message]],
    *,
    system: str | None = None,
    max_new_tokens: int = 64,
    batch_size: int = BATCH_SIZE,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    model: Any = None,
    prefixes: Sequence[str] | None = None,
) -> list[str]:
    """Answer each prompt (a string or a message list) with ``chat`` (a ``ChatModel``).

    Greedy when ``temperature == 0``; sampled with ``seed`` otherwise. ``model`` overrides
    ``chat.model`` (a peft-wrapped or steered copy) while keeping the tokenizer. ``prefixes``: text that
    each answer is forced to begin with (the model continues it; the returned text excludes it).
    """
    import torch

    if not prompts:
        return []
    tokenizer = chat.tokenizer
    lm = model if model is not None else chat.model
    texts = render_prompts(tokenizer, [as_conversation(p, system) for p in prompts])
    if prefixes is not None:
        if len(prefixes) != len(texts):
            raise ValueError(f"prefixes: {len(prefixes)} given for {len(texts)} prompts")
        texts = [t + p for t, p in zip(texts, prefixes)]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str] = [""] * len(texts)
    device = next(lm.parameters()).device
    for start in range(0, len(order), max(1, batch_size)):
        idx = order[start : start + batch_size]
        batch = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {k: v.to(device) for k, v in batch.items()}
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        if temperature > 0:
            if seed is not None:
                torch.manual_seed(seed + start)
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = lm.generate(**batch, **kwargs)
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        for i, row in zip(idx, new_tokens):
            answers[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    return answers
