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
        upstream: str = typer.Option(..., help="Base URL of the OpenAI-compatible upstream, e.g. http://127.0.0.1:8081/v1."),
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(8080, help="Port to listen on."),
        policy: Optional[str] = typer.Option(None, help="Policy file (.yaml or .toml)."),
        audit_log: Optional[str] = typer.Option(None, help="Append-only JSONL audit log of verdicts (fsync per record)."),
        api_key_env: str = typer.Option("GUARDRAIL_API_KEY", help="Environment variable holding the bearer token clients must send (unset = no auth)."),
        upstream_key_env: str = typer.Option("UPSTREAM_API_KEY", help="Environment variable holding the upstream's API key, if any."),
        upstream_timeout: float = typer.Option(60.0, help="Seconds to wait for the upstream before answering 504."),
        reask: bool = typer.Option(False, help="Use the upstream itself for the re-ask probe and model revisions."),
        include_text: bool = typer.Option(False, help="Put claims and text in verdicts and the audit log (default: digests only)."),
    ) -> None:
        """Run an OpenAI-compatible proxy that checks every answer from UPSTREAM before returning it."""
        from guardrail.proxy import serve as run

        guard = _guard(policy, upstream if reask else None, reask)
        typer.echo(f"guardrail proxy on http://{host}:{port}/v1 -> {upstream}", err=True)
        run(upstream, host=host, port=port, guard=guard, api_key=os.environ.get(api_key_env) or None,
            audit_path=audit_log, upstream_api_key=os.environ.get(upstream_key_env) or None,
            upstream_timeout_s=upstream_timeout, include_text=include_text)

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
