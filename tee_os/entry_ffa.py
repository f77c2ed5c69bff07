"""The FF-A transport of the secure OS (OP-TEE's thread_spmc.c): SPMC + OP-TEE's FF-A ABI.

Every FF-A call forwarded by the SPMD reaches :meth:`FfaTransport.handle`, which gives it to the
SPMC core (tee_os.spmc). Direct requests to the OP-TEE partition land in :meth:`_direct_request`:
the blocking services (versions, capabilities, UNREGISTER_SHM, RELEASE_PROTMEM, ...) and the
yielding calls, which run OPTEE_MSG commands on the same trusted threads as the SMC transport.
Memory shared with FFA_MEM_SHARE becomes a normal shm object; memory lent with FFA_MEM_LEND and
a use-case tag becomes protected memory, fenced the moment the lend completes.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from tee_os.entry_std import StdEntry
from emu.physmem import BusError
from tee_os.mobj import PAGE, Mobj, MobjError
from tee_os.protmem import ProtmemError

if TYPE_CHECKING:
    from tee_os.core import SecureOS

RETURN_DONE, RETURN_RPC_CMD, RETURN_INTERRUPT = 0, 1, 2


class FfaTransport:
    def __init__(self, sos: "SecureOS", num_threads: int, *, spmc_id: int = 0x8000,
                 sp_id: int = 0x8001):
        from tee_os.spmc import Spmc, SpmcConfig
        self.sos = sos
        c = self.c = sos.c
        self.sp_id = sp_id
        self.std = StdEntry(sos, num_threads, transport="ffa")
        self.shm: dict[int, Mobj] = {}          # FF-A handle -> shared (or tag-0 lent) memory
        self.registered: set[int] = set()       # handles looked up by a call, not yet unregistered
        self.spmc = Spmc(SpmcConfig(spmc_id=spmc_id, sp_id=sp_id),
                         read_ns=sos.read_ns, write_ns=sos.write_ns,
                         ns_ddr_range=sos.ns_ddr_range, on_lend=self._on_lend,
                         on_reclaim=self._on_reclaim, direct_request=self._direct_request,
                         bus=sos.bus)
        self.services = {
            c.OPTEE_FFA_GET_API_VERSION: self._api_version,
            c.OPTEE_FFA_GET_OS_VERSION: self._os_version,
            c.OPTEE_FFA_EXCHANGE_CAPABILITIES: self._exchange_capabilities,
            c.OPTEE_FFA_UNREGISTER_SHM: self._unregister_shm,
            c.OPTEE_FFA_ENABLE_ASYNC_NOTIF: self._enable_async_notif,
            c.OPTEE_FFA_RELEASE_PROTMEM: self._release_protmem,
            c.OPTEE_FFA_YIELDING_CALL_WITH_ARG: self._yielding_call_with_arg,
            c.OPTEE_FFA_YIELDING_CALL_RESUME: self._yielding_call_resume,
        }

    def handle(self, regs: tuple[int, ...]) -> tuple[int, ...]:
        return self.spmc.handle(regs)

    # --- memory objects -------------------------------------------------------------------------
    def mobj(self, handle: int) -> Mobj | None:
        """The object behind an FMEM global id (mobj_ffa_get_by_cookie): protected memory, or
        memory shared (or lent with tag 0) with the OP-TEE partition; the lookup registers it
        until UNREGISTER_SHM, and a registered object cannot be reclaimed."""
        region = self.sos.protmem.by_cookie(handle)
        if region is not None and region.ffa:
            return region.mobj if not region.releasing else None
        mobj = self.shm.get(handle)
        if mobj is None:
            tx = self.spmc.lookup(handle)
            if tx is None or not tx.complete or (tx.kind == "lend" and tx.tag):
                return None
            if not any(ep == self.sp_id for ep, _perm in tx.receivers):
                return None
            pages = tuple(pa + i * PAGE for pa, n in tx.constituents for i in range(n))
            mobj = Mobj("ffa_shm", pages, 0, len(pages) * PAGE, secure=False, cookie=handle)
            self.shm[handle] = mobj
        self.registered.add(handle)
        return mobj

    def _on_lend(self, tx: Any) -> int | None:
        """A LEND/DONATE is about to complete: a protected one is fenced right here (the moment
        the memory becomes protected); plain lent memory must not overlap protected memory."""
        c = self.c
        runs = [(pa, n * PAGE) for pa, n in tx.constituents]
        size = sum(n for _, n in runs)
        if tx.kind == "lend" and tx.tag:
            if any(b[0] != a[0] + a[1] for a, b in zip(runs, runs[1:])):
                return c.FFA_INVALID_PARAMETERS        # protected memory must be contiguous
            if tx.tag not in self.sos.protmem.use_cases:
                return c.FFA_NO_MEMORY if tx.tag not in (1, 2, 3) else c.FFA_INVALID_PARAMETERS
            try:
                self.sos.protmem.lend_ffa(tx.handle, tx.tag, runs[0][0], size)
            except ProtmemError as exc:
                self.sos.log_event("ffa_lend_refused", detail=str(exc), handle=tx.handle)
                if exc.code_name == "TEE_ERROR_OUT_OF_MEMORY":
                    return c.FFA_NO_MEMORY
                return c.FFA_INVALID_PARAMETERS
            return None
        for pa, n in runs:
            if self.sos.protmem.overlapping(pa, n) is not None:
                return c.FFA_INVALID_PARAMETERS
        return None

    def _on_reclaim(self, tx: Any) -> int | None:
        c = self.c
        if self.sos.protmem.by_cookie(tx.handle) is not None:
            return c.FFA_DENIED if self.sos.protmem.reclaim_ffa(tx.handle) else None
        mobj = self.shm.get(tx.handle)
        if (mobj is not None and mobj.refs) or tx.handle in self.registered:
            return c.FFA_DENIED
        self.shm.pop(tx.handle, None)
        return None

    # --- OP-TEE's blocking services --------------------------------------------------------------
    def _direct_request(self, regs: tuple[int, ...]) -> tuple[int, ...]:
        """w3..w7 of the request -> w3..w7 of the response."""
        c = self.c
        service = regs[3] & 0xFFFFFFFF
        fn = self.services.get(service)
        if fn is None:
            return (c.TEE_ERROR_BAD_PARAMETERS, 0, 0, 0, 0)
        if self.sos.bus.active:
            self.sos.bus.emit("optee_ffa", "S-EL1", service=service, args=list(regs[4:8]))
        return fn(regs)

    def _api_version(self, r: tuple[int, ...]) -> tuple[int, ...]:
        return (self.c.OPTEE_FFA_VERSION_MAJOR, self.c.OPTEE_FFA_VERSION_MINOR, 0, 0, 0)

    def _os_version(self, r: tuple[int, ...]) -> tuple[int, ...]:
        major, minor, build = self.sos.config.os_revision
        return (major, minor, build, 0, 0)

    def _exchange_capabilities(self, r: tuple[int, ...]) -> tuple[int, ...]:
        c = self.c
        caps = c.OPTEE_FFA_SEC_CAP_ARG_OFFSET
        if self.sos.config.protmem == "dynamic":
            caps |= c.OPTEE_FFA_SEC_CAP_PROTMEM
        return (0, self.sos.config.rpc_params, caps, 0, 0)

    def _handle_of(self, r: tuple[int, ...]) -> int:
        return (r[4] & 0xFFFFFFFF) | (r[5] & 0xFFFFFFFF) << 32

    def unregister(self, handle: int) -> bool:
        """mobj_ffa_unregister_by_cookie: forget (relinquish) shared memory so the normal world
        can reclaim it; False while something still holds the object."""
        mobj = self.shm.get(handle)
        if mobj is not None and mobj.refs:
            return False
        self.registered.discard(handle)
        return True

    def _unregister_shm(self, r: tuple[int, ...]) -> tuple[int, ...]:
        if not self.unregister(self._handle_of(r)):
            return (self.c.FFA_BUSY & 0xFFFFFFFF, 0, 0, 0, 0)
        return (0, 0, 0, 0, 0)

    def _release_protmem(self, r: tuple[int, ...]) -> tuple[int, ...]:
        busy = self.sos.protmem.release_ffa(self._handle_of(r))
        return ((self.c.FFA_BUSY & 0xFFFFFFFF) if busy else 0, 0, 0, 0, 0)

    def _enable_async_notif(self, r: tuple[int, ...]) -> tuple[int, ...]:
        ok = (r[4] & 0xFFFFFFFF) < self.c.OPTEE_FFA_MAX_ASYNC_NOTIF_VALUE
        return (0 if ok else self.c.FFA_INVALID_PARAMETERS & 0xFFFFFFFF, 0, 0, 0, 0)

    # --- yielding calls --------------------------------------------------------------------------
    def _reply(self, out: tuple, thread_id: int) -> tuple[int, ...]:
        if out[0] == "done":
            a0 = out[1]
            if a0 != self.c.OPTEE_SMC_RETURN_OK:          # EBADCMD & co: the call failed
                return (self.c.TEE_ERROR_BAD_PARAMETERS, 0, 0, 0, 0)
            return (0, RETURN_DONE, 0, 0, 0)
        func = out[1]
        kind = RETURN_INTERRUPT if func == self.c.OPTEE_SMC_RPC_FUNC_FOREIGN_INTR else RETURN_RPC_CMD
        return (0, kind, 0, 0, thread_id)

    def _yielding_call_with_arg(self, r: tuple[int, ...]) -> tuple[int, ...]:
        c, sos, lay = self.c, self.sos, self.sos.msg_layout
        thread = self.std.free_thread()
        if thread is None:
            return (c.TEE_ERROR_BUSY, 0, 0, 0, 0)
        mobj = self.mobj(self._handle_of(r))
        offset = r[6] & 0xFFFFFFFF
        try:
            if mobj is None or mobj.secure or offset % 8:
                raise ValueError("no shared memory for the argument")
            head = mobj.pa_ranges(offset, lay.header_size)
            num = struct.unpack_from("<I", sos.read_ns(head[0][0], lay.header_size),
                                     lay.off["num_params"])[0]
            size = lay.arg_size(min(num, 127))
            total = size + lay.arg_size(4)
            runs = mobj.pa_ranges(offset, total)
            if len(runs) != 1 or num > 127:
                raise ValueError("argument not contiguous")
        except (ValueError, MobjError, BusError) as exc:
            sos.log_event("ffa_bad_arg", detail=str(exc))
            return (c.TEE_ERROR_BAD_PARAMETERS, 0, 0, 0, 0)
        arg_pa = runs[0][0]
        out = self.std.start(thread, arg_pa, sos.read_ns(arg_pa, size), arg_pa + size)
        return self._reply(out, thread.id)

    def _yielding_call_resume(self, r: tuple[int, ...]) -> tuple[int, ...]:
        c = self.c
        tid = r[7] & 0xFFFFFFFF
        threads = self.std.threads
        if tid >= len(threads) or threads[tid].state.value != "suspended":
            return (c.TEE_ERROR_BAD_PARAMETERS, 0, 0, 0, 0)
        out = self.std.step(threads[tid], (0, 0, 0, 0, 0, 0, 0, 0))
        return self._reply(out, tid)
