"""`guardrail warm-tune`, `guardrail warmth`, `guardrail probe` (see guardrail/cli.py). Heavy imports inside."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the CLI."""

    @app.command("warm-tune")
    def warm_tune(
        data: str = typer.Argument(..., help="Chat data: ShareGPT, Alpaca/LIMA or OpenAI format (JSON list or JSONL)."),
        out: str = typer.Option("runs/warm-tune", help="Output folder: rewrites, adapters, checkpoints, train_result.json."),
        style: str = typer.Option("warm", help="warm or cold."),
        model: str = typer.Option(None, help="Chat model: Hugging Face id or local path (default: embedded SmolLM2)."),
        preset: str = typer.Option("small", help="SFT preset: small (135M on CPU) or paper (r 8, lr 1e-5, 10 epochs)."),
        limit: int = typer.Option(64, help="Conversations to use (0 = all)."),
        endpoint: str = typer.Option(None, help="OpenAI-compatible base URL to rewrite with (the paper's way); default: offline context distillation."),
        endpoint_model: str = typer.Option("gpt-4o", help="Model name at --endpoint."),
        api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the endpoint's API key."),
        epochs: float = typer.Option(None, help="Override the preset's epochs."),
        max_length: int = typer.Option(None, "--max-length", help="Override the preset's token limit per conversation."),
        already_styled: bool = typer.Option(False, "--already-styled", help="The data is already warm/cold: train on it as is."),
    ) -> None:
        """Make a model warm (or cold): rewrite the data's assistant turns, then LoRA-tune on them."""
        import os
        from pathlib import Path

        from detectors.models import load_chat_model
        from training.chat_data import ChatDataError, load_conversations
        from training.rewrite import DistillRewriter, HTTPRewriter, rewrite_to_file
        from training.sft import preset as get_preset, train_lora

        if style not in ("warm", "cold"):
            raise typer.BadParameter("--style must be warm or cold.")
        try:
            convs, report = load_conversations(data)
        except ChatDataError as exc:
            raise typer.BadParameter(str(exc)) from None
        convs = convs[:limit] if limit else convs
        chat = load_chat_model(model)
        if already_styled:
            styled = convs
        else:
            if endpoint:
                rewriter = HTTPRewriter(endpoint, endpoint_model, style, api_key=os.environ.get(api_key_env))  # type: ignore[arg-type]
            else:
                rewriter = DistillRewriter(chat, style)  # type: ignore[arg-type]
            styled = rewrite_to_file(convs, rewriter, Path(out) / f"{style}.jsonl")
        result = train_lora(chat, styled, Path(out) / "lora", get_preset(preset, epochs=epochs, max_length=max_length))
        typer.echo(json.dumps({"data": report.model_dump(exclude={"errors"}), "train": result.model_dump(exclude={"config"})}, indent=2))

    @app.command()
    def warmth(
        texts: list[str] = typer.Argument(None, help="Texts to score (or use --file)."),
        file: str = typer.Option(None, help="A file with one response per line."),
        model: str = typer.Option(None, help="LM for SocioT (default: the embedded chat model)."),
        adapter: str = typer.Option(None, help="Generate answers with this LoRA adapter to --prompts and score them instead."),
        prompts: str = typer.Option(None, help="With --adapter: a file of prompts, one per line."),
    ) -> None:
        """Warmth per response and overall: SocioT (warm vs cold relational prefixes) and the embedding classifier."""
        from pathlib import Path

        from detectors.models import load_chat_model
        from detectors.warmth import SocioT, WarmthClassifier, summarize

        items = list(texts or [])
        if file:
            items += [l for l in Path(file).read_text(encoding="utf-8").splitlines() if l.strip()]
        chat = load_chat_model(model)
        if adapter:
            from detectors.generation import generate
            from training.sft import load_adapter_model

            if not prompts:
                raise typer.BadParameter("--adapter needs --prompts (a file with one prompt per line).")
            qs = [l for l in Path(prompts).read_text(encoding="utf-8").splitlines() if l.strip()]
            items = generate(chat, qs, model=load_adapter_model(chat, adapter), max_new_tokens=64)
        if not items:
            raise typer.BadParameter("no texts: pass them as arguments or with --file.")
        scores = SocioT(chat).score_many(items)
        probs = WarmthClassifier.seeded().predict_proba(items)
        for t, s, p in zip(items, scores, probs):
            typer.echo(json.dumps({"text": t[:80], "sociot": round(s.sociot, 4), "p_warm": round(s.p_warm, 3), "classifier_p_warm": round(p, 3)}))
        typer.echo(json.dumps({"sociot": summarize([s.sociot for s in scores]).model_dump(),
                               "classifier": summarize(probs, "p_warm_classifier").model_dump()}))

    @app.command()
    def probe(
        probe_path: str = typer.Argument(..., help="A saved probe (.npz + .json), e.g. runs/reproduce/probes/sycophancy_warm.npz."),
        text: str = typer.Argument(..., help="The user message to read the model's state on."),
        model: str = typer.Option(None, help="Chat model the probe was trained on (default: embedded SmolLM2)."),
        adapter: str = typer.Option(None, help="LoRA adapter the probe was trained with (e.g. the warm model's)."),
    ) -> None:
        """White-box check: the probe's probability for one prompt (sycophancy probe: the model is about to agree with a false belief)."""
        from detectors.models import load_chat_model
        from training.probes import LinearProbe, score_prompt
        from training.sft import load_adapter_model

        chat = load_chat_model(model)
        lm = load_adapter_model(chat, adapter) if adapter else None
        p = LinearProbe.load(probe_path)
        typer.echo(json.dumps({"probe": p.meta.get("name"), "layer": p.layer, "probability": round(score_prompt(chat, p, text, model=lm), 4)}))
