"""Sessions and TA instances (OP-TEE's tee_ta_manager): open, invoke, close.

Instance rules follow the TA flags: without SINGLE_INSTANCE every session gets a fresh
instance; with it, sessions share one instance, and without MULTI_SESSION a second concurrent
session is refused with TEE_ERROR_BUSY; INSTANCE_KEEP_ALIVE keeps the instance after its last
session. A TA that panics or faults is dead: its sessions answer TEE_ERROR_TARGET_DEAD with
origin TEE, and the rest of the secure OS keeps serving.

All entry points are generators, because loading a TA or serving a syscall may need RPCs.
"""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generator

from tee_os.mobj import MobjError
from tee_os.msg import MsgParam
from tee_os.pta import PSEUDO_TAS, PseudoTa, PtaBuffer
from tee_os.rpc import RpcAllocPayload, RpcCmd, RpcCmdReply, RpcFreePayload, RpcPayload
from tee_os.signed_ta import is_plain_elf, load_plain_elf_ta, load_signed_ta_info
from tee_os.ta_loader import TaImage, TaLoadError, load_ta_elf
from emu.cpu import PROT_RW
from tee_os.ta_memory import AccessDenied, OutOfMemory
from tee_os.user_ta import TaExit, TaInstance, TaParam, destroy_instance, load_instance

if TYPE_CHECKING:
    from tee_os.core import SecureOS

Result = tuple[int, int]      # (TEE result, origin)


@dataclass
class Session:
    id: int
    instance: TaInstance | None          # None for a pseudo-TA session
    login: int
    client_uuid: bytes
    cancel_requested: bool = False
    cancel_masked: bool = True
    cancel_id: int = 0
    pta: PseudoTa | None = None
    caller: TaInstance | None = None     # the TA that opened it (TA-to-TA / TA-to-PTA)


