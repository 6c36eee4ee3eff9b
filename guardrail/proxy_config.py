"""One configuration for ``guardrail serve``: a YAML (or TOML) file, with command-line flags overriding it.

```yaml
upstream:
  url: http://127.0.0.1:8081/v1        # credentials belong in api_key_env, not in the URL
  api_key_env: UPSTREAM_API_KEY
  timeout_s: 60                        # total deadline of one upstream call -> 504
  retries: 1                           # connection retries; 429/502/503/504 retried once if Retry-After is short
server: {host: 127.0.0.1, port: 8080, log_level: info}
auth: {api_key_env: GUARDRAIL_API_KEY} # unset variable = no auth
policy: policy.yaml                    # a path (relative to this file) or the policy's fields inline
audit: {path: runs/audit.jsonl, include_text: false}
limits: {max_body_bytes: 2000000, max_response_bytes: 8000000, max_json_depth: 64, max_text_chars: 200000}
```
Secrets are never in the file itself: it names the environment variables that hold them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors.text import MAX_CHARS

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class ConfigError(ValueError):
    """The proxy configuration is invalid; the message names the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpstreamConfig(_Strict):
    url: Optional[str] = Field(None, description="base URL of the OpenAI-compatible upstream (root, /v1 or full URL)")
    api_key_env: str = Field("UPSTREAM_API_KEY", description="environment variable holding the upstream's API key")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="total deadline of one upstream call (then 504)")
    retries: int = Field(1, ge=0, le=5, description="connection retries and short-Retry-After status retries")
    ready_timeout_s: float = Field(2.0, gt=0, le=60, description="deadline of /readyz's GET /v1/models")


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    log_level: LogLevel = "info"
    access_log: bool = Field(True, description="one JSON line per request on stderr (never raw text)")
    batch_window_ms: float = Field(0.0, ge=0, le=100, description="wait this long to micro-batch concurrent checks")


class AuthConfig(_Strict):
    api_key_env: str = Field("GUARDRAIL_API_KEY", description="environment variable holding the clients' bearer token")


class AuditConfig(_Strict):
    path: Optional[str] = Field(None, description="append-only JSONL log; its HMAC key is kept beside it as <path>.key")
    include_text: bool = Field(False, description="put raw text and claims in verdicts and the log")


class LimitsConfig(_Strict):
    max_body_bytes: int = Field(2_000_000, ge=1_024, le=100_000_000, description="request body limit (then 413)")
    max_response_bytes: int = Field(8_000_000, ge=1_024, le=500_000_000, description="upstream body limit (then 502)")
    max_json_depth: int = Field(64, ge=4, le=512, description="deepest JSON nesting accepted (then 400)")
    max_text_chars: int = Field(MAX_CHARS, ge=1, le=MAX_CHARS,
                                description="longest user turn or draft the proxy lets through unchecked-free: "
                                            "longer user text answers 413, a longer upstream draft 502")
    max_items: int = Field(64, ge=1, le=1024, description="most drafts (choices + tool calls) checked per answer (then 502)")


class ProxyConfig(_Strict):
    """Everything ``guardrail serve`` needs; ``load`` reads a file, ``merged`` applies flags."""

    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    policy: Union[None, str, dict[str, Any]] = Field(None, description="policy file path or inline policy fields")
    audit: AuditConfig = Field(default_factory=AuditConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    base_dir: Optional[str] = Field(None, exclude=True, description="folder of the config file (resolves policy paths)")

    @classmethod
    def load(cls, path: str | Path) -> "ProxyConfig":
        """Read a .yaml/.yml or .toml config file."""
        from guardrail.policy import read_mapping

        path = Path(path)
        data = read_mapping(path, "config file", ConfigError)
        return cls.from_dict(data, source=str(path), base_dir=str(path.parent))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config", base_dir: Optional[str] = None) -> "ProxyConfig":
        try:
            config = cls(**data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:8])
            raise ConfigError(f"{source} is invalid: {problems}.") from None
        config.base_dir = base_dir
        return config

    def merged(self, overrides: dict[str, Any]) -> "ProxyConfig":
        """A copy with ``{"section.field": value}`` overrides applied; None values are ignored (flag not given)."""
        data = self.model_dump()
        for dotted, value in overrides.items():
            if value is None:
                continue
            if "." in dotted:
                section, name = dotted.split(".", 1)
                data[section][name] = value
            else:
                data[dotted] = value
        return ProxyConfig.from_dict(data, source="command-line flags", base_dir=self.base_dir)

    def load_policy(self) -> Any:
        """The ``Policy`` this config names (default policy when none)."""
        from guardrail.policy import Policy

        if self.policy is None:
            return Policy()
        if isinstance(self.policy, dict):
            return Policy.from_dict(self.policy, source="config policy")
        path = Path(self.policy)
        if not path.is_absolute() and self.base_dir:
            path = Path(self.base_dir) / path
        return Policy.from_file(path)
