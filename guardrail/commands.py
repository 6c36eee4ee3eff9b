"""Subcommands registered on the `guardrail` CLI (see guardrail/cli.py): check, serve, serve-model.
Heavy code is imported inside each command. ``python -m guardrail.commands`` runs them without the rest
of the CLI (the tests use it to start servers)."""

from __future__ import annotations

import os
from typing import Optional

import typer


def _guard(policy: Optional[str], model: Optional[str], reask: bool, model_name: Optional[str] = None):
    from guardrail.guard import Guard
    from guardrail.policy import Policy

    pol = Policy.from_file(policy) if policy else Policy()
    chat = None
    if model and reask:
        if model.startswith(("http://", "https://")):
            chat = model
        else:
            from detectors.models import load_chat_model

            chat = load_chat_model(None if model == "embedded" else model)
    return Guard(model=chat, policy=pol, model_name=model_name)


def _read_items(stream, name: str) -> list[dict]:
    """Check items from one JSON object (possibly over several lines) or JSON lines; errors name the line."""
    import json

    text = stream.read()
    if not text.strip():
        raise typer.BadParameter(f"{name} is empty: give JSON objects with user_message and draft, one per line.")
    try:
        whole = json.loads(text)
        rows = [(1, whole)]
    except json.JSONDecodeError:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise typer.BadParameter(f"{name} line {n} is not JSON ({exc.msg}): one object per line.") from None
    for n, item in rows:
        if not isinstance(item, dict):
            raise typer.BadParameter(f"{name} line {n} must be a JSON object with user_message and draft.")
    return [item for _, item in rows]


def _print_verdict(v) -> None:
    typer.echo(f"action={v.action} status={v.status} risk={v.risk:.2f} sad={v.sad} crisis={v.crisis}")
    if v.status != "ok":
        typer.echo(f"  cause: {v.error or 'not given'}")
    for b in v.beliefs:
        typer.echo(f"  belief: {b.claim!r} stance={b.stance} truth={b.truth} ({b.truth_source}) risk={b.risk:.2f}")
    for reason in v.reasons:
        typer.echo(f"  reason: {reason}")
    if v.text is not None:
        typer.echo("reply to send instead:\n" + v.text)


