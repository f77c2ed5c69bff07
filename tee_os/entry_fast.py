"""Fast calls of the SMC transport (OP-TEE's entry_fast.c): answered without a thread.

Each handler takes the caller's a0..a7 and returns a0..a3. A function the secure OS does not
know answers OPTEE_SMC_RETURN_UNKNOWN_FUNCTION.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from tee_os.core import SecureOS

Regs = tuple[int, ...]
Result = tuple[int, int, int, int]


class FastEntry:
    def __init__(self, sos: "SecureOS"):
        self.sos = sos
        c = self.c = sos.c
        self.handlers: dict[int, Callable[[Regs], Result]] = {
            c.OPTEE_SMC_CALLS_UID: self.calls_uid,
            c.OPTEE_SMC_CALLS_REVISION: self.calls_revision,
            c.OPTEE_SMC_CALL_GET_OS_UUID: self.get_os_uuid,
            c.OPTEE_SMC_CALL_GET_OS_REVISION: self.get_os_revision,
            c.OPTEE_SMC_GET_SHM_CONFIG: self.get_shm_config,
            c.OPTEE_SMC_EXCHANGE_CAPABILITIES: self.exchange_capabilities,
            c.OPTEE_SMC_DISABLE_SHM_CACHE: self.disable_shm_cache,
            c.OPTEE_SMC_ENABLE_SHM_CACHE: self.enable_shm_cache,
            c.OPTEE_SMC_GET_THREAD_COUNT: self.get_thread_count,
        }
        if sos.config.protmem == "static":
            # Only with static protected memory and no dynamic protected memory (entry_fast.c).
            self.handlers[c.OPTEE_SMC_GET_PROTMEM_CONFIG] = self.get_protmem_config
        self.unknown: Result = (c.OPTEE_SMC_RETURN_UNKNOWN_FUNCTION, 0, 0, 0)
        self._uid = (c.OPTEE_MSG_UID_0, c.OPTEE_MSG_UID_1, c.OPTEE_MSG_UID_2, c.OPTEE_MSG_UID_3)
        self._os_uuid = (c.OPTEE_MSG_OS_OPTEE_UUID_0, c.OPTEE_MSG_OS_OPTEE_UUID_1,
                         c.OPTEE_MSG_OS_OPTEE_UUID_2, c.OPTEE_MSG_OS_OPTEE_UUID_3)
        self._revision = (c.OPTEE_MSG_REVISION_MAJOR, c.OPTEE_MSG_REVISION_MINOR, 0, 0)

    def handle(self, a: Regs) -> Result:
        handler = self.handlers.get(a[0] & 0xFFFFFFFF)
        return handler(a) if handler else self.unknown

    def calls_uid(self, a: Regs) -> Result:
        return self._uid

    def calls_revision(self, a: Regs) -> Result:
        return self._revision

    def get_os_uuid(self, a: Regs) -> Result:
        return self._os_uuid

    def get_os_revision(self, a: Regs) -> Result:
        major, minor, build = self.sos.config.os_revision
        return (major, minor, build, 0)

    def get_shm_config(self, a: Regs) -> Result:
        # tzemu has no reserved shared-memory carveout: the normal world uses dynamic shm.
        return (self.c.OPTEE_SMC_RETURN_ENOTAVAIL, 0, 0, 0)

    def exchange_capabilities(self, a: Regs) -> Result:
        c = self.c
        self.sos.nsec_caps = a[1] & 0xFFFFFFFF
        return (c.OPTEE_SMC_RETURN_OK, self.sos.sec_caps(), self.sos.config.max_notif_value,
                self.sos.config.rpc_params)

    def disable_shm_cache(self, a: Regs) -> Result:
        c = self.c
        if any(t.state.value != "free" for t in self.sos.std.threads):
            return (c.OPTEE_SMC_RETURN_EBUSY, 0, 0, 0)
        self.sos.shm_cache_enabled = False
        # No cached shm is kept by tzemu, so the cache is always empty after the first call.
        return (c.OPTEE_SMC_RETURN_ENOTAVAIL, 0, 0, 0)

    def enable_shm_cache(self, a: Regs) -> Result:
        c = self.c
        if any(t.state.value != "free" for t in self.sos.std.threads):
            return (c.OPTEE_SMC_RETURN_EBUSY, 0, 0, 0)
        self.sos.shm_cache_enabled = True
        return (c.OPTEE_SMC_RETURN_OK, 0, 0, 0)

    def get_protmem_config(self, a: Regs) -> Result:
        """a0 = OK, a1 = carveout base, a2 = size, a3 = PA width; ENOTAVAIL without carveout.

        tzemu extension: a1 selects the use case's carveout (0, as the kernel passes, means
        secure-video), so a platform can offer one static pool per use case.
        """
        c = self.c
        use_case = (a[1] & 0xFFFFFFFF) or c.OPTEE_MSG_PROTMEM_SECURE_VIDEO_PLAY
        cfg = self.sos.protmem.static_config(use_case)
        if cfg is None:
            return (c.OPTEE_SMC_RETURN_ENOTAVAIL, 0, 0, 0)
        return (c.OPTEE_SMC_RETURN_OK, cfg[0], cfg[1], 64)

    def get_thread_count(self, a: Regs) -> Result:
        return (self.c.OPTEE_SMC_RETURN_OK, len(self.sos.std.threads), 0, 0)
