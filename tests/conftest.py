"""Shared fixtures: booted platforms (module-scoped where tests only read state)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import tzemu

sys.path.insert(0, str(Path(__file__).parent))   # shared helpers (smc_helpers)


@pytest.fixture
def platform():
    """A freshly booted platform with event recording on."""
    return tzemu.boot(abi="smc", record_events=100_000)


@pytest.fixture(scope="module")
def shared_platform():
    """One booted platform for tests that leave no state behind."""
    return tzemu.boot(abi="smc", record_events=100_000)
