"""`guardrail reproduce`: the paper's experiment end to end on one model, plus what the paper lacked.

Stages (each writes ``<out>/stages/<name>.json`` when finished; a rerun skips finished stages):

1. ``data``       warm and cold SFT sets by context distillation (``training.rewrite``) from LIMA
2. ``baseline``   the benchmark on the original model
3. ``warm_tune``  LoRA SFT on the warm set; warmth (SocioT + classifier) per checkpoint; plateau chosen
4. ``bench_warm`` the benchmark on the warm model (chosen checkpoint)
5. ``cold_tune``  LoRA SFT on the cold set (same sizes), warmth per checkpoint
6. ``bench_cold`` the benchmark on the cold model
7. ``guard``      the warm model's answers through the guard (re-ask probe uses the warm model)
8. ``probes``     hidden-state probes (sadness, coming sycophantic flip) by layer, original vs warm;
                  steering the warm model against the sycophancy direction, flip rate re-measured
9. ``report``     ``REPORT.md`` + ``reproduce.json`` + PNGs, beside the benchmark's own report

Sizes: ``SIZES["default"]`` (fits about 20 minutes on 2 CPU cores), ``"tiny"`` (the test suite),
``"full"`` (the paper's: its preset, 1,617 conversations' worth of data, every context, 500 questions).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from training.sft import PRESETS, SFTConfig


class ReproduceSize(BaseModel):
    """Everything that sets how big a reproduction is."""

    train_examples: int
    distill_max_new_tokens: int
    max_user_chars: int
    sft: SFTConfig
    questions: int | None  # benchmark questions per task (None = all)
    tasks: list[str] = ["embedded"]  # benchmark tasks: the paper's four under "full"
    contexts: list[str]
    templates: list[str]
    bench_max_new_tokens: int
    warmth_prompts: int
    warmth_max_new_tokens: int
    steering_strength: float = 1.0


SIZES: dict[str, ReproduceSize] = {
    "default": ReproduceSize(
        train_examples=48,
        distill_max_new_tokens=64,
        max_user_chars=300,
        sft=PRESETS["small"].model_copy(update={"epochs": 2.0, "save_epochs": [0.5, 1.0, 1.5, 2.0], "max_examples": None}),
        questions=40,
        contexts=["unmodified", "emotion:sad"],
        templates=["original", "incorrect"],
        bench_max_new_tokens=48,  # room for a warm opening before the answer
        warmth_prompts=12,
        warmth_max_new_tokens=48,
    ),
    "tiny": ReproduceSize(
        train_examples=8,
        distill_max_new_tokens=24,
        max_user_chars=200,
        sft=PRESETS["small"].model_copy(update={"epochs": 1.0, "save_epochs": [0.5, 1.0], "max_length": 96,
                                                "per_device_batch_size": 4, "gradient_accumulation_steps": 1,
                                                "max_examples": None, "warmup_steps": 0}),
        questions=4,
        contexts=["unmodified", "emotion:sad"],
        templates=["original", "incorrect"],
        bench_max_new_tokens=16,
        warmth_prompts=3,
        warmth_max_new_tokens=16,
    ),
    "full": ReproduceSize(
        train_examples=1617,
        distill_max_new_tokens=512,
        max_user_chars=100_000,
        sft=PRESETS["paper"],
        questions=None,
        contexts=["unmodified", "emotion:sad", "emotion:happy", "emotion:anger", "relation:close",
                  "relation:hierarchical_up", "relation:hierarchical_down", "stake:high", "stake:low"],
        templates=["original", "original_neutral", "incorrect", "correct", "mcq"],
        tasks=["triviaqa", "truthfulqa", "medqa", "disinfo"],
        bench_max_new_tokens=256,
        warmth_prompts=100,
        warmth_max_new_tokens=256,
    ),
}

STAGES = ("data", "baseline", "warm_tune", "bench_warm", "cold_tune", "bench_cold", "guard", "probes", "report")

# The paper's averages over its 20 model x task cells (PAPER.md), for the side-by-side.
PAPER_FIGURES = {
    "false belief, error % original -> warm": (23.6, 32.2),
    "false belief + sadness, error % original -> warm": (24.3, 39.0),
    "sadness context, warm - original (AME, pp)": 11.9,
    "overall, warm - original (AME, pp)": 7.43,
}


class ReproduceConfig(BaseModel):
    model: str | None = None
    size: str = "default"
    seed: int = 0
    data: str | None = None  # chat-data file; default: LIMA from the shared data


def _choose_plateau(points: list[tuple[float, float]], fraction: float = 0.9) -> float:
    """The first checkpoint whose warmth reaches ``fraction`` of the way from the lowest to the highest
    (the paper chose epoch 2, where warmth plateaued)."""
    if not points:
        raise ValueError("no checkpoints to choose from")
    values = [w for _, w in points]
    lo, hi = min(values), max(values)
    for epoch, w in points:
        if w >= lo + fraction * (hi - lo):
            return epoch
    return points[-1][0]


class Reproduction:
    """State shared by the stages; ``run()`` executes the missing ones in order."""

    def __init__(self, out: str | Path = "runs/reproduce", config: ReproduceConfig | None = None,
                 log: Callable[[str], None] = print, show_progress: bool = True) -> None:
        self.out = Path(out)
        self.config = config or ReproduceConfig()
        if self.config.size not in SIZES:
            raise ValueError(f"unknown size {self.config.size!r}: use one of {sorted(SIZES)}")
        self.size = SIZES[self.config.size]
        self.log = log
        self.show_progress = show_progress
        self.bench_dir = self.out / "bench"
        self._chat: Any = None
        self._lms: dict[str, Any] = {}  # at most one tuned model at a time (``lm``)
        self._forwards: Any = None  # counts the chat model's forward positions (detectors.throughput)
        self.peak_gflops: float | None = None  # this machine's fp32 matmul rate, measured in ``run``
        self._check_config()

    # ------------------------------------------------------------ plumbing
    def _check_config(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "config.json"
        current = {"config": self.config.model_dump(), "size": self.size.model_dump()}
        if path.exists():
            saved = json.loads(path.read_text())
            if saved != json.loads(json.dumps(current)):
                raise ValueError(f"{self.out} holds a reproduction with another configuration ({path}): "
                                 "use another --out, or delete that folder to start over.")
        else:
            path.write_text(json.dumps(current, indent=2))

    def stage_path(self, name: str) -> Path:
        return self.out / "stages" / f"{name}.json"

    def finished(self, name: str) -> dict | None:
        path = self.stage_path(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def _mark(self, name: str, result: dict, seconds: float, throughput: dict | None = None) -> dict:
        path = self.stage_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        result = {"stage": name, "seconds": round(seconds, 1), **({"throughput": throughput} if throughput else {}), **result}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str))
        tmp.replace(path)
        return result

    @property
    def chat(self) -> Any:
        if self._chat is None:
            from detectors.models import load_chat_model
            from detectors.throughput import count_forwards

            self._chat = load_chat_model(self.config.model)
            self._forwards = count_forwards(self._chat.model)
        return self._chat

    def lm(self, which: str) -> Any:
        """The original (None), or the warm/cold model with its chosen adapter merged, kept for the stage
        that asked for it (``run`` drops it after each stage, so two tuned copies are never held)."""
        if which == "original":
            return None
        if which not in self._lms:
            from training.sft import load_adapter_model

            tune = self.finished(f"{which}_tune")
            if tune is None:
                raise RuntimeError(f"the {which}_tune stage has not finished")
            self._lms[which] = load_adapter_model(self.chat, tune["chosen_adapter"])
        return self._lms[which]

    def target(self, which: str) -> Any:
        from benchmarks.targets import LocalTarget

        return LocalTarget(chat=self.chat, lm=self.lm(which), label=which,
                           max_new_tokens=self.size.bench_max_new_tokens, seed=self.config.seed)

    def bench(self, which: str, guard: Any = None, label: str | None = None) -> Path:
        from benchmarks.runner import run_benchmark

        target = self.target(which)
        if label:
            target.label = label
        return run_benchmark(target, tasks=tuple(self.size.tasks), templates=tuple(self.size.templates),
                             contexts=tuple(self.size.contexts), n=self.size.questions, seed=self.config.seed,
                             out=self.bench_dir, guard=guard, progress=self.show_progress)

    # ------------------------------------------------------------ stages
    def stage_data(self) -> dict:
        from detectors.data import shared_file
        from training.chat_data import load_conversations, single_turn
        from training.rewrite import DistillRewriter, rewrite_to_file

        source = Path(self.config.data) if self.config.data else shared_file("sft_chat/lima.json")
        convs, report = load_conversations(source, skip_invalid=True)
        if self.config.size == "full":  # whole conversations (up to 20 turns), as the paper
            pool = [[m for m in c if m["role"] != "system"] for c in convs]
        else:
            pool = single_turn(convs, max_chars=self.size.max_user_chars)
        n_train = min(self.size.train_examples, len(pool) - self.size.warmth_prompts)
        if n_train < 1:
            raise ValueError(f"{source} has {len(pool)} usable conversations, too few for training plus "
                             f"{self.size.warmth_prompts} warmth prompts: pass a bigger --data file or a smaller size")
        if n_train < self.size.train_examples:
            self.log(f"  {source} gives {n_train} training conversations (the size asks {self.size.train_examples}): using all")
        train = pool[:n_train]
        held_out = [next(m["content"] for m in c if m["role"] == "user") for c in pool[n_train : n_train + self.size.warmth_prompts]]
        counts = {}
        for style in ("warm", "cold"):
            rw = DistillRewriter(self.chat, style, max_new_tokens=self.size.distill_max_new_tokens)  # type: ignore[arg-type]
            done = rewrite_to_file(train, rw, self.out / "data" / f"{style}.jsonl", show_progress=self.show_progress)
            counts[style] = len(done)
        (self.out / "data" / "warmth_prompts.json").write_text(json.dumps(held_out, indent=2))
        return {"source": str(source), "loaded": report.conversations, "single_turn_pool": len(pool),
                "train_examples": counts, "warmth_prompts": len(held_out),
                "how": "context distillation: the model's own answers under a warm/cold persona system prompt"}

    def _warmth_of(self, lm: Any, prompts: list[str]) -> dict:
        from detectors.generation import generate
        from detectors.warmth import SocioT, summarize

        answers = generate(self.chat, prompts, model=lm, max_new_tokens=self.size.warmth_max_new_tokens)
        scores = SocioT(self.chat).score_many([a if a.strip() else "(no answer)" for a in answers])
        clf = self._warmth_classifier()
        probs = clf.predict_proba([a if a.strip() else "(no answer)" for a in answers])
        return {"sociot": summarize([s.sociot for s in scores]).model_dump(),
                "classifier": summarize(probs, "p_warm_classifier").model_dump(),
                "examples": answers[:2]}

    def _warmth_classifier(self) -> Any:
        """Embedding classifier trained on this run's own warm vs cold distilled targets."""
        from detectors.warmth import WarmthClassifier
        from training.rewrite import load_rewrites, styled_pairs

        if not hasattr(self, "_clf"):
            warm = styled_pairs(load_rewrites(self.out / "data" / "warm.jsonl"))
            cold = styled_pairs(load_rewrites(self.out / "data" / "cold.jsonl"))
            self._clf = WarmthClassifier().fit(warm, cold, trained_on=f"this run's distilled data ({len(warm)} warm, {len(cold)} cold)")
            self._clf.save(self.out / "warmth_classifier.npz")
        return self._clf

    def stage_tune(self, style: str) -> dict:
        from training.rewrite import load_rewrites
        from training.sft import load_adapter_model, train_lora

        convs = load_rewrites(self.out / "data" / f"{style}.jsonl")
        # The threads chosen when the run started: deciding again from the load average would count this
        # run's own load and drop to 1 thread for training and every stage after it.
        import torch

        sft = self.size.sft.model_copy(update={"threads": self.size.sft.threads or torch.get_num_threads()})
        result = train_lora(self.chat, convs, self.out / style, sft, show_progress=self.show_progress)
        prompts = json.loads((self.out / "data" / "warmth_prompts.json").read_text())
        base = self.finished("original_warmth") or self._mark("original_warmth", self._warmth_of(None, prompts), 0)
        per_checkpoint = []
        for ck in result.checkpoints:
            lm = load_adapter_model(self.chat, ck.path)
            w = self._warmth_of(lm, prompts)
            per_checkpoint.append({"epoch": ck.epoch, "path": ck.path, **w})
            self.log(f"  {style} epoch {ck.epoch:g}: SocioT {w['sociot']['mean']:+.4f}, classifier P(warm) {w['classifier']['mean']:.2f}")
            del lm
        sign = 1 if style == "warm" else -1  # cold: the plateau of coldness
        chosen = _choose_plateau([(p["epoch"], sign * p["sociot"]["mean"]) for p in per_checkpoint])
        path = next(p["path"] for p in per_checkpoint if p["epoch"] == chosen)
        return {"train": result.model_dump(exclude={"config"}), "original_warmth": {k: base[k] for k in ("sociot", "classifier")},
                "checkpoints": per_checkpoint, "chosen_epoch": chosen, "chosen_adapter": path}

    def stage_bench(self, which: str) -> dict:
        from benchmarks.stats import summarize

        self.bench(which)
        s = summarize(self.bench_dir, target=which)
        return {"cells": s["cells"], "flips": s["flips"]}

    def stage_guard(self) -> dict:
        from benchmarks.stats import summarize
        from detectors.models import ChatModel
        from benchmarks.runner import EVALUATION_TIMEOUT_MS
        from guardrail import Guard, Policy

        # The guard's re-ask probe and its revisions ask the warm model itself, batched across a check_batch.
        warm = ChatModel(model=self.lm("warm"), tokenizer=self.chat.tokenizer, source="warm")
        self.bench("warm", guard=Guard(model=warm, policy=Policy(timeout_ms=EVALUATION_TIMEOUT_MS)))
        s = summarize(self.bench_dir, target="warm")
        from benchmarks.runner import load_records

        statuses: dict[str, int] = {}
        for r in load_records(self.bench_dir, "warm"):
            statuses[r.guard_status or "none"] = statuses.get(r.guard_status or "none", 0) + 1
        return {"cells": s["cells"], "guarded_flips": s.get("guarded_flips", []), "guard_actions": s.get("guard_actions", {}),
                "guard_catch": (s.get("guard_catch") or {}).get("warm"),
                "guard_statuses": statuses}

    def stage_probes(self) -> dict:
        import numpy as np

        from benchmarks.runner import load_records
        from training.probes import LinearProbe, collect_hidden_states, plot_curves, probe_by_layer, steer

        probe_dir = self.out / "probes"
        probe_dir.mkdir(parents=True, exist_ok=True)
        curves, result = [], {"curves": [], "saved": {}}
        for which in ("original", "warm"):
            recs = [r for r in load_records(self.bench_dir, which)]
            prompts = sorted({r.prompt for r in recs})
            index = {p: i for i, p in enumerate(prompts)}
            cache = probe_dir / f"hidden_{which}.npy"
            if cache.exists():
                hidden = np.load(cache)
            else:
                hidden = collect_hidden_states(self.chat, prompts, model=self.lm(which), show_progress=self.show_progress)
                np.save(cache, hidden)
            by_prompt_ctx = {r.prompt: r.context for r in recs}
            sad_y = [int(by_prompt_ctx[p] == "emotion:sad") for p in prompts]
            syc = [r for r in recs if r.template == "incorrect" and r.correct is not None]
            syc_h = hidden[[index[r.prompt] for r in syc]]
            syc_y = [int(not r.correct) for r in syc]
            for name, h, y in (("sadness", hidden, sad_y), ("sycophancy", syc_h, syc_y)):
                curve = probe_by_layer(h, y, name=name, model=which, seed=self.config.seed)
                curves.append(curve)
                result["curves"].append(curve.model_dump())
                if 0 < sum(y) < len(y) and min(sum(y), len(y) - sum(y)) >= 2:
                    probe = LinearProbe.fit(h, y, curve.best_layer, meta={"name": name, "model": which,
                                            "labels": "emotion:sad vs other contexts" if name == "sadness" else
                                            "incorrect-template answer scored wrong (endorsed the false belief)"})
                    result["saved"][f"{name}_{which}"] = str(probe.save(probe_dir / f"{name}_{which}"))
        plot_curves(curves, self.out / "probe_auroc_by_layer.png", "probe AUROC by layer: original vs warm")
        # steering: push the warm model away from its own sycophancy direction, re-run the benchmark
        steer_info: dict[str, Any] = {"done": False}
        saved = result["saved"].get("sycophancy_warm")
        if saved:
            probe = LinearProbe.load(saved)
            warm = self.lm("warm")
            with steer(warm, probe.layer, probe.direction, strength=self.size.steering_strength):
                self.bench("warm", label="warm+steer")
            from benchmarks.stats import summarize

            s = summarize(self.bench_dir, target="warm+steer")
            steer_info = {"done": True, "layer": probe.layer, "strength": self.size.steering_strength,
                          "direction": "mean(hidden | endorsed) - mean(hidden | corrected), subtracted at every position",
                          "flips": s["flips"], "cells": s["cells"]}
        else:
            steer_info["why_not"] = "too few sycophantic (or too few non-sycophantic) warm answers to fit a direction"
        result["steering"] = steer_info
        return result

    def stage_report(self) -> dict:
        from benchmarks.report import write_report
        from benchmarks.stats import compare

        bench_report = write_report([self.bench_dir], self.out / "bench_report", baseline="original", seed=self.config.seed)
        comparisons = {}
        for other in ("warm", "cold"):
            try:
                comparisons[other] = compare(f"{self.bench_dir}::original", f"{self.bench_dir}::{other}", seed=self.config.seed)
            except Exception as exc:  # reported, not hidden
                comparisons[other] = {"error": f"{type(exc).__name__}: {exc}"}
        stages = {name: self.finished(name) for name in STAGES if name != "report"}
        summary = {"config": self.config.model_dump(), "size": self.size.model_dump(), "stages": stages,
                   "comparisons": comparisons, "paper": PAPER_FIGURES,
                   "bench_report": str(self.out / "bench_report" / "report.md"),
                   "plots": {"probes": "probe_auroc_by_layer.png",
                             **{k: f"bench_report/{v}" for k, v in bench_report.get("plots", {}).items()}}}
        summary["stage_seconds"] = {k: (v or {}).get("seconds") for k, v in stages.items()}
        summary["stage_throughput"] = {k: (v or {}).get("throughput") for k, v in stages.items()}
        summary["machine"] = machine_line(self.peak_gflops)
        self._plot_warmth(stages)
        (self.out / "reproduce.json").write_text(json.dumps(summary, indent=2, default=str))
        (self.out / "REPORT.md").write_text(render_report(summary))
        return {"report": str(self.out / "REPORT.md")}

    def _plot_warmth(self, stages: dict) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for style in ("warm", "cold"):
            st = stages.get(f"{style}_tune") or {}
            pts = st.get("checkpoints") or []
            if pts:
                ax.plot([0] + [p["epoch"] for p in pts], [st["original_warmth"]["sociot"]["mean"]] + [p["sociot"]["mean"] for p in pts],
                        marker="o", label=f"{style} (chosen: epoch {st['chosen_epoch']:g})")
        ax.set_xlabel("epoch (0 = original)")
        ax.set_ylabel("SocioT (nats/token)")
        ax.set_title("warmth per checkpoint")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(self.out / "warmth_by_checkpoint.png", dpi=110)
        plt.close(fig)

    # ------------------------------------------------------------ driver
    def run(self, stages: tuple[str, ...] = STAGES) -> dict:
        import torch

        from detectors.throughput import ForwardCount
        from training.sft import auto_threads

        if not torch.cuda.is_available():
            from training.sft import measure_matmul_peak

            threads = auto_threads()
            torch.set_num_threads(threads)
            self.peak_gflops = round(measure_matmul_peak(threads=threads), 1)
            self.log(f"{machine_line(self.peak_gflops)} Load average {os.getloadavg()[0]:.1f}.")
        runners: dict[str, Callable[[], dict]] = {
            "data": self.stage_data, "baseline": lambda: self.stage_bench("original"),
            "warm_tune": lambda: self.stage_tune("warm"), "bench_warm": lambda: self.stage_bench("warm"),
            "cold_tune": lambda: self.stage_tune("cold"), "bench_cold": lambda: self.stage_bench("cold"),
            "guard": self.stage_guard, "probes": self.stage_probes, "report": self.stage_report,
        }
        results = {}
        for i, name in enumerate(stages, 1):
            done = self.finished(name)
            if done is not None and name != "report":
                self.log(f"[{i}/{len(stages)}] {name}: finished earlier ({done['seconds']} s), skipped")
                results[name] = done
                continue
            self.log(f"[{i}/{len(stages)}] {name} ...")
            before = self._forwards.snapshot() if self._forwards else ForwardCount()  # counting starts at load
            t0 = time.perf_counter()
            out = runners[name]()
            seconds = time.perf_counter() - t0
            results[name] = self._mark(name, out, seconds, self._throughput(before, seconds))
            self._lms.clear()  # the next stage loads the tuned model it needs, so two are never held
            release_memory()
            self.log(f"[{i}/{len(stages)}] {name}: done in {results[name]['seconds']} s"
                     + _rate_line(results[name].get("throughput") or {}))
        return results

    def _throughput(self, before: Any, seconds: float) -> dict | None:
        """The chat model's forward work in a stage: positions/s, padding share, GFLOP/s beside the matmul
        peak measured again right after the stage (on a shared machine the peak itself moves about 2x)."""
        if self._forwards is None:  # the stage never loaded the chat model
            return None
        from detectors.throughput import forward_flops_per_position, stage_throughput
        from training.sft import measure_matmul_peak

        peak = round(measure_matmul_peak(), 1) if self.peak_gflops else None
        out = stage_throughput(self._forwards.since(before), seconds, forward_flops_per_position(self.chat.model), peak)
        return {**out, "matmul_peak_gflops": peak}


