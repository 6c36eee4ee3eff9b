"""The runtime an application imports: Guard, Verdict, Policy, truth sources, wrappers, proxy, CLI.

Importing this package is cheap: torch and transformers load only when a check first needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"
