"""The secure OS's platform hook for protected memory on a TZC-400 platform.

OP-TEE's ``plat_set_protmem_range(use_case, pa, size)`` is a no-op on QEMU; here it fences the
range for real. The Python half chooses a free region (2..8; region 1 holds secure DRAM) and the
register values; the AArch64 routine in ``plat_tzc400.S`` writes them through MMIO stores at
S-EL1, closing and reopening the filter gates around the edit. The routine runs from trusted
SRAM because no DRAM transaction passes while the gates are closed.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Mapping

from emu.asm import Program, assemble

if TYPE_CHECKING:
    from tee_os.core import SecureOS

PAGE = 0x1000


@dataclass(frozen=True)
class ProtRange:
    region: int
    use_case: int
    base: int
    size: int


class ProtmemHookError(Exception):
    """The range cannot be fenced (no free region, bad alignment, ...)."""


class TzcProtmemHook:
    def __init__(self, sos: "SecureOS", tzc_base: int, sram_base: int,
                 access: Mapping[int, tuple[tuple[int, ...], tuple[int, ...]]]):
        """``access``: use case -> (NSAIDs allowed to read, NSAIDs allowed to write)."""
        self.sos = sos
        self.c = sos.c
        self.tzc_base = tzc_base
        self.access = dict(access)
        self.ranges: dict[int, ProtRange] = {}
        src = resources.files("tee_os").joinpath("plat_tzc400.S").read_text()
        defines = {k: v for k, v in sos.abi.constants.items() if k.startswith("TZC_")}
        self.code: Program = assemble(src, sram_base, name="tee_os/plat_tzc400.S", defines=defines)
        sos.physmem.write(sram_base, self.code.code)
        sos.s_el1.invalidate_code(sram_base, self.code.end)
        self.programmed = 0

    def _attrs(self, use_case: int) -> tuple[int, int]:
        c, abi = self.c, self.sos.abi
        rd, wr = self.access.get(use_case, ((), ()))
        id_access = 0
        for nsaid in rd:
            id_access |= abi.call_macro("TZC_REGION_ACCESS_RD", nsaid)
        for nsaid in wr:
            id_access |= abi.call_macro("TZC_REGION_ACCESS_WR", nsaid)
        attrs = (c.TZC_REGION_S_RDWR << c.TZC_REGION_ATTR_SEC_SHIFT) | 1    # filter 0
        return attrs, id_access

    def _run(self, region: int, base: int, top: int, attrs: int, id_access: int) -> None:
        self.sos.call_el1(self.code.sym("plat_tzc_configure_region"),
                          self.code.sym("plat_tzc_return"),
                          [self.tzc_base, region, base, top, attrs, id_access])
        self.programmed += 1

    def set_protmem_range(self, use_case: int, pa: int, size: int) -> None:
        """Fence [pa, pa+size) for ``use_case``; MOBJ_USE_CASE_NS_SHM gives it back."""
        c = self.c
        if pa % PAGE or size % PAGE or size == 0:
            raise ProtmemHookError(f"range {pa:#x}+{size:#x} is not 4 KiB granular")
        if use_case == c.MOBJ_USE_CASE_NS_SHM:
            for region, r in list(self.ranges.items()):
                if r.base == pa and r.size == size:
                    self._run(region, 0, 0, 0, 0)
                    del self.ranges[region]
                    return
            raise ProtmemHookError(f"no protected range at {pa:#x}+{size:#x}")
        for r in self.ranges.values():
            if r.base < pa + size and pa < r.base + r.size:
                raise ProtmemHookError(f"{pa:#x}+{size:#x} overlaps protected range at {r.base:#x}")
        free = [n for n in range(c.TZC_FIRST_PROTMEM_REGION, c.TZC_NUM_REGIONS)
                if n not in self.ranges]
        if not free:
            raise ProtmemHookError("no free TZC-400 region")
        if self.sos.faults.hit("tzc.program"):
            raise ProtmemHookError("injected fault: TZC-400 region programming failed")
        region = free[0]
        attrs, id_access = self._attrs(use_case)
        self._run(region, pa, pa + size - 1, attrs, id_access)
        self.ranges[region] = ProtRange(region, use_case, pa, size)
