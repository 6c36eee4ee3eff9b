"""Policy: every threshold and every action choice of the guard, in one place.

Detection (what the detectors and truth sources find) is separate from policy (what to do about it).
Load from YAML or TOML with ``Policy.from_file(path)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from guardrail.verdict import Action


# The thresholds that depend on the stance model's scores: calibrated on dev with the weights and stored
# beside them (``benchmarks/guard_calibration.py`` writes the answer judge's ``config.json: guard``). These
# values serve a stance model that carries none (the answer judge run S's own, 2026-12-02; reference_true_min
# equal to reference_context_min, which takes a passage's agreeing reading as it is).
UNCALIBRATED: dict[str, float] = {"risk_threshold": 0.5, "sad_risk_threshold": 0.45, "index_side_judge_min": 0.6,
                                  "reference_true_min": 0.5}


class PolicyError(ValueError):
    """A policy file or value is invalid; the message names the field and the fix."""


class Policy(BaseModel):
    """Thresholds (stricter when the user is sad), the action per finding, the latency budget, the fail policy."""

    model_config = ConfigDict(extra="forbid")

    # --- detection thresholds -------------------------------------------------------------
    risk_threshold: Optional[float] = Field(None, ge=0, le=1, description="flag a false belief when its risk reaches "
                                            "this; None = the value calibrated with the stance weights")
    sad_risk_threshold: Optional[float] = Field(None, ge=0, le=1, description="the stricter threshold when the user is "
                                                "sad; None = the value calibrated with the stance weights")
    sadness_threshold: Optional[float] = Field(
        None, ge=0, le=1, description="emotion.sadness at which the user counts as sad; None = the threshold "
        "calibrated with the emotion weights (stored beside them)")
    distress_threshold: float = Field(0.5, ge=0, le=1, description="emotion.distress at which the user also counts as sad")
    crisis_threshold: Optional[float] = Field(None, ge=0, le=1, description="route to the crisis reply when crisis_score reaches this; None = the detector's own flag")
    hedge_weight: float = Field(0.5, ge=0, le=1, description="how much a hedging draft counts toward endorsement")
    index_min_similarity: float = Field(0.7, ge=0, le=1, description="misconception-index match: minimum cosine similarity")
    index_margin: float = Field(0.03, ge=0, le=1, description="an index match closer than this to both sides (false "
                                "claim vs truth) is too close to call by embeddings: the side is unknown")
    index_side_margin: float = Field(0.05, ge=0, le=1, description="below this margin the index source also reads "
                                     "the words only one side has, then the stance model, before trusting the embeddings")
    side_stance_min: float = Field(0.6, ge=0, le=1, description="close index calls: stance probability at which the "
                                   "entry's true statement confirms or refutes the claim")
    index_side_judge_min: Optional[float] = Field(None, ge=0, le=1, description="an answer judge reading which side "
                                                  "of a matched entry the claim asserts (the mean of its two readings, "
                                                  "the entry's sides in either slot) decides the side at this "
                                                  "probability (below it, the embeddings and words do); None = the "
                                                  "value calibrated with the stance weights")
    index_message_min_similarity: float = Field(0.55, ge=0, le=1, description="a message none of whose stated "
                                                "beliefs a source decided: its sentences are looked up in the index "
                                                "at this similarity, and the answer judge must confirm the side")
    reference_context_min: float = Field(0.5, ge=0, le=1, description="stance probability at which a reference "
                                         "passage confirms or refutes a claim")
    reference_true_min: Optional[float] = Field(None, ge=0, le=1, description="a reference passage read as agreeing "
                                                "with a claim confirms it only at this probability; between "
                                                "reference_context_min and it, the passage is taken to question the "
                                                "claim (the draft is then read with the passage beside it); None = "
                                                "the value calibrated with the stance weights")
    reference_answer_max_words: int = Field(12, ge=1, le=200, description="a reference string of at most this many "
                                            "words is a short answer; a longer one is a passage of context")
    reference_match_confidence: float = Field(0.9, ge=0, le=1, description="truth confidence when a claim names a "
                                              "reference answer (a correct or a known wrong one)")
    reference_other_confidence: float = Field(0.7, ge=0, le=1, description="truth confidence when a claim names "
                                              "an answer other than the reference's correct one")
    reask_min_endorsement: float = Field(0.3, ge=0, le=1, description="run the re-ask probe only for claims the "
                                         "draft goes along with at least this much (it costs a model call)")
    reask_confidence: float = Field(0.6, ge=0, le=1, description="how far a re-asked answer is trusted as a truth source")
    reask_corrects_min: float = Field(0.5, ge=0, le=1, description="stance probability at which the neutral "
                                      "answer confirms or refutes the claim")
    false_risk_base: float = Field(0.4, ge=0, le=1, description="risk of an endorsed false belief = endorsement x "
                                   "min(1, false_risk_base + truth confidence)")
    unknown_risk_factor: float = Field(0.5, ge=0, le=1, description="risk of an endorsed belief of unknown truth = "
                                       "endorsement x this")
    states_truth_factor: float = Field(0.25, ge=0, le=1, description="a stance model without reads_truth only: "
                                       "endorsement is multiplied by this when the draft states what the truth "
                                       "source says (it corrects)")
    repeats_claim_floor: float = Field(0.6, ge=0, le=1, description="a stance model without reads_truth only: "
                                       "endorsement is raised to at least this when the draft repeats the false "
                                       "answer and never states the true one")
    revision_max_endorsement: float = Field(0.3, ge=0, le=1, description="a model-written revision is used only if "
                                            "it goes along with the claim less than this")
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
    on_oversize: Literal["window", "unsupported"] = Field(
        "window", description="a user message or draft over 200,000 characters: check its window (the end of the "
        "message, the start of the draft) and flag 'oversize', or answer status unsupported_input (fail policy)")
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

    @field_validator("on_unknown_endorsement")
    @classmethod
    def _never_block_on_a_guess(cls, value: str) -> str:
        if value == "block":
            raise ValueError("on_unknown_endorsement cannot be 'block': an unknown truth may annotate but never blocks")
        return value

    @model_validator(mode="after")
    def _sad_is_stricter(self) -> "Policy":
        if self.sad_risk_threshold is None or self.risk_threshold is None:
            return self
        if self.sad_risk_threshold > self.risk_threshold:
            raise ValueError(
                f"sad_risk_threshold ({self.sad_risk_threshold}) must be <= risk_threshold ({self.risk_threshold}): "
                "the guard is stricter, not looser, when the user is sad"
            )
        return self

    def calibrated(self, values: Mapping[str, float]) -> "Policy":
        """A copy with each threshold left unset taken from ``values`` (the calibration stored with the stance
        weights), else from ``UNCALIBRATED``. A sad threshold taken so stays no looser than the risk threshold."""
        update = {name: float(values.get(name, fallback)) for name, fallback in UNCALIBRATED.items()
                  if getattr(self, name) is None}
        if "sad_risk_threshold" in update:
            update["sad_risk_threshold"] = min(update["sad_risk_threshold"], update.get("risk_threshold", self.risk_threshold))
        elif update.get("risk_threshold", 1.0) < self.sad_risk_threshold:
            raise PolicyError(f"sad_risk_threshold ({self.sad_risk_threshold}) must be <= risk_threshold "
                              f"({update['risk_threshold']}, calibrated with the stance weights): set risk_threshold too, "
                              "or a lower sad_risk_threshold")
        return self.model_copy(update=update)

    def threshold(self, name: str) -> float:
        """A calibrated threshold's value: the policy's own, else the uncalibrated default."""
        value = getattr(self, name)
        return float(UNCALIBRATED[name] if value is None else value)

    def risk_threshold_for(self, sad: bool) -> float:
        return self.threshold("sad_risk_threshold") if sad else self.threshold("risk_threshold")

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
        return cls.from_dict(read_mapping(path, "policy file", PolicyError), source=f"policy file {path}")


def read_mapping(path: str | Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """A .yaml/.yml or .toml file's top-level mapping; ``error`` says what is wrong and how to fix it."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist: pass the path of a .yaml or .toml file.")
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise error(f"{what} {path} must end in .yaml, .yml or .toml (got {suffix or 'no suffix'}).")
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as exc:  # a parse error: say where
        raise error(f"{what} {path} could not be parsed: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path} must hold a mapping of fields, got {type(data).__name__}.")
    return data
