"""The secure OS core: its S-EL1 image, the gates into Python, and the shared services.

One core, thin transports (OP-TEE's habit): the SMC transport's fast and yielding entries
(``entry_fast``, ``entry_std``) share the TA manager, the shared-memory registry and the
syscall layer defined here. The secure OS reads its constants and struct layouts from its own
header copy (tee_os/include) and sees the rest of the platform only through the CPU views and
physical memory handed to it: it imports nothing from linux_side or firmware.
"""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Mapping

from emu.abi import AbiSet, secure_abi
from emu.asm import Program, assemble
from emu.cpu import CpuView
from emu.events import EventBus
from emu.faults import FaultInjector
from emu.physmem import PhysMem
from emu.platform_map import MemoryMap
from tee_os.entry_fast import FastEntry
from tee_os.entry_std import StdEntry
from tee_os.msg import MsgLayout
from tee_os.plat_protmem import TzcProtmemHook
from tee_os.protmem import ProtmemManager
from tee_os.shm import ShmError, ShmRegistry
from tee_os.syscalls import SyscallTable, deterministic_stream
from tee_os.ta_loader import TaLoadError
from tee_os.ta_manager import TaManager
from tee_os.ta_memory import PAGE, PagePool
from tee_os.user_ta import UserModeRunner

USER_TA_PROP_TYPE = {"bool": 0, "u32": 1, "uuid": 2, "identity": 3, "string": 4}


@dataclass
class SecureConfig:
    num_threads: int = 4
    os_revision: tuple[int, int, int] = (4, 9, 0)
    max_notif_value: int = 0
    rpc_params: int = 4
    seed: int = 0
    extra_caps: tuple[str, ...] = ()           # e.g. ("PROTMEM",) in later configurations
    log_sink: Callable[[str, str], None] | None = None
    protmem: str | None = None                 # None, "static" (carveouts) or "dynamic" (lent)
    protmem_use_cases: dict[int, int] = field(default_factory=dict)   # use case -> min size
    protmem_carveouts: dict[int, tuple[int, int]] = field(default_factory=dict)
    tzc_base: int | None = None                # TZC-400 frame (platform device)
    sram_base: int | None = None               # trusted SRAM for the firewall routine
    protmem_access: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    # TA UUID -> [(TA VA, device PA, size)]: device frames the platform lets that TA program
    ta_device_maps: dict = field(default_factory=dict)
    # issue 11: signed .ta files (tee_os/signed_ta.py): the RSA public key (PEM) they are
    # verified with, and whether digest/signature are checked at all (--no-verify-ta).
    ta_public_key: bytes | None = None
    verify_ta: bool = True
    # The key the built-in store's signed .ta files are checked with (the build key of
    # ta/builtin.py); None: ta_public_key. Always verified, unlike the REE TA store.
    builtin_ta_public_key: bytes | None = None
    # Ask the REE TA store (tee-supplicant) before the built-in TAs, so a user's <uuid>.ta
    # overrides a built-in TA of the same UUID. The platform sets it when TA directories are
    # configured (OP-TEE itself tries early TAs first; tzemu lets the user's file win).
    ree_ta_store_first: bool = False
    # issue 10 part 4: named fault-injection points of the secure world (emu/faults.py);
    # the platform builds this world's own injector from the boot spec.
    faults: FaultInjector = field(default_factory=FaultInjector)


@dataclass
class TaLogLine:
    ta: str
    text: str


