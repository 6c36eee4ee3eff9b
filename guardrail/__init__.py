"""The runtime an application imports: Guard, Verdict, Policy, truth sources, wrappers, proxy, CLI.

Importing this package is cheap: torch and transformers load only when a check first needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Guard": ("guardrail.guard", "Guard"),
    "Detectors": ("guardrail.guard", "Detectors"),
    "GuardInputError": ("guardrail.inputs", "GuardInputError"),
    "Verdict": ("guardrail.verdict", "Verdict"),
    "BeliefFinding": ("guardrail.verdict", "BeliefFinding"),
    "Policy": ("guardrail.policy", "Policy"),
    "PolicyError": ("guardrail.policy", "PolicyError"),
    "MisconceptionIndex": ("guardrail.misconceptions", "MisconceptionIndex"),
    "MisconceptionEntry": ("guardrail.misconceptions", "MisconceptionEntry"),
    "Reference": ("guardrail.reference", "Reference"),
    "TruthSource": ("guardrail.truth", "TruthSource"),
    "TruthResult": ("guardrail.truth", "TruthResult"),
    "TruthQuery": ("guardrail.truth", "TruthQuery"),
    "decide": ("guardrail.decide", "decide"),
    "Finding": ("guardrail.decide", "Finding"),
    "guard_openai": ("guardrail.wrappers", "guard_openai"),
    "AuditLog": ("guardrail.audit", "AuditLog"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    """Import the public names on first use, so `import guardrail` stays free of heavy libraries."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'guardrail' has no attribute {name!r}")
