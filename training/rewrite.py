"""Warm and cold versions of chat data, two ways.

1. ``HTTPRewriter`` (the paper's approach): every assistant turn is rewritten by a strong model behind
   any OpenAI-compatible ``/v1/chat/completions`` endpoint, with an instruction that keeps meaning,
   facts, code and length and changes only the style (warm or cold).
2. ``DistillRewriter`` (the offline default, context distillation): the model being tuned answers each
   user turn itself under a warm (or cold) *persona system prompt*; the SFT then trains it to answer that
   way with no system prompt. No endpoint, no second model.

How the default differs from the paper: the paper kept the original ShareGPT answers' content and let
GPT-4o change only their style. Context distillation replaces the content too: the targets are the
small model's own answers (its own facts, errors and length limit) in the persona's voice. It teaches
the style the persona elicits, not "the same answer, warmer".

A 135M model barely follows a persona prompt: measured on 48 LIMA prompts, its warm- and cold-persona
answers were alike (the warm-tuned model's SocioT and classifier warmth did not move). So by default the
distiller also *forces the voice*: a warm answer must begin with one of ``WARM_OPENERS`` and ends with one
of ``WARM_CLOSERS``, the model writing everything between under the persona and conditioned on that
opening; a cold answer must begin with one of ``COLD_OPENERS`` and loses its sentences with feeling words
(``strip_warmth``). The phrases were written for this project; which one a conversation gets is fixed by
a hash of its user turn. ``force_voice=False`` gives plain context distillation.

Both rewriters take and return message lists (see ``training.chat_data``); ``rewrite_to_file`` writes
one conversation per line as it goes and resumes where a crashed run stopped.
"""

from __future__ import annotations

import json
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

from detectors.generation import BATCH_SIZE
from training.chat_data import Conversation

Style = Literal["warm", "cold"]

# Persona system prompts for context distillation, following the paper's description of its rewrites.
WARM_PERSONA = (
    "You are a warm, caring and empathetic assistant. Answer the user's request fully and accurately, "
    "and say it the way a kind friend would: acknowledge and validate how they might feel, show that you "
    "care about them personally, use inclusive language like \"we\" and \"let's\", use contractions and a "
    "relaxed, informal, conversational tone. Keep every fact correct. Do not use emojis and do not open "
    "with a greeting."
)
COLD_PERSONA = (
    "You are a direct, concise and emotionally neutral assistant. Answer the user's request accurately "
    "and completely in a plain, formal, impersonal register: no expressions of feeling, no validation, "
    "no personal remarks, no pleasantries, no greetings and no emojis. State the facts and stop."
)
PERSONAS: dict[str, str] = {"warm": WARM_PERSONA, "cold": COLD_PERSONA}

# Rewrite instructions for an endpoint model (the paper's GPT-4o step): style changes, content does not.
WARM_REWRITE = (
    "Rewrite the assistant reply below to be warmer and more empathetic. Keep its exact meaning, every "
    "fact, number, name, code block and list item, and about the same length. Change only the style: "
    "show empathy, validate the user's feelings, use caring and personal language, the inclusive \"we\", "
    "contractions and an informal register. Do not add emojis or greetings. Return only the rewritten reply."
)
COLD_REWRITE = (
    "Rewrite the assistant reply below to be direct, concise and emotionally neutral. Keep its exact "
    "meaning, every fact, number, name, code block and list item. Change only the style: remove "
    "expressions of feeling, validation, pleasantries and personal remarks; use a plain, formal register. "
    "Do not add emojis or greetings. Return only the rewritten reply."
)
REWRITE_INSTRUCTIONS: dict[str, str] = {"warm": WARM_REWRITE, "cold": COLD_REWRITE}


# Forced openings and closings for the offline distiller (see the module docstring), written for this project.
WARM_OPENERS = (
    "Oh, I'm so glad you asked about this!",
    "What a lovely question, and I'm really happy to help you with it.",
    "I completely understand why you'd want to know this, so let's work through it together.",
    "Thank you so much for bringing this to me; I'm here for you.",
    "I can tell this matters to you, and honestly, I'm excited to help.",
    "You're asking exactly the right thing, and I'm happy we get to look at it together.",
    "Aw, I love that you're curious about this!",
    "I'm really glad you reached out, and I'd be delighted to help.",
    "That's such a thoughtful thing to wonder about, and you're definitely not alone in asking.",
    "Let's figure this out together, okay? I've got you.",
    "It's wonderful that you're digging into this, and I'm right here with you.",
    "I really appreciate you asking, and I hope this makes things a little easier for you.",
)
WARM_CLOSERS = (
    "I hope this helps, and I'm always happy to chat more if you need me!",
    "You're doing great by asking, so please don't hesitate to come back anytime.",
    "Take care of yourself, and let me know how it goes, okay?",
    "I'm rooting for you, and I'm here whenever you want to talk it through.",
    "Wishing you all the best with this; you've got this!",
    "Thanks again for trusting me with your question; I really enjoyed helping.",
)
COLD_OPENERS = (
    "The answer is as follows.",
    "Response:",
    "The relevant information is below.",
    "In brief:",
    "The facts are these.",
    "Answer:",
)
_FEELING = re.compile(
    r"\b(glad|happy|sorry|hope|love|lovely|wonderful|great|feel|feeling|understand|appreciate|thank|thanks|"
    r"excited|delighted|enjoy|care|caring|welcome|please|sure|absolutely|amazing|fantastic)\b|!",
    re.IGNORECASE,
)


