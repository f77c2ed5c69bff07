"""Protected memory in the secure OS: static carveouts and ranges lent by the normal world.

Every protected range is a secure, SDP memory object: TAs flagged SECURE_DATA_PATH may receive
memrefs to it (mapped as secure memory), the normal world can never touch it (the platform hook
fences it in the TZC-400), and it is scrubbed to zero before it is given back.

Lending follows validate, commit, revert: every check of ``validate_lend`` is pure and leaves
no state; the commit programs the firewall and records the object; a firewall failure
reverts nothing because nothing was recorded yet.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tee_os.mobj import PAGE, Mobj, contiguous_mobj
from tee_os.plat_protmem import ProtmemHookError

if TYPE_CHECKING:
    from tee_os.core import SecureOS


class ProtmemError(Exception):
    """A protected-memory request is refused; ``code_name`` is the TEE_ERROR_* to return."""

    def __init__(self, code_name: str, message: str):
        super().__init__(message)
        self.code_name = code_name


@dataclass
class ProtRegion:
    use_case: int
    base: int
    size: int
    mobj: Mobj
    cookie: int | None = None        # lent ranges: the normal world's name for the chunk
    static: bool = False
    releasing: bool = False
    ffa: bool = False                # lent with FFA_MEM_LEND (cookie = the FF-A handle)
    assigned: bool = False           # FF-A: ASSIGN_PROTMEM done, not yet RELEASE_PROTMEM

    def contains(self, pa: int, size: int) -> bool:
        return self.base <= pa and pa + size <= self.base + self.size

    def overlaps(self, pa: int, size: int) -> bool:
        return pa < self.base + self.size and self.base < pa + size


class ProtmemManager:
    def __init__(self, sos: "SecureOS", *, mode: str | None, use_cases: dict[int, int],
                 carveouts: dict[int, tuple[int, int]]):
        """``use_cases``: use case -> minimum pool size (plat_get_protmem_config);
        ``carveouts``: use case -> (base, size) of its static carveout."""
        self.sos = sos
        self.c = sos.c
        self.mode = mode
        self.use_cases = dict(use_cases)
        self.carveouts = dict(carveouts)
        self.regions: list[ProtRegion] = []
        self.scrubbed_bytes = 0

    # --- boot: static carveouts ---------------------------------------------------------------
    def setup_static(self) -> None:
        """Fence every static carveout at boot and register it as SDP memory."""
        for use_case, (base, size) in sorted(self.carveouts.items()):
            self._fence(use_case, base, size)
            mobj = contiguous_mobj("protmem_static", base, size, secure=True)
            mobj.extra["use_case"] = use_case
            self.regions.append(ProtRegion(use_case, base, size, mobj, static=True))

    def _fence(self, use_case: int, base: int, size: int) -> None:
        hook = self.sos.protmem_hook
        if hook is None:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS", "no platform firewall to fence with")
        try:
            hook.set_protmem_range(use_case, base, size)
        except ProtmemHookError as exc:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS", f"firewall: {exc}") from None

    # --- lookups ---------------------------------------------------------------------------------
    def find(self, pa: int, size: int) -> ProtRegion | None:
        """The protected range that contains [pa, pa+size) entirely."""
        for r in self.regions:
            if r.contains(pa, max(size, 1)):
                return r
        return None

    def overlapping(self, pa: int, size: int) -> ProtRegion | None:
        for r in self.regions:
            if r.overlaps(pa, max(size, 1)):
                return r
        return None

    def by_cookie(self, cookie: int) -> ProtRegion | None:
        for r in self.regions:
            if r.cookie == cookie and not r.static:
                return r
        return None

    def static_config(self, use_case: int) -> tuple[int, int] | None:
        return self.carveouts.get(use_case)

    # --- GET_PROTMEM_CONFIG (plat_get_protmem_config) --------------------------------------------
    def config(self, use_case: int) -> tuple[int, int]:
        """(minimum size, alignment) for a use case the platform supports dynamically."""
        if self.mode != "dynamic" or use_case not in self.use_cases:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS", f"use case {use_case} not supported")
        return self.use_cases[use_case], PAGE

    # --- LEND_PROTMEM ----------------------------------------------------------------------------
    def validate_lend(self, use_case: int, pa: int, size: int) -> None:
        """Pure checks, in OP-TEE's order; raises ProtmemError (BAD_PARAMETERS) naming the rule."""
        sos = self.sos
        if self.mode != "dynamic":
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS", "dynamic protected memory not configured")
        if use_case not in self.use_cases:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS", f"use case {use_case} cannot be lent")
        if size == 0 or not sos.ns_ddr_range(pa, size):
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS",
                               f"{pa:#x}+{size:#x} is not entirely normal-world DDR")
        if sos.shm.overlaps(pa, size):
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS",
                               f"{pa:#x}+{size:#x} overlaps registered shared memory")
        if pa % PAGE or size % PAGE:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS", f"{pa:#x}+{size:#x} not 4 KiB aligned")
        other = self.overlapping(pa, size)
        if other is not None:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS",
                               f"{pa:#x}+{size:#x} overlaps protected range {other.base:#x}")

    def lend(self, use_case: int, pa: int, size: int, cookie: int) -> ProtRegion:
        self.validate_lend(use_case, pa, size)
        if self.by_cookie(cookie) is not None or self.sos.shm.lookup(cookie) is not None:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS", f"cookie {cookie:#x} already in use")
        self._inject_lend_fault()
        self._fence(use_case, pa, size)                    # commit point: the firewall
        mobj = contiguous_mobj("protmem", pa, size, secure=True, cookie=cookie)
        mobj.extra["use_case"] = use_case
        region = ProtRegion(use_case, pa, size, mobj, cookie=cookie)
        self.regions.append(region)
        self.sos.log_event("protmem_lend", use_case=use_case, pa=pa, size=size, cookie=cookie)
        return region

    def _inject_lend_fault(self) -> None:
        """Fault point ``protmem.lend``: the secure OS runs out of resources for the range
        (OP-TEE's mobj allocation fails) before anything is fenced."""
        if self.sos.faults.hit("protmem.lend"):
            raise ProtmemError("TEE_ERROR_OUT_OF_MEMORY", "injected fault: no resources to lend")

    # --- RECLAIM_PROTMEM -------------------------------------------------------------------------
    def reclaim(self, cookie: int) -> ProtRegion:
        region = self.by_cookie(cookie)
        if region is None or region.releasing:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS", f"can't find mapping with cookie {cookie:#x}")
        if region.mobj.refs:
            # OP-TEE blocks the yielding call until the users drop it; this model has no
            # second CPU to drop them, so the reclaim is refused and the state kept.
            raise ProtmemError("TEE_ERROR_BUSY", f"cookie {cookie:#x} still mapped by a TA")
        if self.sos.faults.hit("protmem.reclaim"):
            raise ProtmemError("TEE_ERROR_BUSY", f"injected fault: cookie {cookie:#x} busy")
        region.releasing = True
        self.scrub(region.base, region.size)
        try:
            self._fence(self.c.MOBJ_USE_CASE_NS_SHM, region.base, region.size)
        except ProtmemError:
            region.releasing = False
            raise
        self.regions.remove(region)
        self.sos.log_event("protmem_reclaim", pa=region.base, size=region.size, cookie=cookie)
        return region

    # --- FF-A: FFA_MEM_LEND (tag = use case), ASSIGN_PROTMEM, RELEASE_PROTMEM, RECLAIM --------
    def lend_ffa(self, handle: int, use_case: int, pa: int, size: int) -> ProtRegion:
        """The moment an FF-A lend completes: validate, then fence (plat_set_protmem_range)."""
        self.validate_lend(use_case, pa, size)
        self._inject_lend_fault()
        self._fence(use_case, pa, size)
        mobj = contiguous_mobj("protmem_ffa", pa, size, secure=True, cookie=handle)
        mobj.extra["use_case"] = use_case
        region = ProtRegion(use_case, pa, size, mobj, cookie=handle, ffa=True)
        self.regions.append(region)
        self.sos.log_event("protmem_lend", use_case=use_case, pa=pa, size=size, handle=handle)
        return region

    def assign(self, handle: int, use_case: int) -> None:
        """mobj_ffa_assign_protmem: ITEM_NOT_FOUND, BUSY or BAD_PARAMETERS, else assigned."""
        region = self.by_cookie(handle)
        if region is None or not region.ffa:
            raise ProtmemError("TEE_ERROR_ITEM_NOT_FOUND", f"no protected object {handle:#x}")
        if region.assigned:
            raise ProtmemError("TEE_ERROR_BUSY", f"{handle:#x} is already assigned")
        if region.use_case != use_case:
            raise ProtmemError("TEE_ERROR_BAD_PARAMETERS",
                               f"use case {use_case} differs from the lend tag {region.use_case}")
        region.assigned = True

    def release_ffa(self, handle: int) -> str | None:
        """The unregister path of RELEASE_PROTMEM: None (done or unknown) or "busy"."""
        region = self.by_cookie(handle)
        if region is None:
            return None
        if region.mobj.refs:
            return "busy"
        region.assigned = False
        return None

    def reclaim_ffa(self, handle: int) -> str | None:
        """FFA_MEM_RECLAIM of a protected object: None when done, else "denied"."""
        region = self.by_cookie(handle)
        if region is None:
            return None
        if region.mobj.refs or region.assigned:
            return "denied"
        if self.sos.faults.hit("protmem.reclaim"):
            return "denied"
        self.scrub(region.base, region.size)
        self._fence(self.c.MOBJ_USE_CASE_NS_SHM, region.base, region.size)
        self.regions.remove(region)
        self.sos.log_event("protmem_reclaim", pa=region.base, size=region.size, handle=handle)
        return None

    def scrub(self, pa: int, size: int) -> None:
        """Zero a range from the secure side before the normal world gets it back."""
        self.sos.physmem.fill(pa, size, 0)
        self.scrubbed_bytes += size
