"""The guard's access to a chat model (for the re-ask probe and model-written revisions).

One interface over the three ways to give the guard a model: a callable(messages) -> str, an
OpenAI-compatible base URL (through the one shared chat client), or a local ``detectors.models.ChatModel``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

Messages = list[dict[str, str]]


class ModelClient:
    """``complete(conversations, max_new_tokens, timeout_s)`` -> one reply per conversation."""

    def __init__(self, model: Any, *, model_name: str | None = None, api_key: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.model = model
        self.model_name = model_name
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.kind = self._kind(model)
        self._client: Any = None  # one HTTP client (and its connections) for every call

    @staticmethod
    def _kind(model: Any) -> str:
        if isinstance(model, str):
            if not model.startswith(("http://", "https://")):
                raise TypeError(f"model string must be an http(s) base URL of an OpenAI-compatible server, got {model!r}.")
            return "url"
        if hasattr(model, "model") and hasattr(model, "tokenizer"):
            return "local"
        if callable(model):
            return "callable"
        raise TypeError(
            f"model must be a callable(messages) -> str, an OpenAI-compatible base URL, or a ChatModel, "
            f"got {type(model).__name__}."
        )

    def complete(self, conversations: Sequence[Messages], max_new_tokens: int = 64,
                 timeout_s: Optional[float] = None) -> list[str]:
        """One reply per conversation (greedy for a local model). ``timeout_s`` bounds an HTTP call by the
        time left in the check's budget."""
        if not conversations:
            return []
        if self.kind == "local":
            from detectors.generation import generate

            return generate(self.model, [list(c) for c in conversations], max_new_tokens=max_new_tokens)
        if self.kind == "callable":
            out = []
            for conv in conversations:
                reply = self.model(list(conv))
                if not isinstance(reply, str):
                    raise TypeError(f"the model callable must return a str, got {type(reply).__name__}.")
                out.append(reply)
            return out
        return self._post_all(conversations, max_new_tokens, timeout_s)

    def _post_all(self, conversations: Sequence[Messages], max_new_tokens: int, timeout_s: Optional[float]) -> list[str]:
        import time

        from detectors.chat_client import ChatClient

        if self._client is None:
            self._client = ChatClient(self.model, api_key=self.api_key, model=self.model_name, timeout_s=self.timeout_s,
                                      retries=0)
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        return [self._client.text(list(conv), timeout_s=max(0.05, deadline - time.monotonic()), max_tokens=max_new_tokens,
                                  temperature=0) for conv in conversations]
