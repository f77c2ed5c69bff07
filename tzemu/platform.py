"""Wiring: the one place that builds the machine and connects the worlds.

emu/ is below every world; firmware/, tee_os/ and linux_side/ never import each other. This
module creates physical memory and the CPU views, boots EL3 and the secure OS, and brings up
the Linux model on top of the NS-EL1 conduit. What crosses between worlds is registers (through
the monitor) and bytes in emulated memory.
"""
from __future__ import annotations

import ctypes
import uuid as uuidlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

from unicorn import arm64_const as A

from emu.abi import firmware_abi, linux_abi, secure_abi
from emu.asm import Program, assemble
from emu.cpu import _NEED, CpuView, GuestFault, identity_translate
from emu.devices.display import DisplayController
from emu.devices.camera import Camera
from emu.devices.crypto_engine import CryptoEngine
from emu.devices.dma import DmaMaster, TestMaster
from emu.mmu import Stage1Mmu
from emu.events import EventBus
from emu.faults import FaultInjector
from emu.gic import InterruptController
from emu.physmem import PhysMem
from emu.platform_map import MemoryMap, load_memory_map
from emu.protection import ProtectionFault
from emu.security import AccessControl
from emu.tzc400 import Tzc400
from emu.types import World
from firmware.monitor import El3Monitor
from firmware.opteed import OpteeDispatcher
from firmware.spmd import Spmd
from firmware.std_svc import ArmArchService
from firmware.tzc_setup import setup_boot_firewall
from linux_side.kernel import Kernel, KernelConfig
from tee_os.core import SecureConfig, SecureOS
from tzemu.ns_world import LinuxFacade, NsConduit

USE_CASES = ("secure-video", "trusted-ui", "secure-video-record")
DECRYPT_TA = uuidlib.UUID("5c2d1e77-9f3a-4b61-8e0d-2a7c4f9b1d03")
SCRATCH_OFFSET = 0x10000          # platform's own NS scratch page(s) after the stubs
SCRATCH_SIZE = 0x10000


class PlatformError(Exception):
    """The platform cannot be built or used as asked (a user error, one clear line)."""


@dataclass
class BootOptions:
    abi: str = "smc"
    platform_file: str | Path | None = None
    seed: int = 0
    threads: int = 4
    ta_dirs: Sequence[str | Path] = ()
    record_events: int = 0
    extra_tas: dict[uuidlib.UUID, tuple[str, bytes]] = field(default_factory=dict)
    protmem: str | None = None          # None, "static" (carveouts) or "dynamic" (CMA lending)
    protmem_use_cases: Sequence[str] = ("secure-video",)
    probe_linux: bool = True            # False: no OP-TEE driver probe (raw SMC / FF-A scripting)
    protmem_min_size: int | None = None  # dynamic pool chunk per use case (default: platform file)
    # --- issue 9 (`tzemu abi check`): build each side from a given header tree --------------
    linux_abi_tree: str | Path | None = None    # include dir for linux_abi(tree); None: own copy
    secure_abi_tree: str | Path | None = None   # include dir for secure_abi(tree); None: own copy
    # --- issue 11: signed .ta files from ta_dirs ---------------------------------------------
    ta_key: str | Path | None = None    # RSA public (or private) key PEM; None: the test key
    verify_ta: bool = True              # False: skip digest/signature checks (warns once)
    # --- issue 10 part 4: fault injection (emu/faults.py): point name -> N or "all" ------------
    inject: Mapping[str, int | str] = field(default_factory=dict)


