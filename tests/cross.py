"""The C TA cross compiler in tests: skip without it, unless ``TZEMU_REQUIRE_CROSS=1`` (CI sets
it in .ci/run), where a missing compiler is a failure, not a skip."""
from __future__ import annotations

import os

import pytest

from ta import toolchain


def require_cross_compiler() -> None:
    """Skip (or, in CI, fail) the calling test when aarch64-linux-gnu-gcc is not installed."""
    if toolchain.toolchain_available():
        return
    why = (f"{toolchain.cross_prefix()}gcc not found (install the Debian package "
           f"{toolchain.DEBIAN_PACKAGE})")
    if os.environ.get("TZEMU_REQUIRE_CROSS") == "1":
        pytest.fail(f"TZEMU_REQUIRE_CROSS=1 but {why}")
    pytest.skip(why)
