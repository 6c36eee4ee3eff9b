"""Shared fixtures: real embedded models (loaded once per session) and the shared data folder."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from detectors.data import shared_data_dir


@pytest.fixture(scope="session")
def shared_data():
    """The ``../shared/data`` folder; tests that need it skip with the reason where it is absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared/data is absent (set GUARDRAIL_DATA to use another folder)")
    return root


def require_shared(relative: str):
    """Path of one shared data file, or skip the test naming the missing file."""
    root = shared_data_dir()
    if root is None or not (root / relative).exists():
        pytest.skip(f"shared data file {relative} is absent (../shared/data or GUARDRAIL_DATA)")
    return root / relative


@pytest.fixture(scope="session")
def chat_model():
    """The embedded SmolLM2 chat model, real weights, loaded once."""
    from detectors.models import load_chat_model

    return load_chat_model()


@pytest.fixture(scope="session")
def encoder():
    """The embedded all-MiniLM-L6-v2 sentence encoder, loaded once."""
    from detectors.models import load_encoder

    return load_encoder()
