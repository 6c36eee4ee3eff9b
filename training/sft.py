"""LoRA supervised fine-tuning with the transformers ``Trainer`` and peft (runs unchanged under
``accelerate launch``: ``accelerate launch -m training.sft --data warm.jsonl --out runs/warm``).

- Loss on assistant tokens only: every other token's label is -100 (found from the chat template's
  character spans, so it works for any model with a chat template).
- Dynamic padding per batch; the LM head runs only on the positions that have a label
  (``logits_to_keep``), which skips most of the vocabulary projection for prompt tokens.
- Adapters are saved in the standard peft format at fractional-epoch checkpoints
  (``<out>/checkpoints/epoch-<e>/``) and at the end (``<out>/adapter/``).

Presets: ``paper`` (the paper's hyperparameters for 8B-70B models) and ``small`` (a 135M model on a
few CPU cores, in minutes: higher learning rate, short sequences, a few hundred examples at most).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from pydantic import BaseModel, Field

from training.chat_data import Conversation


class SFTConfig(BaseModel):
    """LoRA SFT hyperparameters; the defaults are the paper's."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: list[str] | str = "all-linear"
    learning_rate: float = 1e-5
    lr_scheduler: str = "linear"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_length: int = 1024
    per_device_batch_size: int = 4
    gradient_accumulation_steps: int = 4  # effective batch 16 on one device
    epochs: float = 10.0
    save_epochs: list[float] = Field(default_factory=lambda: [0.5, 1, 1.5, 2, 4, 6, 8, 10])
    seed: int = 0
    threads: int | None = None  # torch intra-op threads on CPU; None = auto_threads()
    bf16: bool | None = None  # None: on where a GPU supports it
    max_examples: int | None = None

    @property
    def effective_batch(self) -> int:
        return self.per_device_batch_size * self.gradient_accumulation_steps


PRESETS: dict[str, SFTConfig] = {
    # The paper: Llama-3.1-8B ... 70B, 1,617 conversations, epoch 2 chosen.
    "paper": SFTConfig(),
    # SmolLM2-135M on 2 CPU cores: a learning rate 100x the paper's (LoRA on a tiny model with few steps
    # moves nothing at 1e-5), 256-token sequences, effective batch 8, 3 epochs, checkpoints each half epoch.
    # The batch of 8 runs as 4 micro-batches of 2: the same steps, a quarter of the activations held for
    # the backward pass (8.3 GB peak resident memory at 8 per pass), and less padding per pass.
    "small": SFTConfig(
        learning_rate=1e-3,
        max_length=256,
        per_device_batch_size=2,
        gradient_accumulation_steps=4,
        epochs=3,
        save_epochs=[0.5, 1, 1.5, 2, 3],
        warmup_steps=2,
        max_examples=300,
    ),
}


def auto_threads() -> int:
    """torch threads for this machine now: all cores when it is free, 1 when other work already fills it.

    On a shared, oversubscribed CPU, multi-threaded torch spends most of its time in barrier spin-waits:
    measured here at load ~10 on 2 cores, a batch of greedy generation took 107 s with 2 threads and 17 s
    with 1. ``GUARDRAIL_THREADS`` overrides the choice.
    """
    env = os.environ.get("GUARDRAIL_THREADS")
    if env:
        return max(1, int(env))
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return cores
    return 1 if load >= cores else cores


def preset(name: str, **overrides: Any) -> SFTConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown SFT preset {name!r}: use one of {sorted(PRESETS)}")
    return PRESETS[name].model_copy(update={k: v for k, v in overrides.items() if v is not None})


class Checkpoint(BaseModel):
    epoch: float
    step: int
    path: str


class TrainResult(BaseModel):
    """What a run did; written to ``<out>/train_result.json``."""

    out_dir: str
    adapter_dir: str
    checkpoints: list[Checkpoint]
    config: SFTConfig
    examples: int
    truncated_examples: int = Field(description="examples cut at max_length (never silent: counted here)")
    steps: int
    losses: list[float]
    loss_before: float | None = None
    loss_after: float | None = None
    trained_tokens: int
    train_seconds: float
    tokens_per_s: float
    est_flops_per_token: float
    achieved_gflops: float
    matmul_peak_gflops: float | None = None
    fraction_of_peak: float | None = None
    threads: int


# ---------------------------------------------------------------- tokenisation with assistant-only labels