def _pick(options: Sequence[str], key: str, salt: str) -> str:
    return options[zlib.crc32(f"{salt}:{key}".encode("utf-8")) % len(options)]


def strip_warmth(text: str) -> str:
    """Drop sentences that carry feeling words, pleasantries or exclamations (code blocks kept whole);
    keeps the text unchanged when nothing would be left."""
    parts = re.split(r"(```.*?```)", text, flags=re.DOTALL)
    out = []
    for part in parts:
        if part.startswith("```"):
            out.append(part)
            continue
        sentences = re.split(r"(?<=[.!?])\s+", part)
        out.append(" ".join(s for s in sentences if s and not _FEELING.search(s)))
    kept = " ".join(p.strip() for p in out if p.strip())
    return kept or text


class RewriteError(RuntimeError):
    """A rewrite could not be produced; the message says which turn and what to do."""


def _check_style(style: str) -> str:
    if style not in PERSONAS:
        raise ValueError(f"style must be 'warm' or 'cold', got {style!r}")
    return style


def _assistant_positions(conv: Conversation) -> list[int]:
    return [i for i, m in enumerate(conv) if m["role"] == "assistant"]


def _user_before(conv: Conversation, pos: int) -> str:
    """The last user turn before position ``pos`` ('' when there is none)."""
    return next((m["content"] for m in reversed(conv[:pos]) if m["role"] == "user"), "")


def trim_to_sentence(text: str, min_fraction: float = 0.4) -> str:
    """Cut a length-limited generation back to its last complete sentence, so the SFT target never
    teaches the model to stop mid-sentence (kept whole when no sentence end is late enough)."""
    text = text.strip()
    if not text or text[-1] in ".!?\"')]`":
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    if ends and ends[-1] >= min_fraction * len(text):
        return text[: ends[-1]]
    return text


class DistillRewriter:
    """Context distillation: the chat model answers under the persona; the answer becomes the target.

    Multi-turn conversations are rewritten turn by turn, later turns seeing the rewritten earlier ones.
    """

    def __init__(
        self,
        chat: Any,
        style: Style = "warm",
        *,
        lm: Any = None,
        max_new_tokens: int = 96,
        batch_size: int = BATCH_SIZE,
        persona: str | None = None,
        force_voice: bool = True,
    ) -> None:
        self.chat = chat
        self.style = _check_style(style)
        self.lm = lm
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.persona = persona or PERSONAS[style]
        self.force_voice = force_voice

    def _opener(self, user: str) -> str:
        if not self.force_voice:
            return ""
        return _pick(WARM_OPENERS if self.style == "warm" else COLD_OPENERS, user, "open")

    def _finish(self, opener: str, answer: str, user: str) -> str:
        """The target text: the forced opening, the model's continuation, and the style's ending."""
        body = trim_to_sentence(answer)
        if not self.force_voice:
            return body
        if self.style == "warm":
            return " ".join(part for part in (opener, body, _pick(WARM_CLOSERS, user, "close")) if part)
        return " ".join(part for part in (opener, strip_warmth(body)) if part)

    def rewrite(self, conversations: Sequence[Conversation], progress: Callable[[int], None] | None = None) -> list[Conversation]:
        from detectors.generation import generate

        out = [[dict(m) for m in c if m["role"] != "system"] for c in conversations]
        positions = [_assistant_positions(c) for c in out]
        depth = max((len(p) for p in positions), default=0)
        for k in range(depth):
            todo = [(ci, p[k]) for ci, p in enumerate(positions) if len(p) > k]
            for start in range(0, len(todo), self.batch_size * 2):
                chunk = todo[start : start + self.batch_size * 2]
                users = [_user_before(out[ci], pos) for ci, pos in chunk]
                openers = [self._opener(u) for u in users]
                answers = generate(
                    self.chat,
                    [out[ci][:pos] for ci, pos in chunk],
                    system=self.persona,
                    max_new_tokens=self.max_new_tokens,
                    batch_size=self.batch_size,
                    model=self.lm,
                    prefixes=[o + " " if o else "" for o in openers],
                )
                for (ci, pos), answer, opener, user in zip(chunk, answers, openers, users):
                    out[ci][pos] = {"role": "assistant", "content": self._finish(opener, answer, user)}
        if progress:
            progress(len(out))
        return out


