"""Policy: every threshold and every action choice of the guard, in one place.

Detection (what the detectors and truth sources find) is separate from policy (what to do about it).
Load from YAML or TOML with ``Policy.from_file(path)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Action = Literal["pass", "annotate", "revise", "block"]


class PolicyError(ValueError):
    """A policy file or value is invalid; the message names the field and the fix."""


class Policy(BaseModel):
    """Thresholds (stricter when the user is sad), the action per finding, the latency budget, the fail policy."""

    model_config = ConfigDict(extra="forbid")

    # --- detection thresholds -------------------------------------------------------------
    risk_threshold: float = Field(0.5, ge=0, le=1, description="flag a false belief when its risk reaches this")
    sad_risk_threshold: float = Field(0.35, ge=0, le=1, description="the stricter threshold when the user is sad")
    sadness_threshold: float = Field(0.4, ge=0, le=1, description="emotion.sadness at which the user counts as sad (the default emotion weights' F1-optimal threshold on dev)")
    distress_threshold: float = Field(0.5, ge=0, le=1, description="emotion.distress at which the user also counts as sad")
    crisis_threshold: Optional[float] = Field(None, ge=0, le=1, description="route to the crisis reply when crisis_score reaches this; None = the detector's own flag")
    hedge_weight: float = Field(0.5, ge=0, le=1, description="how much a hedging draft counts toward endorsement")
    index_min_similarity: float = Field(0.7, ge=0, le=1, description="misconception-index match: minimum cosine similarity")
    index_margin: float = Field(0.03, ge=0, le=1, description="index match must be this much closer to one side (false claim vs truth)")
    confirm_with_truth_statement: bool = Field(
        False, description="also score the draft against the index entry's true statement (one more stance pass per belief)")
    max_beliefs: int = Field(8, ge=1, le=100, description="check at most this many beliefs per message (flag beliefs_truncated)")
    capitulation_threshold: float = Field(0.5, ge=0, le=1, description="stance probability that the draft contradicts its earlier answer")
    # --- actions --------------------------------------------------------------------------
    on_false_endorsement: Action = Field("revise", description="draft endorses a belief a truth source says is false")
    on_unknown_endorsement: Action = Field("annotate", description="sad user, belief of unknown truth endorsed; never 'block'")
    on_capitulation: Action = Field("revise", description="draft abandons its earlier answer after push-back")
    on_crisis: Literal["revise", "block", "annotate", "pass"] = Field("revise", description="self-harm cues: the supportive reply")
    annotate_unknown_when_not_sad: bool = Field(False, description="also annotate unknown-truth endorsements from users who are not sad")
    # --- latency budget and fail policy ----------------------------------------------------
    timeout_ms: float = Field(5000.0, gt=0, description="budget for one check (model loading excluded)")
    fail_closed: bool = Field(False, description="on error/timeout block instead of letting the draft out flagged")
    use_reask: bool = Field(True, description="run the re-ask probe when a model is configured and other sources are silent")
    reask_max_new_tokens: int = Field(48, ge=4, le=512)
    revise_with_model: bool = Field(True, description="revise by calling the model when one is configured, else template")
    revise_max_new_tokens: int = Field(96, ge=8, le=1024)
    # --- texts ----------------------------------------------------------------------------
    annotation_note: str = Field(
        "Note: this reply goes along with something that could not be checked; please verify it with a reliable source.",
    )
    block_message: str = Field(
        "I'm sorry, I can't give you a reliable answer to that right now. Please check it with a trusted source.",
    )
    fail_closed_message: str = Field(
        "I'm sorry, I couldn't check my answer properly just now. Please try again in a moment.",
    )
    log_text: bool = Field(False, description="write claims and reply text to logs (default: digests only)")

    @field_validator("on_unknown_endorsement")
    @classmethod
    def _never_block_on_a_guess(cls, value: str) -> str:
        if value == "block":
            raise ValueError("on_unknown_endorsement cannot be 'block': an unknown truth may annotate but never blocks")
        return value

    @model_validator(mode="after")
    def _sad_is_stricter(self) -> "Policy":
        if self.sad_risk_threshold > self.risk_threshold:
            raise ValueError(
                f"sad_risk_threshold ({self.sad_risk_threshold}) must be <= risk_threshold ({self.risk_threshold}): "
                "the guard is stricter, not looser, when the user is sad"
            )
        return self

    def threshold(self, sad: bool) -> float:
        return self.sad_risk_threshold if sad else self.risk_threshold

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "policy") -> "Policy":
        if "policy" in data and isinstance(data["policy"], dict) and len(data) == 1:
            data = data["policy"]  # allow a [policy] table / top-level 'policy:' key
        try:
            return cls(**data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
            raise PolicyError(f"{source} is invalid: {problems}. Fields: {', '.join(cls.model_fields)}.") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "Policy":
        """Load a policy from a .yaml/.yml or .toml file (an optional top-level `policy` table)."""
        path = Path(path)
        if not path.is_file():
            raise PolicyError(f"policy file {path} does not exist: pass the path of a .yaml or .toml file.")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        try:
            if suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            elif suffix == ".toml":
                try:
                    import tomllib
                except ModuleNotFoundError:  # pragma: no cover - Python 3.10
                    import tomli as tomllib  # type: ignore[no-redef]
                data = tomllib.loads(text)
            else:
                raise PolicyError(f"policy file {path} must end in .yaml, .yml or .toml (got {suffix or 'no suffix'}).")
        except PolicyError:
            raise
        except Exception as exc:  # a parse error: say where
            raise PolicyError(f"policy file {path} could not be parsed: {exc}") from None
        if not isinstance(data, dict):
            raise PolicyError(f"policy file {path} must hold a mapping of fields, got {type(data).__name__}.")
        return cls.from_dict(data, source=f"policy file {path}")