def _rate_line(rate: dict) -> str:
    if not rate.get("positions"):
        return ""
    peak = (f"{_pct(rate['fraction_of_peak'])} % of a {rate['matmul_peak_gflops']} GFLOP/s matmul peak, "
            if rate.get("fraction_of_peak") is not None else "")
    return (f"; {rate['positions_per_s']} forward positions/s ({rate['forward_gflops']} GFLOP/s, {peak}"
            f"{rate['padded_share']:.0%} padding)")


def machine_line(peak_gflops: float | None) -> str:
    """The CPU beside the figures: its vector extensions, torch's kernels and the measured matmul peak."""
    import torch

    from benchmarks.machine import cpu_flags

    peak = f"; fp32 matmul peak {peak_gflops} GFLOP/s" if peak_gflops else ""
    return (f"Machine: {os.cpu_count()} cores, CPU flags {cpu_flags()}; torch kernels "
            f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads{peak}.")


def release_memory() -> None:
    """Collect dropped models and hand freed heap back to the system, so one stage's peak is not carried
    into the next (glibc keeps freed memory in its arenas otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


# ---------------------------------------------------------------- the Markdown report


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _cell(cells: list[dict], template: str, context: str, guarded: bool = False, task: str = "embedded") -> str:
    c = next((c for c in cells if c["task"] == task and c["template"] == template and c["context"] == context), None)
    if c is None:
        return "n/a"
    if guarded:
        if c.get("guarded_error_rate") is None:
            return "n/a"
        return f"{_pct(c['guarded_error_rate'])} [{_pct(c['guarded_ci_low'])}, {_pct(c['guarded_ci_high'])}]"
    return f"{_pct(c['error_rate'])} [{_pct(c['ci_low'])}, {_pct(c['ci_high'])}] (n={c['n_scored']})"


def _flip(flips: list[dict], context: str) -> str:
    f = next((f for f in flips if f["task"] == "all" and f["context"] == context), None)
    if f is None or f.get("flip_rate") is None:
        return "n/a"
    return f"{_pct(f['flip_rate'])} [{_pct(f['ci_low'])}, {_pct(f['ci_high'])}] ({f['flips']}/{f['n_base_correct']})"


PAPER_SETUP = {"models": "Llama-3.1-8B/70B, Mistral-Small, Qwen-2.5-32B, GPT-4o",
               "tasks": ["triviaqa", "truthfulqa", "medqa", "disinfo"],
               "data": "1,617 ShareGPT conversations, each assistant turn rewritten warm by GPT-4o",
               "templates": ["original", "original_neutral", "incorrect", "correct", "mcq"], "contexts": 9,
               "questions": "500 TriviaQA, 500 TruthfulQA, ~500 MedQA, 125 Disinfo",
               "judge": "GPT-4o grading each answer"}


def departures(s: dict) -> list[str]:
    """How this run's settings differ from the paper's (listed at the top of the report)."""
    size, cfg = s["size"], s["config"]
    out = []
    out.append(f"model: `{cfg['model'] or 'embedded SmolLM2-135M-Instruct'}` (the paper: {PAPER_SETUP['models']})")
    tasks = size.get("tasks") or ["embedded"]
    if sorted(tasks) != sorted(PAPER_SETUP["tasks"]):
        out.append(f"tasks: {', '.join(tasks)} (the paper: {', '.join(PAPER_SETUP['tasks'])})")
    if size.get("questions") is not None:
        out.append(f"questions: {size['questions']} per task (the paper: {PAPER_SETUP['questions']})")
    if len(size["contexts"]) < PAPER_SETUP["contexts"]:
        out.append(f"contexts: {', '.join(size['contexts'])} (the paper: all {PAPER_SETUP['contexts']})")
    missing = [t for t in PAPER_SETUP["templates"] if t not in size["templates"]]
    if missing:
        out.append(f"templates: {', '.join(size['templates'])} (the paper also ran {', '.join(missing)})")
    out.append(f"warm data: {size['train_examples']} conversations made warm by context distillation from the model "
               f"itself (the paper: {PAPER_SETUP['data']})")
    out.append(f"answers: greedy, {size['bench_max_new_tokens']} new tokens; judged by the project's scorer "
               f"(the answer judge, detectors/judge.py) (the paper: {PAPER_SETUP['judge']})")
    if "medqa" in tasks:
        count = "all 1,273 items" if size.get("questions") is None else f"{size['questions']} items"
        out.append(f"MedQA: {count} of the 4-option USMLE test set, rewritten by rules (the paper: about 500 of a "
                   "5-option version, rewritten by a model)")
    return out


def render_report(s: dict) -> str:
    st = s["stages"]
    size = s["size"]
    lines = ["# Reproduction: warm fine-tuning, accuracy and sycophancy", "",
             "## Departures from the paper", ""] + [f"- {d}" for d in departures(s)] + ["",
             f"Model: `{s['config']['model'] or 'embedded SmolLM2-135M-Instruct'}`; size preset `{s['config']['size']}`: "
             f"{size['train_examples']} warm and {size['train_examples']} cold training examples (context distillation), "
             f"LoRA r={size['sft']['lora_r']}, lr={size['sft']['learning_rate']}, {size['sft']['epochs']:g} epochs; "
             f"benchmark: {size['questions'] or 'all'} questions of {', '.join(size.get('tasks') or ['embedded'])} x templates {size['templates']} x "
             f"contexts {size['contexts']}, greedy, {size['bench_max_new_tokens']} new tokens. Intervals: 95 % bootstrap.", "",
             "## Stage wall times", "", s.get("machine") or "", "",
             "Forward work is the chat model's: token positions run (padding included), GFLOP/s at 2 FLOPs per "
             "body weight per position, and that rate as a share of the fp32 matmul peak measured right after the "
             "stage (given beside it: on a shared machine it moves). The tune stages "
             "count their training forwards only (the backward pass roughly doubles the work; see the LoRA lines "
             "below); the other stages' remaining time is the ONNX encoders, the answer judge and Python.", "",
             "| stage | seconds | forward positions/s | padding | GFLOP/s | share of peak (peak GFLOP/s) |", "|---|---|---|---|---|---|"]
    for name, sec in s["stage_seconds"].items():
        t = (s.get("stage_throughput") or {}).get(name) or {}
        work = (f"{t['positions_per_s']} | {100 * t['padded_share']:.0f} % | {t['forward_gflops']} | "
                f"{_pct(t.get('fraction_of_peak'))} %" + (f" ({t['matmul_peak_gflops']})" if t.get("matmul_peak_gflops") else "")
                if t.get("positions") else "| | |")
        lines.append(f"| {name} | {sec if sec is not None else 'not run'} | {work} |")
    lines += ["", "## Warmth before and after (held-out instructions)", "",
              "| model | SocioT (nats/token) | classifier P(warm) | chosen checkpoint |", "|---|---|---|---|"]
    wt = st.get("warm_tune") or {}
    if wt:
        o = wt["original_warmth"]
        lines.append(f"| original | {o['sociot']['mean']:+.4f} [{o['sociot']['ci_low']:+.4f}, {o['sociot']['ci_high']:+.4f}] | "
                     f"{o['classifier']['mean']:.2f} [{o['classifier']['ci_low']:.2f}, {o['classifier']['ci_high']:.2f}] | |")
    for style in ("warm", "cold"):
        t = st.get(f"{style}_tune") or {}
        p = next((p for p in t.get("checkpoints", []) if p["epoch"] == t.get("chosen_epoch")), None)
        if p:
            lines.append(f"| {style} | {p['sociot']['mean']:+.4f} [{p['sociot']['ci_low']:+.4f}, {p['sociot']['ci_high']:+.4f}] | "
                         f"{p['classifier']['mean']:.2f} [{p['classifier']['ci_low']:.2f}, {p['classifier']['ci_high']:.2f}] | epoch {t['chosen_epoch']:g} |")
    lines += ["", "Per checkpoint: `warmth_by_checkpoint.png`; the chosen checkpoint is the first that reaches 90 % of "
              "the way from the lowest to the highest SocioT (the paper's 'where warmth plateaus').", ""]
    for style in ("warm", "cold"):
        t = (st.get(f"{style}_tune") or {}).get("train")
        if t:
            frac = f", {100 * t['fraction_of_peak']:.1f} % of the measured matmul peak ({t['matmul_peak_gflops']} GFLOP/s)" if t.get("fraction_of_peak") else ""
            lines.append(f"- {style} LoRA: {t['steps']} steps, loss {t['loss_before']:.3f} -> {t['loss_after']:.3f}, "
                         f"{t['tokens_per_s']} tokens/s{frac}, {t['train_seconds']} s.")
    lines += ["", "## Error % by context", "", "n/a: not run (the paper ran mcq and original_neutral without a context only).", "",
              "| task | model | template | " + " | ".join(size["contexts"]) + " |", "|---|---|---|" + "---|" * len(size["contexts"])]
    rows = [("original", "baseline", False), ("warm", "bench_warm", False), ("cold", "bench_cold", False), ("warm+guard", "guard", True)]
    for task in size.get("tasks") or ["embedded"]:
        for label, stage, guarded in rows:
            cells = (st.get(stage) or {}).get("cells") or []
            cells = [c for c in cells if c.get("target", label.split("+")[0]) == label.split("+")[0]]
            for tpl in size["templates"]:
                lines.append(f"| {task} | {label} | {tpl} | "
                             + " | ".join(_cell(cells, tpl, ctx, guarded, task) for ctx in size["contexts"]) + " |")
    g = st.get("guard") or {}
    if g:
        actions = (g.get("guard_actions") or {}).get("warm", {})
        lines += ["", f"Guard actions on the warm model's answers: {actions}; statuses: {g.get('guard_statuses')}."]
        catch = g.get("guard_catch") or {}
        if catch.get("n"):
            lines.append(f"Of the warm model's `incorrect`-template answers that the judge says assert the user's false "
                         f"answer, the guard flagged {catch['flagged']}/{catch['n']} ({100 * catch['share']:.0f}%).")
        if actions and set(actions) == {"error"}:
            lines.append("**The guard failed on every answer** (see the statuses): the warm+guard rows equal the warm rows, "
                         "since a failing guard passes the draft through (fail-open by design).")
    lines += ["", "## Sycophantic flip rate by context (correct on `original`, wrong on `incorrect`)", "",
              "| model | " + " | ".join(size["contexts"]) + " |", "|---|" + "---|" * len(size["contexts"])]
    pr = st.get("probes") or {}
    flip_rows = [("original", (st.get("baseline") or {}).get("flips")), ("warm", (st.get("bench_warm") or {}).get("flips")),
                 ("cold", (st.get("bench_cold") or {}).get("flips")), ("warm+guard", (st.get("guard") or {}).get("guarded_flips")),
                 ("warm+steer", (pr.get("steering") or {}).get("flips"))]
    for label, flips in flip_rows:
        if flips:
            lines.append(f"| {label} | " + " | ".join(_flip(flips, ctx) for ctx in size["contexts"]) + " |")
    lines += ["", "## Warm vs original, and cold vs original (paired, logistic-regression AME)", ""]
    for other, cmp in s["comparisons"].items():
        ame = (cmp or {}).get("ame") or {}
        if "ame_pp" in ame:
            lines.append(f"- {other} - original: {ame['ame_pp']:+.2f} pp [{ame['ci_low_pp']:+.2f}, {ame['ci_high_pp']:+.2f}] (n={ame['n']})"
                         + (f"; warning: {ame['warning']}" if ame.get("warning") else ""))
        else:
            lines.append(f"- {other} - original: not available ({ame.get('error') or cmp.get('error')})")
        by_ctx = (cmp or {}).get("ame_by_context") or {}
        for ctx, a in (by_ctx.items() if isinstance(by_ctx, dict) else []):
            if isinstance(a, dict) and "ame_pp" in a:
                lines.append(f"  - {ctx}: {a['ame_pp']:+.2f} pp [{a['ci_low_pp']:+.2f}, {a['ci_high_pp']:+.2f}]")
    lines += ["", "The paper (PAPER.md, averages over 5 models x 4 tasks):", ""]
    for k, v in s["paper"].items():
        lines.append(f"- {k}: {v[0]} -> {v[1]}" if isinstance(v, tuple | list) else f"- {k}: {v:+}")
    lines += ["", f"Per-cell paper numbers beside ours: `{Path(s['bench_report']).name}` in `bench_report/`.", "",
              "## Inside the model: probes", "", "| probe | model | n (positives) | best layer | AUROC | accuracy (chance) |", "|---|---|---|---|---|---|"]
    for c in pr.get("curves", []):
        best = next((l for l in c["layers"] if l["layer"] == c["best_layer"]), None)
        if best:
            lines.append(f"| {c['name']} | {c['model']} | {c['n']} ({c['positives']}) | {c['best_layer']} | {best['auroc']:.2f} | "
                         f"{best['accuracy']:.2f} ({c['chance_accuracy']:.2f}) |")
    lines += ["", "Curves: `probe_auroc_by_layer.png` (5-fold cross-validated; best layer chosen on the same folds, so "
              "the best AUROC is optimistic).", ""]
    steer_info = pr.get("steering") or {}
    if steer_info.get("done"):
        lines.append(f"Steering: the warm model's sycophancy direction subtracted at layer {steer_info['layer']} "
                     f"(strength {steer_info['strength']}); flip rates are in the `warm+steer` row above.")
    elif pr:
        lines.append(f"Steering not run: {steer_info.get('why_not')}.")
    lines += ["", "## Reading this honestly", "",
              "Sizes here are small; intervals are wide. A difference whose interval includes 0 is not evidence either way, "
              "and a null or reversed result on a 135M model trained for minutes is reported as it came out.", ""]
    return "\n".join(lines)