class SecureOS:
    """OP-TEE-like secure OS running behind the S-EL1 entry stubs."""

    def __init__(self, *, s_el1: CpuView, s_el0: CpuView, physmem: PhysMem,
                 memory_map: MemoryMap, bus: EventBus, config: SecureConfig | None = None,
                 ta_store: Mapping[uuidlib.UUID, tuple[str, bytes]] | None = None,
                 foreign_interrupt_pending: Callable[[], bool] | None = None,
                 abi: AbiSet | None = None):
        self.abi = abi or secure_abi()
        self.c = self.abi.c
        self.config = config or SecureConfig()
        self.faults = self.config.faults
        self.s_el1, self.s_el0 = s_el1, s_el0
        self.physmem, self.memory_map, self.bus = physmem, memory_map, bus
        self._foreign_pending = foreign_interrupt_pending or (lambda: False)
        self.msg_layout = MsgLayout(self.abi)
        layout = memory_map.layout
        self.ta_pool = PagePool(layout["ta_pool_base"], layout["ta_pool_size"],
                                faults=self.faults)
        self.shm = ShmRegistry()
        self.nsec_caps = 0
        self.shm_cache_enabled = True
        self.ta_log: list[TaLogLine] = []
        self.clock_ms = 0
        self._rng_counter = 0
        self.booted = False
        self.image = self._load_image(layout["tee_os_base"])
        self.std = StdEntry(self, self.config.num_threads)
        self.fast = FastEntry(self)
        self.ta_manager = TaManager(self)
        for ta_uuid, (name, data) in (ta_store or {}).items():
            try:
                self.ta_manager.add_image(name, data, ta_uuid)
            except TaLoadError as err:   # a corrupt store file: that TA fails, the OS boots
                self.ta_manager.store_errors[ta_uuid] = err
        self.protmem_hook: TzcProtmemHook | None = None
        if self.config.tzc_base is not None and self.config.sram_base is not None:
            self.protmem_hook = TzcProtmemHook(self, self.config.tzc_base, self.config.sram_base,
                                               self.config.protmem_access)
        self.tzc_violations: list[dict[str, int]] = []
        cfg = self.config
        self.protmem = ProtmemManager(
            self, mode=cfg.protmem, use_cases=cfg.protmem_use_cases,
            carveouts=cfg.protmem_carveouts if cfg.protmem == "static" else {})
        self.ffa = None            # set by the FF-A transport (tee_os.entry_ffa) when configured
        self.syscalls = SyscallTable(self)
        self.runner = UserModeRunner(s_el0, physmem, bus, self.syscalls,
                                     self.abi.structs["utee_params"].size)

    # --- the S-EL1 image and its gates -------------------------------------------------------
    def _load_image(self, base: int) -> Program:
        src = resources.files("tee_os").joinpath("entry_a64.S").read_text()
        defines = {k: v for k, v in self.abi.constants.items() if k.startswith("TEESMC_OPTEED_")}
        defines["FFA_MSG_WAIT"] = self.abi.c.FFA_MSG_WAIT
        image = assemble(src, base, name="tee_os/entry_a64.S", defines=defines)
        self.physmem.write(base, image.code)
        self.s_el1.invalidate_code(base, image.end)
        self.s_el1.set_gates(image.sym("gate_area_start"), image.sym("gate_area_end"), {
            image.sym("gate_boot_init"): self._gate_boot_init,
            image.sym("gate_entry_fast"): self._gate_entry_fast,
            image.sym("gate_entry_std"): self._gate_entry_std,
            image.sym("gate_ffa_boot"): self._gate_ffa_boot,
            image.sym("gate_ffa_msg"): self._gate_ffa_msg,
        })
        return image

    @property
    def entry_point(self) -> int:
        return self.image.sym("_start")

    def _gate_boot_init(self, view: CpuView) -> None:
        self.booted = True
        self.protmem.setup_static()
        self.log_event("boot", image_base=self.image.base, threads=self.config.num_threads)

    def _gate_entry_fast(self, view: CpuView) -> None:
        view.write_args(self.fast.handle(view.read_args()))

    def _gate_entry_std(self, view: CpuView) -> None:
        view.write_args(self.std.handle(view.read_args()))

    @property
    def ffa_entry_point(self) -> int:
        return self.image.sym("_start_ffa")

    def _gate_ffa_boot(self, view: CpuView) -> None:
        self.booted = True
        self.protmem.setup_static()
        self.log_event("boot", image_base=self.image.base, transport="ffa")

    def _gate_ffa_msg(self, view: CpuView) -> None:
        if self.ffa is None:
            c = self.c
            view.write_args([c.FFA_ERROR, 0, c.FFA_NOT_SUPPORTED & 0xFFFFFFFF, 0, 0, 0, 0, 0])
            return
        view.write_args(self.ffa.handle(view.read_args()))

    def call_el1(self, entry: int, until: int, args: list[int]) -> int:
        """Run an S-EL1 routine (``ret`` lands on ``until``) and return its x0.

        The S-EL1 view may be in the middle of a gate; its context is saved around the call,
        like a nested function call in the core.
        """
        v = self.s_el1
        ctx = v.context_save()
        try:
            v.write_args(list(args) + [0] * (8 - len(args)))
            v.set_x(30, until)
            v.run(entry, until)
            return v.x(0)
        finally:
            v.context_restore(ctx)

    def tzc_interrupt(self) -> None:
        """The TZC-400 interrupt handler: read the fail registers over MMIO, log, clear."""
        if self.config.tzc_base is None:
            return
        c, uc, base = self.c, self.s_el1.uc, self.config.tzc_base
        read = lambda off: int.from_bytes(uc.mem_read(base + off, 4), "little")  # noqa: E731
        if not read(c.TZC_INT_STATUS) & 1:
            return
        rec = {"address": read(c.TZC_FAIL_ADDRESS_LOW_0) | read(c.TZC_FAIL_ADDRESS_HIGH_0) << 32,
               "control": read(c.TZC_FAIL_CONTROL_0), "id": read(c.TZC_FAIL_ID_0)}
        self.tzc_violations.append(rec)
        self.log_event("tzc_violation", **rec)
        uc.mem_write(base + c.TZC_INT_CLEAR, (1).to_bytes(4, "little"))

    # --- capabilities ------------------------------------------------------------------------
    def sec_caps(self) -> int:
        c = self.c
        caps = c.OPTEE_SMC_SEC_CAP_DYNAMIC_SHM | c.OPTEE_SMC_SEC_CAP_MEMREF_NULL | c.OPTEE_SMC_SEC_CAP_RPC_ARG
        for name in self.config.extra_caps:
            caps |= getattr(c, f"OPTEE_SMC_SEC_CAP_{name}")
        if self.config.protmem == "dynamic":
            caps |= c.OPTEE_SMC_SEC_CAP_DYNAMIC_PROTMEM
        elif self.config.protmem == "static":
            caps |= c.OPTEE_SMC_SEC_CAP_PROTMEM
        return caps

    # --- normal-world memory as the secure OS may use it --------------------------------------
    def ns_ddr_range(self, pa: int, size: int) -> bool:
        """True when [pa, pa+size) is normal-world RAM (never secure RAM, never MMIO)."""
        if pa < 0 or size < 0 or pa + size > 1 << 64:
            return False
        region = self.memory_map.region_of(pa, max(size, 1))
        return region is not None and region.kind == "ram" and not region.secure

    def ns_range_ok(self, pa: int, size: int) -> bool:
        """Normal-world shared memory: NS DDR that is not protected (carveout or lent)."""
        return self.ns_ddr_range(pa, size) and self.protmem.overlapping(pa, size) is None

    def ns_page_ok(self, pa: int) -> bool:
        return pa % PAGE == 0 and self.ns_range_ok(pa, PAGE)

    def check_shm_pages(self, pages: tuple[int, ...]) -> None:
        """Registered shared memory may never cover protected memory."""
        for page in pages:
            if self.protmem.overlapping(page, PAGE) is not None:
                raise ShmError("TEE_ERROR_BAD_PARAMETERS", f"page {page:#x} is protected memory")

    def read_ns(self, pa: int, size: int) -> bytes:
        return self.physmem.read(pa, size)

    def write_ns(self, pa: int, data: bytes) -> None:
        self.physmem.write(pa, data)

    # --- services used by syscalls --------------------------------------------------------------
    def pending_foreign_interrupt(self) -> bool:
        return self._foreign_pending()

    def log_ta(self, ta: str, text: str) -> None:
        self.ta_log.append(TaLogLine(ta, text))
        if self.config.log_sink:
            self.config.log_sink(ta, text)
        if self.bus.active:
            self.bus.emit("ta_log", "S-EL0", ta=ta, text=text)

    def log_event(self, kind: str, **fields: Any) -> None:
        if self.bus.active:
            self.bus.emit(kind, "S-EL1", **fields)

    def advance_clock_ms(self, ms: int) -> None:
        self.clock_ms += ms

    def system_time(self) -> tuple[int, int]:
        """The secure OS's system time: a virtual clock, so runs are deterministic."""
        self.clock_ms += 1
        return divmod(self.clock_ms, 1000)

    def random_bytes(self, size: int) -> bytes:
        self._rng_counter += 1
        return deterministic_stream(self.config.seed, self._rng_counter, size)

    def property_set(self, handle: int, runner: UserModeRunner) -> list[tuple[str, int, bytes]] | None:
        """The core's property sets (libutee serves the TA's own ta_props itself)."""
        c = self.c
        if handle == c.TEE_PROPSET_CURRENT_TA and runner.current is not None:
            u = runner.current.uuid
            return [("gpd.ta.appID", USER_TA_PROP_TYPE["uuid"], _uuid_struct(u))]
        if handle == c.TEE_PROPSET_CURRENT_CLIENT:
            session = self.ta_manager.sessions.get(runner.session_id)
            login = session.login if session else 0
            client = session.client_uuid if session else bytes(16)
            ident = login.to_bytes(4, "little") + _uuid_struct(uuidlib.UUID(bytes=client))
            return [("gpd.client.identity", USER_TA_PROP_TYPE["identity"], ident),
                    ("gpd.client.endian", USER_TA_PROP_TYPE["u32"], bytes(4))]
        if handle == c.TEE_PROPSET_TEE_IMPLEMENTATION:
            s = lambda text: text.encode() + b"\0"  # noqa: E731
            return [("gpd.tee.apiversion", USER_TA_PROP_TYPE["string"], s("GPD-1.1-dev")),
                    ("gpd.tee.description", USER_TA_PROP_TYPE["string"], s("OPTEE")),
                    ("gpd.tee.trustedos.manufacturer", USER_TA_PROP_TYPE["string"], s("LINARO")),
                    ("gpd.tee.trustedos.implementation.version", USER_TA_PROP_TYPE["string"],
                     s(".".join(map(str, self.config.os_revision))))]
        return None


def _uuid_struct(u: uuidlib.UUID) -> bytes:
    """TEE_UUID in memory: little-endian time fields, then the 8 clock/node octets."""
    return u.bytes_le