class TaManager:
    def __init__(self, sos: "SecureOS"):
        self.sos = sos
        self.c = sos.c
        self.images: dict[uuidlib.UUID, TaImage] = {}
        self.instances: dict[uuidlib.UUID, TaInstance] = {}   # single-instance TAs
        self.sessions: dict[int, Session] = {}
        self._next_session = 1
        self.loaded_from_ree: dict[uuidlib.UUID, str] = {}
        self.image_digests: dict[uuidlib.UUID, str] = {}   # issue 11: SHA-256 for "ta_load"
        self.store_errors: dict[uuidlib.UUID, TaLoadError] = {}   # built-in files refused
        self._ree_asked: set[uuidlib.UUID] = set()        # UUIDs already asked of the REE store
        self.ptas: dict[uuidlib.UUID, PseudoTa] = {cls.uuid: cls(sos) for cls in PSEUDO_TAS}

    # --- images ----------------------------------------------------------------------------
    def add_image(self, name: str, data: bytes,
                  expected_uuid: uuidlib.UUID | None = None) -> TaImage:
        """Add a TA of the secure OS's own (built-in) store.

        The project's built-in TAs are signed ``.ta`` files (ta/builtin.py): they are checked
        with the build key (``builtin_ta_public_key``) whatever ``--ta-key``/``--no-verify-ta``
        say, since those govern the user's TA directories. A bare ELF is accepted here only
        for images a caller of the platform API adds itself (``extra_tas``)."""
        if is_plain_elf(data):
            image = load_ta_elf(data, name=name)
        else:
            cfg = self.sos.config
            key = cfg.builtin_ta_public_key or cfg.ta_public_key
            image, hdr = load_signed_ta_info(data, expected_uuid=expected_uuid, verify=True,
                                             public_key_pem=key, name=name)
            self.image_digests[image.uuid] = hdr.digest_hex
        self.images[image.uuid] = image
        return image

    def _fetch_from_ree(self, uuid: uuidlib.UUID) -> Generator[Any, Any, TaImage | None]:
        """Ask the normal world's TA storage (tee-supplicant) for the TA, like OP-TEE's REE FS."""
        c = self.c
        octets = uuid.bytes
        value = MsgParam(c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT,
                         int.from_bytes(octets[:8], "little"), int.from_bytes(octets[8:], "little"), 0)
        query = MsgParam(c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT, 0, 0, 0)
        reply: RpcCmdReply = yield RpcCmd(c.OPTEE_RPC_CMD_LOAD_TA, [value, query])
        size = reply.params[1].b if len(reply.params) > 1 else 0
        if reply.ret not in (c.TEE_SUCCESS, c.TEE_ERROR_SHORT_BUFFER) or size == 0:
            return None
        payload: RpcPayload = yield RpcAllocPayload(size, c.OPTEE_RPC_SHM_TYPE_APPL)
        if payload is None:         # ree_fs_ta_open: thread_rpc_alloc_payload failed
            raise OutOfMemory(f"no RPC shared memory for the {size}-byte TA image")
        try:
            buf = MsgParam(c.OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT, payload.pa, size, payload.cookie)
            reply = yield RpcCmd(c.OPTEE_RPC_CMD_LOAD_TA, [value, buf])
            if reply.ret != c.TEE_SUCCESS:
                return None
            elf = self.sos.read_ns(payload.pa, size)
        finally:
            yield RpcFreePayload(payload)
        # issue 11: signed .ta (tee_os/signed_ta.py: shdr rules, digest, RSA signature with
        # the configured key, bootstrap UUID = requested = ta_head UUID -> TEE_ERROR_SECURITY);
        # a bare ELF is still accepted with a warning (tzemu compatibility, docs/tas.md).
        name = f"{uuid}.ta"
        if is_plain_elf(elf):
            image, digest = load_plain_elf_ta(elf, expected_uuid=uuid, name=name,
                                              verify=self.sos.config.verify_ta)
        else:
            cfg = self.sos.config
            image, hdr = load_signed_ta_info(elf, expected_uuid=uuid, verify=cfg.verify_ta,
                                             public_key_pem=cfg.ta_public_key, name=name)
            digest = hdr.digest_hex
        self.image_digests[uuid] = digest
        self.loaded_from_ree[uuid] = image.name
        self.images[uuid] = image
        return image

    def _instance_for(self, image: TaImage) -> TaInstance:
        c = self.c
        if image.flags & c.TA_FLAG_SINGLE_INSTANCE:
            inst = self.instances.get(image.uuid)
            if inst is not None and inst.dead and not image.flags & c.TA_FLAG_INSTANCE_KEEP_CRASHED:
                self._destroy(inst)
                inst = None
            if inst is not None:
                if inst.sessions and not image.flags & c.TA_FLAG_MULTI_SESSION:
                    raise _Refused(c.TEE_ERROR_BUSY)
                return inst
        sos = self.sos
        inst = load_instance(image, sos.ta_pool, sos.physmem, sos.s_el0.uc.ctl_flush_tb)
        for va, pa, size in sos.config.ta_device_maps.get(image.uuid, ()):
            inst.space.map_range(va, pa, size, PROT_RW, secure=True, private=False)
        if image.flags & c.TA_FLAG_SINGLE_INSTANCE:
            self.instances[image.uuid] = inst
        if sos.bus.active:
            sos.bus.emit("ta_load", "S-EL1", uuid=str(image.uuid), name=image.name,
                         flags=image.flags,
                         # issue 11: which store, the .ta file and its SHA-256 digest
                         # (file and digest None: a bare ELF added through the API)
                         store="ree" if image.uuid in self.loaded_from_ree else "builtin",
                         file=(self.loaded_from_ree.get(image.uuid)
                               or (f"{image.uuid}.ta" if image.uuid in self.image_digests
                                   else None)),
                         digest=self.image_digests.get(image.uuid))
        return inst

    def _destroy(self, inst: TaInstance) -> None:
        if self.instances.get(inst.uuid) is inst:
            del self.instances[inst.uuid]
        destroy_instance(inst, self.sos.ta_pool, self.sos.physmem)

    def _release_if_idle(self, inst: TaInstance) -> None:
        keep = inst.flags & self.c.TA_FLAG_SINGLE_INSTANCE and inst.flags & self.c.TA_FLAG_INSTANCE_KEEP_ALIVE
        if not inst.sessions and (not keep or inst.dead):
            # Sessions this instance opened to other TAs/PTAs die with it.
            for sid in [s.id for s in self.sessions.values() if s.caller is inst]:
                self._drop_session(sid)
            self._destroy(inst)

    def _drop_session(self, sid: int) -> None:
        """Forget a session whose caller is gone, without entering the callee."""
        session = self.sessions.pop(sid, None)
        if session is not None and session.instance is not None:
            session.instance.sessions.discard(sid)
            self._release_if_idle(session.instance)

    # --- entering the TA ----------------------------------------------------------------------
    def _map_params(self, inst: TaInstance, params: list[TaParam]) -> None:
        for p in params:
            if p.type in (5, 6, 7) and p.mobj is not None and p.size:
                off, pages = p.mobj.pages_for(p.offset, p.size)
                p.va, _ = inst.space.map_param(off, pages, p.type != 5, p.mobj.secure)
                inst.space.param_objects.append((p.va, p.size, p.mobj, p.offset))
                p.mobj.refs += 1
            elif p.type in (5, 6, 7):
                p.va = 0

    def _unref_params(self, params: list[TaParam]) -> None:
        for p in params:
            if p.type in (5, 6, 7) and p.mobj is not None and p.size and p.va:
                p.mobj.refs -= 1

    def sdp_refused(self, inst: TaInstance, params: list[TaParam]) -> bool:
        """An SDP (secure) memref of non-zero size reaches only a SECURE_DATA_PATH TA."""
        if inst.flags & self.c.TA_FLAG_SECURE_DATA_PATH:
            return False
        return any(p.type in (5, 6, 7) and p.size and p.mobj is not None and p.mobj.secure
                   for p in params)

    def _enter(self, session: Session, func: int, cmd: int,
               params: list[TaParam]) -> Generator[Any, Any, Result]:
        c = self.c
        inst = session.instance
        if inst.dead:
            return c.TEE_ERROR_TARGET_DEAD, c.TEE_ORIGIN_TEE
        if getattr(inst, "busy", False):
            return c.TEE_ERROR_BUSY, c.TEE_ORIGIN_TEE
        if self.sdp_refused(inst, params):
            self.sos.log_event("sdp_refused", ta=inst.name)
            return c.TEE_ERROR_BAD_PARAMETERS, c.TEE_ORIGIN_TEE
        try:
            self._map_params(inst, params)
        except MobjError:
            self._unref_params(params)
            inst.space.unmap_params()
            return c.TEE_ERROR_BAD_PARAMETERS, c.TEE_ORIGIN_TEE
        inst.busy = True
        try:
            ex: TaExit = yield from self.sos.runner.enter(inst, func, session.id, cmd, params)
        finally:
            inst.busy = False
            self._unref_params(params)
        if ex.kind == "return":
            return ex.value, c.TEE_ORIGIN_TRUSTED_APP
        inst.dead = True
        self.sos.log_event("ta_dead", ta=inst.name, reason=ex.kind, value=ex.value, detail=ex.detail)
        return c.TEE_ERROR_TARGET_DEAD, c.TEE_ORIGIN_TEE

    # --- the three entry points ------------------------------------------------------------------
    def _new_session_id(self) -> int:
        sid = self._next_session
        self._next_session += 1
        return sid

    def _pta_buffer(self, session: Session) -> Callable[[TaParam], PtaBuffer]:
        """How the PTA reaches a memref: the caller TA's mapping, or the memory object."""
        caller = session.caller
        if caller is not None:
            def from_ta(p: TaParam) -> PtaBuffer:
                maps = caller.space.pages_in(p.va, max(p.size, 1))
                return PtaBuffer(caller.space.resolve(p.va, p.size, write=False),
                                 all(m is not None and m.secure for m in maps), p.size)
            return from_ta
        return lambda p: PtaBuffer(p.mobj.pa_ranges(p.offset, p.size) if p.mobj else [],
                                   bool(p.mobj and p.mobj.secure), p.size)

    def _pta_call(self, session: Session, cmd: int, params: list[TaParam]) -> Result:
        c = self.c
        if session.caller is None and any(p.type in (5, 6, 7) and p.size and p.mobj is not None
                                          and p.mobj.secure for p in params):
            self.sos.log_event("pta_sdp_refused", pta=session.pta.name)
            return c.TEE_ERROR_BAD_PARAMETERS, c.TEE_ORIGIN_TEE
        try:
            ret = session.pta.invoke(cmd, params, self._pta_buffer(session))
        except (MobjError, AccessDenied):
            return c.TEE_ERROR_BAD_PARAMETERS, c.TEE_ORIGIN_TEE
        return ret, c.TEE_ORIGIN_TRUSTED_APP

    def open_session(self, uuid: uuidlib.UUID, login: int, client_uuid: bytes,
                     params: list[TaParam], caller: TaInstance | None = None
                     ) -> Generator[Any, Any, tuple[int, int, int]]:
        """Returns (result, origin, session id or 0)."""
        c = self.c
        pta = self.ptas.get(uuid)
        if pta is not None:
            session = Session(self._new_session_id(), None, login, client_uuid, pta=pta,
                              caller=caller)
            if caller is None and any(p.type in (5, 6, 7) and p.size and p.mobj is not None
                                      and p.mobj.secure for p in params):
                return c.TEE_ERROR_BAD_PARAMETERS, c.TEE_ORIGIN_TEE, 0
            self.sessions[session.id] = session
            return c.TEE_SUCCESS, c.TEE_ORIGIN_TEE, session.id
        image = self.images.get(uuid)
        try:
            if (image is not None and self.sos.config.ree_ta_store_first
                    and uuid not in self._ree_asked):
                self._ree_asked.add(uuid)                 # once per UUID, like a TA cache
                image = (yield from self._fetch_from_ree(uuid)) or image
            if image is None:
                self._ree_asked.add(uuid)
                image = yield from self._fetch_from_ree(uuid)
            if image is None and uuid in self.store_errors:
                raise self.store_errors[uuid]     # the built-in file was refused at boot
            if image is None:
                return c.TEE_ERROR_ITEM_NOT_FOUND, c.TEE_ORIGIN_TEE, 0
            inst = self._instance_for(image)
        except TaLoadError as err:
            self.sos.log_event("ta_load_failed", uuid=str(uuid), error=err.tee_error, detail=str(err))
            return err.tee_error, c.TEE_ORIGIN_TEE, 0
        except OutOfMemory:
            self._ree_asked.discard(uuid)       # a transient failure: ask the REE again next time
            return c.TEE_ERROR_OUT_OF_MEMORY, c.TEE_ORIGIN_TEE, 0
        except _Refused as ref:
            return ref.code, c.TEE_ORIGIN_TEE, 0
        sid = self._new_session_id()
        session = Session(sid, inst, login, client_uuid, caller=caller)
        self.sessions[sid] = session
        inst.sessions.add(sid)
        ret, origin = yield from self._enter(session, c.UTEE_ENTRY_FUNC_OPEN_SESSION, 0, params)
        if ret != c.TEE_SUCCESS:
            del self.sessions[sid]
            inst.sessions.discard(sid)
            self._release_if_idle(inst)
            return ret, origin, 0
        return ret, origin, sid

    def invoke(self, sid: int, cmd: int, params: list[TaParam],
               cancel_id: int = 0) -> Generator[Any, Any, Result]:
        c = self.c
        session = self.sessions.get(sid)
        if session is None:
            return c.TEE_ERROR_BAD_PARAMETERS, c.TEE_ORIGIN_TEE
        session.cancel_id, session.cancel_requested = cancel_id, False
        if session.pta is not None:
            return self._pta_call(session, cmd, params)
        return (yield from self._enter(session, c.UTEE_ENTRY_FUNC_INVOKE_COMMAND, cmd, params))

    def close_session(self, sid: int) -> Generator[Any, Any, Result]:
        c = self.c
        session = self.sessions.get(sid)
        if session is None:
            return c.TEE_ERROR_BAD_PARAMETERS, c.TEE_ORIGIN_TEE
        if session.pta is not None:
            del self.sessions[sid]
            return c.TEE_SUCCESS, c.TEE_ORIGIN_TEE
        inst = session.instance
        if not inst.dead:
            yield from self._enter(session, c.UTEE_ENTRY_FUNC_CLOSE_SESSION, 0, [])
        del self.sessions[sid]
        inst.sessions.discard(sid)
        self._release_if_idle(inst)
        return c.TEE_SUCCESS, c.TEE_ORIGIN_TEE

    def cancel(self, sid: int, cancel_id: int) -> Result:
        session = self.sessions.get(sid)
        if session is not None and (cancel_id == 0 or cancel_id == session.cancel_id):
            session.cancel_requested = True
        return self.c.TEE_SUCCESS, self.c.TEE_ORIGIN_TEE


class _Refused(Exception):
    def __init__(self, code: int):
        super().__init__(f"refused with {code:#x}")
        self.code = code
