"""Fixtures of the secure-OS tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))   # ffa_world, the FF-A conformance harness
from ffa_world import World  # noqa: E402


@pytest.fixture
def w() -> World:
    """A fresh SPMC with an in-memory normal world (test_ffa_conformance*.py)."""
    return World()