def register(app: typer.Typer) -> None:
    """Add this package's commands to the CLI."""

    @app.command("check")
    def check(
        user_message: Optional[str] = typer.Argument(None, help="The user's message (omit both to read JSON from stdin)."),
        draft: Optional[str] = typer.Argument(None, help="The draft reply to check."),
        reference: Optional[str] = typer.Option(None, help="A known correct answer or passage (truth source 1)."),
        jsonl: Optional[str] = typer.Option(None, "--jsonl", help="Check every line of a JSONL file ('-' = stdin): "
                                            "objects with user_message, draft, and optionally history and reference; "
                                            "prints one verdict per line."),
        fail_on: str = typer.Option("", "--fail-on", help="Exit 1 when any verdict's action or status is in this "
                                    "comma-separated list, e.g. revise,block,error,timeout,unsupported_input."),
        policy: Optional[str] = typer.Option(None, help="Policy file (.yaml or .toml)."),
        model: Optional[str] = typer.Option(None, help="Model for the re-ask probe and revisions: an OpenAI-compatible base URL, 'embedded', or a local path."),
        as_json: bool = typer.Option(False, "--json", help="Print the whole verdict as JSON."),
    ) -> None:
        """Check draft replies against the user's message and print the verdicts.

        One check from the arguments; one JSON object from stdin when both are omitted
        (`echo '{"user_message": "...", "draft": "..."}' | guardrail check`); many with --jsonl. The exit code is
        0 unless --fail-on matches (1) or the input is unusable (2)."""
        import json
        import sys

        from guardrail.verdict import Verdict

        wanted = {x.strip() for x in fail_on.split(",") if x.strip()}
        unknown = wanted - {"pass", "annotate", "revise", "block", "ok", "error", "timeout", "unsupported_input"}
        if unknown:
            raise typer.BadParameter(f"--fail-on has unknown values {sorted(unknown)}: use actions "
                                     "(annotate, revise, block) or statuses (error, timeout, unsupported_input).")
        if jsonl is not None:
            if jsonl == "-":
                items = _read_items(sys.stdin, "stdin")
            else:
                with open(jsonl, encoding="utf-8") as fh:
                    items = _read_items(fh, jsonl)
        elif user_message is None and draft is None:
            if sys.stdin.isatty():
                raise typer.BadParameter("give USER_MESSAGE and DRAFT, or pipe one JSON object on stdin, or use --jsonl FILE.")
            items = _read_items(sys.stdin, "stdin")
        elif user_message is None or draft is None:
            raise typer.BadParameter("give both USER_MESSAGE and DRAFT (or neither, with JSON on stdin).")
        else:
            items = [{"user_message": user_message, "draft": draft, "reference": reference}]
        guard = _guard(policy, model, reask=True)
        verdicts: list[Verdict] = guard.check_batch(items) if items else []
        for v in verdicts:
            if jsonl is not None:
                typer.echo(v.model_dump_json())
            elif as_json:
                typer.echo(v.model_dump_json(indent=2))
            else:
                _print_verdict(v)
        if any(v.action in wanted or v.status in wanted for v in verdicts):
            raise typer.Exit(1)

    @app.command("serve")
    def serve(
        config: Optional[str] = typer.Option(None, "--config", help="Proxy config file (.yaml or .toml): upstream, server, auth, policy, audit, limits. Flags override it."),
        upstream: Optional[str] = typer.Option(None, help="Base URL of the OpenAI-compatible upstream, e.g. http://127.0.0.1:8081/v1 (put its key in UPSTREAM_API_KEY, not in the URL)."),
        host: Optional[str] = typer.Option(None, help="Interface to listen on (default 127.0.0.1)."),
        port: Optional[int] = typer.Option(None, help="Port to listen on (default 8080)."),
        policy: Optional[str] = typer.Option(None, help="Policy file (.yaml or .toml)."),
        audit_log: Optional[str] = typer.Option(None, help="Append-only JSONL audit log of verdicts (fsync per record; its HMAC key is kept beside it)."),
        api_key_env: Optional[str] = typer.Option(None, help="Environment variable holding the bearer token clients must send (default GUARDRAIL_API_KEY; unset = no auth)."),
        upstream_key_env: Optional[str] = typer.Option(None, help="Environment variable holding the upstream's API key (default UPSTREAM_API_KEY)."),
        upstream_timeout: Optional[float] = typer.Option(None, help="Total seconds for one upstream call before answering 504 (default 60)."),
        max_body_bytes: Optional[int] = typer.Option(None, help="Request body limit in bytes (413 beyond; default 2,000,000)."),
        log_level: Optional[str] = typer.Option(None, help="critical, error, warning, info (default; one JSON access-log line per request) or debug."),
        reask: bool = typer.Option(False, help="Use the upstream itself for the re-ask probe and model revisions."),
        include_text: Optional[bool] = typer.Option(None, "--include-text/--no-include-text", help="Put claims and text in verdicts and the audit log (default: digests only)."),
    ) -> None:
        """Run an OpenAI-compatible proxy that checks every answer from the upstream before returning it."""
        from pathlib import Path

        from detectors.chat_client import redact_url
        from guardrail.policy import PolicyError
        from guardrail.proxy import serve as run
        from guardrail.proxy_config import ConfigError, ProxyConfig

        try:
            cfg = ProxyConfig.load(config) if config else ProxyConfig()
            cfg = cfg.merged({
                "upstream.url": upstream, "upstream.api_key_env": upstream_key_env, "upstream.timeout_s": upstream_timeout,
                "server.host": host, "server.port": port, "server.log_level": log_level.lower() if log_level else None,
                "auth.api_key_env": api_key_env, "audit.path": audit_log, "audit.include_text": include_text,
                "limits.max_body_bytes": max_body_bytes,
                "policy": str(Path(policy).resolve()) if policy else None})
            if not cfg.upstream.url:
                raise ConfigError("no upstream: pass --upstream URL or set upstream.url in the --config file.")
            upstream_key = os.environ.get(cfg.upstream.api_key_env) or None
            base = cfg.upstream.url
            from guardrail.guard import Guard

            guard = Guard(model=base if reask else None, policy=cfg.load_policy(), api_key=upstream_key if reask else None)
        except (ConfigError, PolicyError, ValueError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2)
        typer.echo(f"guardrail proxy on http://{cfg.server.host}:{cfg.server.port}/v1 -> {redact_url(base)}", err=True)
        run(config=cfg, guard=guard, api_key=os.environ.get(cfg.auth.api_key_env) or None, upstream_api_key=upstream_key)

    @app.command("serve-model")
    def serve_model(
        model: Optional[str] = typer.Option(None, help="Hugging Face id or local path (default: the embedded SmolLM2)."),
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(8081, help="Port to listen on."),
        max_new_tokens: int = typer.Option(128, help="Upper limit on tokens generated per answer."),
    ) -> None:
        """Serve the embedded chat model as an OpenAI-compatible upstream (POST /v1/chat/completions)."""
        from guardrail.model_server import serve_model as run

        typer.echo(f"serving {model or 'embedded SmolLM2'} on http://{host}:{port}/v1", err=True)
        run(model, host=host, port=port, max_new_tokens=max_new_tokens)


if __name__ == "__main__":
    from guardrail.cli import run_cli

    _app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
    register(_app)
    run_cli(_app)