class Platform:
    """A booted two-world machine."""

    def __init__(self, options: BootOptions):
        if options.abi not in ("smc", "ffa"):
            raise PlatformError(f"ABI {options.abi!r} is not available (supported: smc, ffa)")
        if options.threads < 1 or options.threads > 64:
            raise PlatformError("threads must be between 1 and 64")
        if options.protmem not in (None, "static", "dynamic"):
            raise PlatformError(f"protmem must be 'static' or 'dynamic', not {options.protmem!r}")
        if options.abi == "ffa" and options.protmem == "static":
            raise PlatformError("abi 'ffa' offers protected memory only as memory lent with "
                                "FFA_MEM_LEND (protmem='dynamic'): the Linux FF-A driver "
                                "registers no static pool")
        unknown = set(options.protmem_use_cases) - set(USE_CASES)
        if unknown:
            raise PlatformError(f"unknown protected-memory use cases {sorted(unknown)} "
                                f"(known: {', '.join(USE_CASES)})")
        self.options = options
        try:      # each world gets its own injector built from the same spec
            secure_faults, linux_faults, device_faults = (FaultInjector(options.inject)
                                                          for _ in range(3))
        except ValueError as exc:
            raise PlatformError(str(exc)) from None
        self.faults = {"secure": secure_faults, "linux": linux_faults, "devices": device_faults}
        self.memory_map: MemoryMap = load_memory_map(options.platform_file)
        self.physmem = PhysMem(self.memory_map)
        self.bus = EventBus(record=options.record_events)
        self.gic = InterruptController()
        mm = self.memory_map
        self.cpu_nsaid = mm.nsaid.get("cpu", 0)
        self.tzc = Tzc400(filters=1, address_width=40, bus=self.bus)
        self.tzc_base = mm.devices["tzc400"]
        self.access = AccessControl(mm, self.tzc, self.bus, tzc_base=self.tzc_base,
                                    cpu_nsaid=self.cpu_nsaid)
        self.views = {
            World.NS_EL1: CpuView(World.NS_EL1, self.physmem, firewall=self.access,
                                  nsaid=self.cpu_nsaid),
            World.S_EL1: CpuView(World.S_EL1, self.physmem, firewall=self.access),
            World.S_EL0: CpuView(World.S_EL0, self.physmem, firewall=self.access),
        }
        for view in self.views.values():
            self.access.register_view(view)
        self._map_tzc_frame(self.views[World.S_EL1])
        self.ns = self.views[World.NS_EL1]
        self.ns_mmu = Stage1Mmu(self._ns_table_read, t0sz=16, t1sz=16)
        self._ns_mmu_policy = self.ns_mmu.translate_policy()
        self.ns.translate = self._ns_translate
        # A walk cache in front of the table walker (real MMUs keep one too): successful
        # stage-1 results per 4 KiB VA page, dropped with the TLB on every flush.
        self._walk_cache: dict[int, tuple[int, int]] = {}
        self.ns.on_flush.append(self._walk_cache.clear)
        self._ttbr_ids = (ctypes.c_int * 2)(A.UC_ARM64_REG_TTBR0_EL1, A.UC_ARM64_REG_TTBR1_EL1)
        self._ttbr_vals = (ctypes.c_uint64 * 2)()
        self._ttbr_ptrs = (ctypes.c_void_p * 2)(ctypes.addressof(self._ttbr_vals),
                                                ctypes.addressof(self._ttbr_vals) + 8)
        self._walk_key = (0, 0)
        fw_abi = firmware_abi()
        # EL3 boot firmware: the boot-time firewall, before anything runs from DRAM.
        setup_boot_firewall(self.tzc.write, self.tzc.read, mm, fw_abi, mm.nsaid.values())
        self.monitor = El3Monitor(self.ns, self.views[World.S_EL1], self.bus, fw_abi)
        self.monitor.register(ArmArchService(fw_abi))
        self.opteed: OpteeDispatcher | None = None
        self.spmd: Spmd | None = None
        if options.abi == "ffa":          # SPMC_AT_EL=1: SPMD at EL3, SPMC in the secure OS
            self.spmd = Spmd(self.monitor, fw_abi)
            self.monitor.register(self.spmd)
        else:                             # SPMC_AT_EL=n: OP-TEE dispatcher, OP-TEE SMC ABI
            self.opteed = OpteeDispatcher(self.monitor, fw_abi)
            self.monitor.register(self.opteed)
        self.ns_stubs = self._load_ns_stubs()
        self.crypto_engine = self._make_crypto_engine()
        from ta.build import ta_defines
        from ta.builtin import builtin_signed_tas
        tas = dict(builtin_signed_tas())        # signed <uuid>.ta files (issue 11 item 6)
        tas.update(options.extra_tas)
        self.secure_os = SecureOS(
            s_el1=self.views[World.S_EL1], s_el0=self.views[World.S_EL0], physmem=self.physmem,
            memory_map=self.memory_map, bus=self.bus,
            config=SecureConfig(num_threads=options.threads, seed=options.seed,
                                **self._protmem_config(),
                                tzc_base=self.tzc_base,
                                sram_base=mm.layout["tee_os_sram_base"],
                                protmem_access=self._protmem_access(),
                                ta_device_maps=self._ta_device_maps(ta_defines()),
                                ree_ta_store_first=bool(options.ta_dirs),
                                faults=secure_faults,
                                **self._ta_key_config(options)),   # issue 11
            ta_store=tas, foreign_interrupt_pending=self.gic.ns_pending,
            abi=secure_abi(options.secure_abi_tree))  # issue 9: --optee-tree
        for ta_uuid in options.extra_tas:     # the caller's own images: refuse them at boot
            if ta_uuid in self.secure_os.ta_manager.store_errors:
                raise self.secure_os.ta_manager.store_errors[ta_uuid]
        self.access.on_interrupt = self.secure_os.tzc_interrupt
        self.devices = self._make_devices()
        if self.spmd is not None:
            try:
                from tee_os.entry_ffa import FfaTransport
            except ImportError as exc:
                raise PlatformError(f"the ffa ABI is not available in this build: {exc}") from None
            self.secure_os.ffa = FfaTransport(self.secure_os, options.threads)
            self.spmd.boot(self.secure_os.ffa_entry_point)
        else:
            self.opteed.boot(self.secure_os.entry_point)
        layout = self.memory_map.layout
        ns_dram = mm.region("ns_dram")
        self.kernel = Kernel(NsConduit(self), KernelConfig(
            layout["kernel_pool_base"], layout["kernel_pool_size"], ns_dram.base, ns_dram.size,
            layout["ns_stub_base"], ta_dirs=[str(d) for d in options.ta_dirs],
            cma_base=mm.cma_base, cma_size=mm.cma_size,
            **({"optee_abi": "ffa"} if options.abi == "ffa" else {}),
            protmem_use_cases=tuple(self.use_case_id(n) for n in options.protmem_use_cases),
            faults=linux_faults),
            abi=linux_abi(options.linux_abi_tree))  # issue 9: --linux-tree
        ttbr0, ttbr1 = self.kernel.setup_mm()
        self._enable_ns_mmu(ttbr0, ttbr1)
        self.probe_info = self.kernel.probe_optee() if options.probe_linux else None
        self._ffa: Any = None
        self.linux = LinuxFacade(self.kernel)

    def _make_devices(self) -> dict[str, DmaMaster]:
        """The platform's normal-world DMA masters, each with its NSAID from the platform file
        (the secure crypto engine is ``Platform.crypto_engine``)."""
        mm = self.memory_map
        common = {"physmem": self.physmem, "tzc": self.tzc, "bus": self.bus,
                  "injector": self.faults["devices"]}
        devices: dict[str, DmaMaster] = {}
        for name, nsaid in mm.nsaid.items():
            if name == "cpu":
                continue
            cls = {"display": DisplayController, "test_master": TestMaster,
                   "camera": Camera}.get(name, DmaMaster)
            dev = cls(name, nsaid=nsaid, master_id=0x10 + nsaid, **common)
            dev.on_tzc_interrupt = self.secure_os.tzc_interrupt
            devices[name] = dev
        if self.crypto_engine is not None:          # secure master: not in the NS device list
            self.crypto_engine.on_tzc_interrupt = self.secure_os.tzc_interrupt
        return devices

    def _make_crypto_engine(self) -> CryptoEngine | None:
        """The secure AES engine: a secure DMA master whose register frame the platform maps
        into the decrypt TA's address space (its only programmer)."""
        base = self.memory_map.devices.get("crypto_engine")
        if base is None:
            return None
        engine = CryptoEngine(physmem=self.physmem, tzc=self.tzc, bus=self.bus, master_id=0x30)
        engine.map_mmio(self.views[World.S_EL0].uc, base)
        self.access.secure_frames.append((base, 0x1000))
        return engine

    def _map_tzc_frame(self, view: CpuView) -> None:
        """The TZC-400 register frame, as MMIO visible to the secure world only."""
        tzc = self.tzc
        view.uc.mmio_map(self.tzc_base, tzc.FRAME_SIZE,
                         lambda uc, off, size, ud: tzc.read(off, size), None,
                         lambda uc, off, size, value, ud: tzc.write(off, size, value, world="S-EL1"),
                         None)

    def _ta_device_maps(self, defines: dict[str, int]) -> dict:
        """Device frames mapped into TAs: the crypto engine for the decrypt TA."""
        base = self.memory_map.devices.get("crypto_engine")
        if base is None:
            return {}
        return {DECRYPT_TA: [(defines["CRYPTO_ENGINE_VA"], base, 0x1000)]}

    def use_case_id(self, name: str) -> int:
        c = secure_abi().c
        return {"secure-video": c.OPTEE_MSG_PROTMEM_SECURE_VIDEO_PLAY,
                "trusted-ui": c.OPTEE_MSG_PROTMEM_TRUSTED_UI,
                "secure-video-record": c.OPTEE_MSG_PROTMEM_SECURE_VIDEO_RECORD}[name]

    def _protmem_access(self) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
        return {self.use_case_id(name): rw for name, rw in self.memory_map.protmem_access.items()
                if name in USE_CASES}

    @staticmethod
    def _ta_key_config(options: BootOptions) -> dict[str, Any]:
        """issue 11: the public keys signed .ta files are verified with (SecureConfig fields):
        the user's (TA directories) and the build key (the built-in store, always checked)."""
        from ta.sign import test_public_key_pem
        build_key = {"builtin_ta_public_key": test_public_key_pem()}
        if not options.verify_ta and options.ta_key is None:
            return {"ta_public_key": None, "verify_ta": False, **build_key}
        if options.ta_key is None:
            return {"ta_public_key": test_public_key_pem(), "verify_ta": options.verify_ta,
                    **build_key}
        try:
            pem = Path(options.ta_key).read_bytes()
        except OSError as exc:
            raise PlatformError(f"--ta-key {options.ta_key}: {exc.strerror or exc}") from None
        from tee_os.signed_ta import TaLoadError, check_ta_public_key
        try:
            check_ta_public_key(pem)
        except TaLoadError as exc:
            raise PlatformError(f"--ta-key {options.ta_key}: {exc.message}") from None
        return {"ta_public_key": pem, "verify_ta": options.verify_ta, **build_key}

    def _protmem_config(self) -> dict[str, Any]:
        """The secure OS's protected-memory platform configuration for the chosen mode."""
        o, mm = self.options, self.memory_map
        names = list(dict.fromkeys(o.protmem_use_cases))
        carveouts = {}
        if o.protmem == "static":
            for name in names:
                cv = mm.carveout(name)
                if cv is None:
                    raise PlatformError(f"the platform has no static carveout for {name}")
                carveouts[self.use_case_id(name)] = (cv.base, cv.size)
        return {"protmem": o.protmem,
                "protmem_use_cases": {self.use_case_id(n): o.protmem_min_size or mm.protmem_min_size
                                      for n in names}
                if o.protmem == "dynamic" else {},
                "protmem_carveouts": carveouts}

    # --- NS-EL1 code ---------------------------------------------------------------------------
    def _load_ns_stubs(self) -> Program:
        base = self.memory_map.layout["ns_stub_base"]
        src = resources.files("firmware").joinpath("ns_stubs.S").read_text()
        prog = assemble(src, base, name="firmware/ns_stubs.S")
        if len(prog.code) > SCRATCH_OFFSET:
            raise PlatformError("NS stubs overflow into the scratch area")
        self.physmem.write(base, prog.code)
        self.ns.invalidate_code(base, prog.end)
        self._va_offset = 0                  # stub VA - PA: 0 until the kernel enables its MMU
        self._smc_entry, self._smc_done = prog.sym("tzemu_ns_smc"), prog.sym("tzemu_ns_smc_done")
        self.scratch = base + SCRATCH_OFFSET
        return prog

    def _stub(self, name: str) -> int:
        return self.ns_stubs.sym(name) + self._va_offset

    # --- the NS-EL1 MMU ---------------------------------------------------------------------
    def _ns_table_read(self, pa: int) -> int:
        """A translation-table walk read: an NS CPU access, judged by the firewall too."""
        self.access.check_access(pa, 8, write=False, secure=False, nsaid=self.cpu_nsaid,
                                 world="NS-EL1")
        return self.physmem.read_u64(pa)

    def _ns_translate(self, view: CpuView, vaddr: int, access: int) -> tuple[int, int] | None:
        """Stage 1 at NS-EL1: flat while TTBR1_EL1 is unset (MMU off), else a table walk.

        TTBR0/TTBR1 are read from the CPU at each TLB miss, so whatever NS-EL1 code installs
        with ``msr`` is what translates; TCR is fixed (4 KiB granule, 48-bit VAs).
        """
        view.read_regs(self._ttbr_ids, self._ttbr_vals, self._ttbr_ptrs)
        ttbr0, ttbr1 = self._ttbr_vals
        if not ttbr1:
            return identity_translate(view, vaddr, access)
        cache = self._walk_cache
        if (ttbr0, ttbr1) != self._walk_key:
            cache.clear()
            self._walk_key = (ttbr0, ttbr1)
        page = vaddr >> 12
        hit = cache.get(page)
        if hit is not None and hit[1] & _NEED[access]:
            return hit
        mmu = self.ns_mmu
        mmu.ttbr0, mmu.ttbr1 = ttbr0 & 0xFFFFFFFFF000, ttbr1 & 0xFFFFFFFFF000
        result = self._ns_mmu_policy(view, vaddr, access)
        if result is not None:
            cache[page] = result
        return result

    def _enable_ns_mmu(self, ttbr0: int, ttbr1: int) -> None:
        ns = self.ns
        ns.write_args([ttbr0, ttbr1])
        ns.run(self._stub("tzemu_ns_set_ttbr"), self._stub("tzemu_ns_set_ttbr_done"))
        ns.flush_tlb()
        self._va_offset = self.kernel.phys_to_virt(0)
        self._smc_entry, self._smc_done = self._stub("tzemu_ns_smc"), self._stub("tzemu_ns_smc_done")

    def smc(self, *args: int) -> tuple[int, ...]:
        """Issue ``smc #0`` from the NS-EL1 stub with x0..x7 = args; return x0..x7."""
        if len(args) > 8:
            raise PlatformError("an SMC takes at most 8 argument registers")
        ns = self.ns
        ns.write_args(tuple(args) + (0,) * (8 - len(args)))
        try:
            ns.run(self._smc_entry, self._smc_done)
        except GuestFault as fault:
            self.bus.emit("fault", "NS-EL1", pc=fault.pc, kind=fault.kind, detail=fault.detail)
            raise
        return ns.read_args()

    @property
    def ffa(self) -> Any:
        """Register-level FF-A helpers (tzemu.ffa_helpers.FfaHelpers) for the ffa ABI."""
        if self.options.abi != "ffa":
            raise PlatformError("Platform.ffa needs abi='ffa'")
        if self._ffa is None:
            from tzemu.ffa_helpers import FfaHelpers
            self._ffa = FfaHelpers(self)
        return self._ffa

    def smc_loop(self, count: int, *args: int) -> tuple[int, ...]:
        """Issue ``count`` identical SMCs from an AArch64 loop at NS-EL1 (benchmarks)."""
        ns = self.ns
        regs = tuple(args) + (0,) * (8 - len(args))
        for i, v in enumerate(regs):
            ns.set_x(10 + i, v)
        ns.set_x(9, count)
        ns.run(self._stub("tzemu_ns_smc_loop"), self._stub("tzemu_ns_smc_loop_done"))
        return ns.read_args()

    def _ns_copy(self, pa: int, size: int, direction: str, data: bytes = b"") -> bytes:
        """Copy between ``pa`` (mapped by the kernel for the occasion, like /dev/mem) and the
        platform's scratch page with the NS-EL1 copy stub: real loads and stores at NS-EL1."""
        ns, k = self.ns, self.kernel
        va = k.ioremap(pa, size)
        scratch_va = k.phys_to_virt(self.scratch)
        if direction == "write":
            self.physmem.write(self.scratch, data)
        src, dst = (va, scratch_va) if direction == "read" else (scratch_va, va)
        ns.write_args([src, dst, size])
        try:
            ns.run(self._stub("tzemu_ns_copy"), self._stub("tzemu_ns_copy_done"))
        except GuestFault as fault:
            at = pa + ((ns.x(0) if direction == "read" else ns.x(1)) - va)
            self.bus.emit("fault", "NS-EL1", pc=fault.pc, kind=fault.kind, detail=fault.detail,
                          address=at)
            reason = fault.denial.reason if fault.denial else fault.detail
            fail = self.access.last_fail if fault.denial and "TZC" in reason else {}
            raise ProtectionFault(at, size - (at - pa), direction, "NS-EL1", reason,
                                  fail) from None
        finally:
            k.iounmap(va, size)
            ns.flush_tlb()
        return self.physmem.read(self.scratch, size) if direction == "read" else b""

    def ns_read(self, pa: int, size: int) -> bytes:
        """Real NS-EL1 loads of ``size`` bytes at ``pa`` (raises ProtectionFault if denied)."""
        return b"".join(self._ns_copy(pa + off, min(SCRATCH_SIZE, size - off), "read")
                        for off in range(0, size, SCRATCH_SIZE))

    def ns_write(self, pa: int, data: bytes) -> None:
        """Real NS-EL1 stores of ``data`` at ``pa`` (raises ProtectionFault if denied)."""
        for off in range(0, len(data), SCRATCH_SIZE):
            self._ns_copy(pa + off, len(data[off:off + SCRATCH_SIZE]), "write",
                          data[off:off + SCRATCH_SIZE])

    # --- introspection ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What the normal world probed (tzemu info --json)."""
        pi = self.probe_info
        if pi is None:
            raise PlatformError("the OP-TEE driver was not probed (probe_linux=False)")
        consts = self.kernel.abi.constants
        base = {"platform": self.memory_map.name, "abi": self.options.abi,
                "memory_map": [{"name": r.name, "base": r.base, "size": r.size,
                                "secure": r.secure} for r in self.memory_map.regions]}
        if self.options.abi == "ffa":
            part = pi.partition
            return {**base,
                    "ffa_version": f"{pi.ffa_version >> 16}.{pi.ffa_version & 0xFFFF}",
                    "partition_id": part.id if part else None,
                    "os_uuid": str(part.uuid) if part else None,
                    "api_revision": f"{pi.api_revision[0]}.{pi.api_revision[1]}",
                    "os_revision": "%d.%d" % pi.os_revision[:2],
                    "os_build_id": pi.os_revision[2],
                    "sec_caps": cap_names(consts, "OPTEE_FFA_SEC_CAP_", pi.sec_caps),
                    "sec_caps_value": pi.sec_caps,
                    "threads": self.secure_os.config.num_threads}
        os_uuid = self.smc(secure_abi().c.OPTEE_SMC_CALL_GET_OS_UUID)[:4]
        return {**base,
                "api_uid": words_to_uuid(pi.api_uid),
                "api_revision": f"{pi.api_revision[0]}.{pi.api_revision[1]}",
                "os_uuid": words_to_uuid(tuple(w & 0xFFFFFFFF for w in os_uuid)),
                "os_revision": "%d.%d" % pi.os_revision[:2],
                "os_build_id": pi.os_revision[2],
                "sec_caps": cap_names(consts, "OPTEE_SMC_SEC_CAP_", pi.sec_caps),
                "sec_caps_value": pi.sec_caps,
                "threads": pi.thread_count}


def words_to_uuid(words: tuple[int, ...]) -> str:
    """Four 32-bit words, each big-endian over the UUID's 16 bytes in order."""
    raw = b"".join((w & 0xFFFFFFFF).to_bytes(4, "big") for w in words)
    return str(uuidlib.UUID(bytes=raw))


def cap_names(constants: dict[str, int], prefix: str, caps: int) -> list[str]:
    """Names of the capability bits set in ``caps`` (``prefix`` + NAME constants)."""
    names = []
    for name, value in sorted(constants.items(), key=lambda kv: kv[1]):
        if name.startswith(prefix) and value and caps & value == value:
            names.append(name[len(prefix):])
    return names