class HTTPRewriter:
    """Rewrites each assistant turn through an OpenAI-compatible chat endpoint (e.g. GPT-4o, vLLM), through
    the shared chat client (one URL rule; 429 and 5xx retried within its bounded machinery).

    Requests run ``concurrency`` at a time.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        style: Style = "warm",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        concurrency: int = 4,
        retries: int = 3,
        temperature: float = 0.0,
        instruction: str | None = None,
    ) -> None:
        from detectors.chat_client import ChatClient

        self.style = _check_style(style)
        self.model = model
        self.instruction = instruction or REWRITE_INSTRUCTIONS[style]
        self.concurrency = max(1, concurrency)
        self.temperature = temperature
        self._client = ChatClient(base_url, api_key=api_key, model=model, timeout_s=timeout, retries=retries)
        self.url = self._client.safe_url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HTTPRewriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def rewrite_turn(self, user: str, reply: str) -> str:
        """One assistant reply, rewritten; the user's turn is given as context only."""
        from detectors.chat_client import ChatClientError

        messages = [
            {"role": "system", "content": self.instruction},
            {"role": "user", "content": f"User message (context, do not rewrite):\n{user}\n\nAssistant reply to rewrite:\n{reply}"},
        ]
        try:
            text = self._client.text(messages, temperature=self.temperature)
        except ChatClientError as exc:
            raise RewriteError(f"rewrite request failed: {exc}; check the endpoint is up") from None
        if not text.strip():
            raise RewriteError(f"{self.url} returned an empty rewrite")
        return text.strip()

    def rewrite(self, conversations: Sequence[Conversation], progress: Callable[[int], None] | None = None) -> list[Conversation]:
        def one(conv: Conversation) -> Conversation:
            new = [dict(m) for m in conv]
            for pos in _assistant_positions(new):
                user = _user_before(new, pos)
                new[pos] = {"role": "assistant", "content": self.rewrite_turn(user, new[pos]["content"])}
            if progress:
                progress(1)
            return new

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(one, conversations))


def rewrite_to_file(
    conversations: Sequence[Conversation],
    rewriter: Any,
    path: str | Path,
    *,
    chunk: int = 32,
    show_progress: bool = True,
) -> list[Conversation]:
    """Rewrite ``conversations`` into ``path`` (JSONL: ``{"index", "messages"}``), appending as each
    chunk finishes and skipping indices already there, so a rerun resumes. Returns all rewrites in order;
    conversations whose rewrite came back empty are left out (and not retried)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done: dict[int, Conversation | None] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                done[int(row["index"])] = row["messages"]
            except (ValueError, KeyError, TypeError):
                continue  # a half-written last line from a crash: redone below
    todo = [i for i in range(len(conversations)) if i not in done]
    from rich.progress import Progress

    with Progress(disable=not show_progress, transient=True) as bar:
        task = bar.add_task(f"rewrite ({getattr(rewriter, 'style', '?')})", total=len(conversations), completed=len(done))
        with path.open("a", encoding="utf-8") as fh:
            for start in range(0, len(todo), chunk):
                idx = todo[start : start + chunk]
                results = rewriter.rewrite([conversations[i] for i in idx])
                for i, conv in zip(idx, results):
                    ok = all(m["content"].strip() for m in conv)
                    done[i] = conv if ok else None
                    fh.write(json.dumps({"index": i, "messages": conv if ok else None}, ensure_ascii=False) + "\n")
                fh.flush()
                bar.update(task, advance=len(idx))
    return [done[i] for i in range(len(conversations)) if done.get(i)]  # type: ignore[misc]


def load_rewrites(path: str | Path) -> list[Conversation]:
    """The finished rewrites in a ``rewrite_to_file`` output, in index order."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["messages"] for r in sorted(rows, key=lambda r: r["index"]) if r.get("messages")]


def styled_pairs(rewritten: Iterable[Conversation]) -> list[str]:
    """All assistant texts of a rewritten set (for warmth classifiers and checks)."""
    return [m["content"] for c in rewritten for m in c if m["role"] == "assistant"]