def tokenize_conversation(tokenizer: Any, conv: Conversation, max_length: int) -> dict[str, Any]:
    """Token ids and labels (-100 except on assistant turns, end-of-turn token included).

    The assistant spans come from rendering each prefix of the conversation with the chat template and
    comparing string lengths; tokens are mapped to those character spans with the offset mapping.
    """
    full = tokenizer.apply_chat_template(conv, tokenize=False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(conv):
        if m["role"] != "assistant":
            continue
        start_text = tokenizer.apply_chat_template(conv[:i], tokenize=False, add_generation_prompt=True) if i else ""
        end_text = tokenizer.apply_chat_template(conv[: i + 1], tokenize=False)
        if not full.startswith(end_text) or not end_text.startswith(start_text):
            raise ValueError("the chat template does not render conversations prefix by prefix; cannot mask labels")
        spans.append((len(start_text), len(end_text)))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = []
    for tok, (a, _b) in zip(ids, offsets):
        labelled = any(s <= a < e for s, e in spans)
        labels.append(tok if labelled else -100)
    truncated = len(ids) > max_length
    return {"input_ids": ids[:max_length], "labels": labels[:max_length], "truncated": truncated}


def build_examples(tokenizer: Any, conversations: Sequence[Conversation], max_length: int) -> tuple[list[dict], int]:
    """Tokenised examples (those with no labelled token left after truncation are dropped) and the
    number truncated."""
    examples, truncated = [], 0
    for conv in conversations:
        ex = tokenize_conversation(tokenizer, conv, max_length)
        truncated += int(ex.pop("truncated"))
        if any(l != -100 for l in ex["labels"][1:]):
            examples.append(ex)
    return examples, truncated


class PadCollator:
    """Dynamic padding: each batch is padded (right) to its own longest example."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict[str, Any]:
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            labels[i, :n] = torch.tensor(b["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def sliced_lm_loss(model: Any, batch: dict[str, Any], reduction: str = "mean") -> tuple[Any, int]:
    """Causal-LM loss computing logits only at positions whose next token is labelled."""
    import torch.nn.functional as F

    labels = batch["labels"]
    target = labels[:, 1:]
    keep = (target != -100).any(dim=0).nonzero().squeeze(-1)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep)
    logits = out.logits  # [batch, len(keep), vocab]
    picked = target[:, keep]
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), picked.reshape(-1), ignore_index=-100, reduction="sum")
    n = int((picked != -100).sum())
    if reduction == "mean":
        loss = loss / max(n, 1)
    return loss, n


def dataset_loss(model: Any, examples: list[dict], pad_id: int, batch_size: int = 8) -> float:
    """Mean loss per assistant token over ``examples`` (no gradients)."""
    import torch

    collate = PadCollator(pad_id)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = {k: v.to(device) for k, v in collate(examples[start : start + batch_size]).items()}
            loss, n = sliced_lm_loss(model, batch, reduction="sum")
            total += float(loss)
            count += n
    model.train(was_training)
    return total / max(count, 1)


# ---------------------------------------------------------------- throughput


def measure_matmul_peak(size: int = 1024, repeats: int = 8, threads: int | None = None) -> float:
    """This machine's fp32 matmul rate in GFLOP/s (best of ``repeats``): the ceiling for training."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def flops_per_token(model: Any, labelled_fraction: float) -> float:
    """Training FLOPs per token for LoRA: forward 2N plus backward-to-inputs 2N over the transformer
    body (frozen weights get no weight gradient), and 4·d·V for the LM head on labelled positions only.
    Attention's quadratic term is left out (small at these lengths)."""
    cfg = model.config
    vocab, hidden = cfg.vocab_size, cfg.hidden_size
    total = sum(p.numel() for p in model.parameters())
    body = total - vocab * hidden * (1 if getattr(cfg, "tie_word_embeddings", False) else 2)
    return 4 * body + 4 * hidden * vocab * labelled_fraction


# ---------------------------------------------------------------- training


def step_sorted_order(lengths: Sequence[int], step_size: int, seed: int) -> list[int]:
    """A random order of the examples, each optimizer step's ``step_size`` of them sorted by length: a step
    trains on random examples as with a plain shuffle, and its micro-batches pair similar lengths, so each
    pads less (on the default reproduction's warm and cold sets, padding adds 4 and 6 % to the real tokens,
    against 11 and 15 % in random pairs). The loss is summed over the whole step's tokens
    (``num_items_in_batch``), so the order inside a step does not change the gradient."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    return [i for start in range(0, len(order), step_size)
            for i in sorted(order[start : start + step_size], key=lambda k: lengths[k])]


def _make_trainer_class() -> Any:
    import torch
    from transformers import Trainer

    class StepSortedSampler(torch.utils.data.Sampler):
        """``step_sorted_order`` with a new shuffle each epoch."""

        def __init__(self, lengths: list[int], step_size: int, seed: int) -> None:
            self.lengths, self.step_size, self.seed, self.epoch = lengths, step_size, seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self) -> int:
            return len(self.lengths)

        def __iter__(self):  # type: ignore[no-untyped-def]
            order = step_sorted_order(self.lengths, self.step_size, self.seed + self.epoch)
            self.epoch += 1  # where the trainer does not call set_epoch
            return iter(order)

    class SlicedLossTrainer(Trainer):
        """Trainer whose loss runs the LM head only on labelled positions, and counts trained tokens."""

        loss_is_scaled_for_ga = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.trained_tokens = 0
            self.labelled_tokens = 0

        def _get_train_sampler(self, train_dataset=None):  # type: ignore[override]
            data = train_dataset if train_dataset is not None else self.train_dataset
            a = self.args
            step = a.per_device_train_batch_size * a.gradient_accumulation_steps * max(1, a.world_size)
            return StepSortedSampler([len(x["input_ids"]) for x in data], step, a.seed)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[override]
            loss, n = sliced_lm_loss(model, inputs, reduction="sum")
            if model.training:
                self.trained_tokens += int(inputs["attention_mask"].sum())
                self.labelled_tokens += n
            if num_items_in_batch is not None:
                loss = loss / num_items_in_batch
                if self.args.average_tokens_across_devices:
                    loss = loss * self.accelerator.num_processes
            else:
                loss = loss / max(n, 1) / self.current_gradient_accumulation_steps
            return (loss, None) if return_outputs else loss

    return SlicedLossTrainer


def _checkpoint_callback(save_at: dict[int, float], out_dir: Path, saved: list[Checkpoint]) -> Any:
    from transformers import TrainerCallback

    class SaveAtEpochs(TrainerCallback):
        """Saves the adapter at the optimizer steps that correspond to the requested fractional epochs."""

        def on_step_end(self, args, state, control, model=None, **kwargs):  # type: ignore[override]
            epoch = save_at.get(state.global_step)
            if epoch is not None and state.is_world_process_zero:
                path = out_dir / "checkpoints" / f"epoch-{epoch:g}"
                model.save_pretrained(path)
                saved.append(Checkpoint(epoch=epoch, step=state.global_step, path=str(path)))
            return control

    return SaveAtEpochs()


def _loss_logger(losses: list[float]) -> Any:
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[override]
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    return LossLog()


RESULT_FILE = "train_result.json"  # a finished run's record; its presence makes train_lora return it as is


@contextmanager
def lora_in_place(chat: Any, lora: Any) -> Iterator[Any]:
    """The loaded chat model itself, wrapped in fresh LoRA layers to train, and given back as it was.

    A private copy of the base would hold its weights twice during training (540 MB for the embedded
    135M model, at the default reproduction's peak of memory); the base's own weights are frozen and never
    change, so the adapter layers are taken out again (not merged) and its grad flags, training mode and
    ``use_cache`` put back, even when training fails."""
    from peft import get_peft_model

    base = chat.model
    flags = {name: p.requires_grad for name, p in base.named_parameters()}
    was_training, use_cache = base.training, getattr(base.config, "use_cache", None)
    model = get_peft_model(base, lora)
    model.train()
    try:
        yield model
    finally:
        model.unload()  # the LoRA layers out, the base layers back in their place, nothing merged
        for name, p in base.named_parameters():
            p.requires_grad_(flags[name])
        base.train(was_training)
        if use_cache is not None:
            base.config.use_cache = use_cache


def train_lora(
    chat: Any,
    conversations: Sequence[Conversation],
    out_dir: str | Path,
    config: SFTConfig | None = None,
    *,
    measure_peak: bool = True,
    show_progress: bool = True,
) -> TrainResult:
    """LoRA-tune ``chat`` (a ``ChatModel``) on ``conversations``; returns and writes a ``TrainResult``.

    A finished run (``<out>/train_result.json`` present) is returned as is: delete the folder to retrain.
    """
    out_dir = Path(out_dir)
    done = out_dir / RESULT_FILE
    if done.is_file():
        return TrainResult.model_validate_json(done.read_text())
    import torch
    from peft import LoraConfig

    config = config or SFTConfig()
    threads = config.threads or auto_threads()
    if not torch.cuda.is_available():
        torch.set_num_threads(threads)
    convs = list(conversations)[: config.max_examples] if config.max_examples else list(conversations)
    if not convs:
        raise ValueError("no conversations to train on: check the data file and its format")
    tokenizer = chat.tokenizer
    examples, truncated = build_examples(tokenizer, convs, config.max_length)
    if not examples:
        raise ValueError("no example kept an assistant token after truncation: raise --max-length (SFTConfig.max_length)")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    torch.manual_seed(config.seed)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    with lora_in_place(chat, lora) as model:
        return _train(model, examples, truncated, pad_id, config, threads, out_dir, measure_peak, show_progress)


def _train(model: Any, examples: list[dict], truncated: int, pad_id: int, config: SFTConfig, threads: int,
           out_dir: Path, measure_peak: bool, show_progress: bool) -> TrainResult:
    """Train ``model`` (the chat model in LoRA layers); write its adapter, checkpoints and result."""
    import torch
    from transformers import TrainingArguments

    probe_set = examples[: min(len(examples), 16)]
    loss_before = dataset_loss(model, probe_set, pad_id)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = max(1, math.ceil(len(examples) / (config.per_device_batch_size * world * config.gradient_accumulation_steps)))
    total_steps = max(1, math.ceil(steps_per_epoch * config.epochs))
    save_at: dict[int, float] = {}
    for e in config.save_epochs:
        if e <= config.epochs:
            save_at.setdefault(max(1, min(total_steps, round(e * steps_per_epoch))), float(e))
    bf16 = config.bf16 if config.bf16 is not None else bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    args = TrainingArguments(
        output_dir=str(out_dir / "trainer"),
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_steps=total_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        seed=config.seed,
        bf16=bf16,
        disable_tqdm=not show_progress,
    )
    saved: list[Checkpoint] = []
    losses: list[float] = []
    trainer = _make_trainer_class()(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=PadCollator(pad_id),
        callbacks=[_checkpoint_callback(save_at, out_dir, saved), _loss_logger(losses)],
    )
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    adapter_dir = out_dir / "adapter"
    if trainer.is_world_process_zero():
        model.save_pretrained(adapter_dir)
    loss_after = dataset_loss(model, probe_set, pad_id)

    tokens = trainer.trained_tokens
    labelled = trainer.labelled_tokens / max(tokens, 1)
    fpt = flops_per_token(model.get_base_model(), labelled)
    achieved = tokens * fpt / max(seconds, 1e-9) / 1e9
    peak = measure_matmul_peak(threads=threads) if measure_peak and not torch.cuda.is_available() else None
    result = TrainResult(
        out_dir=str(out_dir),
        adapter_dir=str(adapter_dir),
        checkpoints=sorted(saved, key=lambda c: c.epoch),
        config=config,
        examples=len(examples),
        truncated_examples=truncated,
        steps=total_steps,
        losses=losses,
        loss_before=loss_before,
        loss_after=loss_after,
        trained_tokens=tokens,
        train_seconds=round(seconds, 2),
        tokens_per_s=round(tokens / max(seconds, 1e-9), 1),
        est_flops_per_token=fpt,
        achieved_gflops=round(achieved, 2),
        matmul_peak_gflops=round(peak, 1) if peak else None,
        fraction_of_peak=round(achieved / peak, 3) if peak else None,
        threads=threads,
    )
    if trainer.is_world_process_zero():
        (out_dir / RESULT_FILE).write_text(result.model_dump_json(indent=2))
    return result


def load_adapter_model(chat: Any, adapter_dir: str | Path, *, merge: bool = True) -> Any:
    """The chat model with a saved LoRA adapter applied, as a separate model (the cached base is left
    alone); merged into the weights by default so generation runs at the base model's speed."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} holds no peft adapter (adapter_config.json): train one first")
    model = PeftModel.from_pretrained(copy.deepcopy(chat.model), str(adapter_dir))
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return model


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m training.sft`` / ``accelerate launch -m training.sft``: train on a chat-data file."""
    import argparse

    from detectors.models import load_chat_model
    from training.chat_data import load_conversations

    p = argparse.ArgumentParser(description="LoRA SFT on a chat-data file (ShareGPT, Alpaca/LIMA or OpenAI format).")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--model", default=None, help="Hugging Face id or path (default: embedded SmolLM2)")
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    p.add_argument("--epochs", type=float)
    p.add_argument("--lr", type=float)
    p.add_argument("--max-examples", type=int)
    a = p.parse_args(argv)
    convs, report = load_conversations(a.data)
    cfg = preset(a.preset, epochs=a.epochs, learning_rate=a.lr, max_examples=a.max_examples)
    result = train_lora(load_chat_model(a.model), convs, a.out, cfg)
    print(json.dumps({"load": report.model_dump(), "result": result.model_dump()}, indent=2, default=str))


if __name__ == "__main__":
    main()
