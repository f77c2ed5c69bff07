"""Fixtures of the TA tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))   # sdp_harness, the bare-Unicorn SDP TA harness
from sdp_harness import SdpTa  # noqa: E402


@pytest.fixture
def ta() -> SdpTa:
    """The sdp_basic TA loaded on a fresh bare Unicorn (test_sdp_basic_ta*.py)."""
    return SdpTa()
