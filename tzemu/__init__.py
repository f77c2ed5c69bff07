"""tzemu: an instruction-level emulator of the Arm secure-world stack behind Linux's
protected DMA-buf heaps.

    import tzemu
    p = tzemu.boot(abi="smc")
    p.smc(0xBF00FF01)            # OPTEE_SMC_CALLS_UID from the NS-EL1 stub
"""
from __future__ import annotations

from typing import Any

from emu.cpu import GuestFault
from emu.protection import ProtectionFault
from tzemu.platform import BootOptions, Platform, PlatformError

__all__ = ["boot", "Platform", "ProtectionFault", "GuestFault", "PlatformError", "BootOptions"]
__version__ = "0.1.0"


def boot(abi: str = "smc", **options: Any) -> Platform:
    """Build and boot a platform: EL3 monitor, secure OS, Linux model with /dev/tee0 probed.

    Options: platform_file, seed, threads, ta_dirs, record_events, extra_tas.
    """
    try:
        opts = BootOptions(abi=abi, **options)
    except TypeError as exc:
        raise PlatformError(f"unknown boot option: {exc}") from None
    return Platform(opts)
