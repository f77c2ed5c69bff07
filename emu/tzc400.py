"""Arm CoreLink TZC-400: the address-space controller every DRAM access goes through.

The device model in the QEMU ``tz-mpc.c`` habit: the register map is declared once below (offsets
and fields named after the TRM, see ``/work/shared/abi/tzc400.md``), reset values are documented,
the first failure per filter is captured, the response is configurable (ACTION) and every denial
or configuration change is an event. Verdicts are page granular (regions are 4 KiB aligned), so
the CPU views can cache them in TLB entries (``page_permissions``) and drop them on ``on_change``.

Reset state (the TRM's, where the fact sheet gives it):
  ACTION = 0 (NONE: OKAY, no interrupt; TF-A/OP-TEE set ERR at init); GATE_KEEPER = 0 (every gate
  closed: nothing passes until the secure world opens the filters); SPECULATION_CTRL = 0;
  INT_STATUS = 0; FAIL_* = 0; region 0: base 0, top all ones up to ``address_width``,
  s_rd = s_wr = 0, ID_ACCESS = 0 (no access at all); regions 1..n: BASE = 0, TOP = 0xFFF,
  ATTRIBUTES = 0 (disabled), ID_ACCESS = 0.

Modelling choices (undefined or unknowable on hardware; tzemu picks the safe, visible option):
  * BASE_LOW bits 11:0 are RAZ/WI and TOP_LOW bits 11:0 read as 0xFFF, so every region covers
    whole pages and (top + 1) is 4 KiB aligned; writing other low bits emits ``tzc_misuse``.
  * An access hitting >= 2 enabled regions >= 1 on one filter (undefined on hardware) is denied,
    sets the filter's overlap bit and is latched like a permission failure.
  * A closed gate stalls transactions on hardware; a Python caller cannot stall, so the access is
    denied ("filter gate closed") and latched like a permission failure.
  * A region whose base > top never matches. Addresses at or above 2**address_width are denied.
  * An access range is judged per 4 KiB page; one denied page denies the whole access, and the
    fail address latched is the first denied byte.
  * Region writes while a gate they affect is open are applied (the TRM calls them unpredictable,
    OP-TEE would panic) and emit ``tzc_misuse``; so does programming overlapping regions.
  * Only the secure world may program the TZC: the MMIO router in front of ``read``/``write``
    enforces that, not this model.
"""
from __future__ import annotations

import enum
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable

from emu.events import EventBus
# The register map lives in emu/tzc400_regs.py; re-exported here so ``tzc400.REGION_BASE_LOW(n)``
# and friends stay one import away for the model's users.
from emu.tzc400_regs import *  # noqa: F401,F403
from emu.tzc400_regs import (ACTION, ACTION_REACTION_VALUE_MASK, BUILD_CONFIG,
                             BUILD_CONFIG_ADDRESS_WIDTH_SHIFT, BUILD_CONFIG_NO_OF_FILTERS_SHIFT,
                             FAIL_BASE, FAIL_CONTROL_DIRECTION_WRITE, FAIL_CONTROL_NON_SECURE,
                             FAIL_CONTROL_PRIVILEGED, FAIL_ID_MASK, FAIL_STRIDE, GATE_KEEPER,
                             GATE_KEEPER_OPEN_STATUS_SHIFT, ID_REGISTERS, INT_CLEAR, INT_STATUS,
                             INT_STATUS_OVERLAP_SHIFT, INT_STATUS_OVERRUN_SHIFT,
                             REGION_ATTRIBUTES_S_RD_EN, REGION_ATTRIBUTES_S_WR_EN, REGION_BASE,
                             REGION_BASE_LOW_MASK, REGION_ID_ACCESS_NSAID_WR_SHIFT, REGION_STRIDE,
                             REGION_TOP_LOW_ONES, SPECULATION_CTRL, SPECULATION_CTRL_MASK,
                             _S_RD_BIT, _S_WR_BIT, register_name)

PAGE = 0x1000




class TzcAction(enum.IntEnum):
    """ACTION.reaction_value (TF-A ``TZC_ACTION_*``)."""
    NONE = 0
    ERR = 1
    INT = 2
    ERR_INT = 3


class TzcResponse(enum.Enum):
    OKAY = "OKAY"
    DECERR = "DECERR"


@dataclass(frozen=True)
class TzcVerdict:
    allowed: bool
    region: int | None        # region that decided (first denied page, else first page)
    overlap: bool
    response: TzcResponse
    interrupt: bool
    reason: str


@dataclass(frozen=True)
class TzcRegion:
    index: int
    base: int
    top: int                  # inclusive
    s_rd: bool
    s_wr: bool
    filters: int              # filter_en bits
    nsaid_rd: int             # 16-bit mask
    nsaid_wr: int             # 16-bit mask


class _Filter:
    """One filter's precomputed view: sorted segment starts and, per segment, what decides."""
    __slots__ = ("starts", "region", "perms", "overlap")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.region: list[int | None] = []       # None: beyond the address space
        self.perms: list[int] = []               # rd mask | wr mask << 16 | s_rd << 32 | s_wr << 33
        self.overlap: list[tuple[int, ...]] = []  # regions >= 1 hitting the segment when >= 2


class Tzc400:
    """A TZC-400 with ``filters`` filters, ``regions`` regions and an ``address_width``-bit bus."""

    FRAME_SIZE = 0x1000

    def __init__(self, *, filters: int = 1, address_width: int = 40, regions: int = 9,
                 bus: EventBus | None = None, name: str = "tzc400"):
        if not 1 <= filters <= 4 or not 32 <= address_width <= 64 or not 1 <= regions <= 9:
            raise ValueError("TZC-400 supports 1..4 filters, 32..64 address bits, 1..9 regions")
        self.filters, self.address_width, self.nregions = filters, address_width, regions
        self.bus, self.name = bus or EventBus(), name
        self._filter_mask = (1 << filters) - 1
        self._addr_limit = 1 << address_width
        self._high_mask = (1 << (address_width - 32)) - 1
        self._build_config = ((filters - 1) << BUILD_CONFIG_NO_OF_FILTERS_SHIFT
                              | (address_width - 1) << BUILD_CONFIG_ADDRESS_WIDTH_SHIFT
                              | (regions - 1))
        self._callbacks: list[Callable[[], None]] = []
        self.reset()

    def reset(self) -> None:
        """Back to the documented reset state (module docstring)."""
        self._action, self._gates, self._spec, self._int_status = TzcAction.NONE, 0, 0, 0
        self._fail = [[0, 0, 0] for _ in range(self.filters)]      # address, control, id
        self._base = [0] * self.nregions
        self._top = [REGION_TOP_LOW_ONES] * self.nregions
        self._top[0] = self._addr_limit - 1
        self._attr = [0] * self.nregions
        self._id = [0] * self.nregions
        self._overlaps: set[tuple[int, int, int]] = set()
        self._tables: list[_Filter] | None = None
        self._fire_change()

    # ---- MMIO ---------------------------------------------------------------------------------
    def read(self, offset: int, size: int = 4) -> int:
        """An MMIO read: 4 bytes = one register, 8 bytes (8-aligned) = two, little-endian."""
        if size == 8 and offset % 8 == 0 and 0 <= offset < self.FRAME_SIZE:
            return self._read32(offset) | self._read32(offset + 4) << 32
        if size == 4 and offset % 4 == 0 and 0 <= offset < self.FRAME_SIZE:
            return self._read32(offset)
        return self._bad_access("read", offset, size)

    def write(self, offset: int, size: int, value: int, *, world: str = "") -> None:
        """An MMIO write; RO registers and fields are ignored with a ``tzc_ignored_write`` event."""
        if size == 8 and offset % 8 == 0 and 0 <= offset < self.FRAME_SIZE:
            changed = self._write32(offset, value & 0xFFFFFFFF, world)
            changed |= self._write32(offset + 4, value >> 32 & 0xFFFFFFFF, world)
        elif size == 4 and offset % 4 == 0 and 0 <= offset < self.FRAME_SIZE:
            changed = self._write32(offset, value & 0xFFFFFFFF, world)
        else:
            self._bad_access("write", offset, size)
            return
        if changed:
            self._after_config_write(world)

    def _bad_access(self, direction: str, offset: int, size: int, why: str = "") -> int:
        if self.bus.active:
            self.bus.emit("tzc_bad_access", self.name, direction=direction, offset=offset,
                          size=size, reason=why or "unaligned access or unsupported size")
        return 0

    def _region_of(self, offset: int) -> tuple[int, int] | None:
        """(region, register index 0..5) for a region register of this configuration."""
        rel = offset - REGION_BASE
        if 0 <= rel < self.nregions * REGION_STRIDE and rel % REGION_STRIDE < 0x18:
            n, r = divmod(rel, REGION_STRIDE)
            return n, r // 4
        return None

    def _read32(self, off: int) -> int:
        if off == BUILD_CONFIG:
            return self._build_config
        if off == ACTION:
            return int(self._action)
        if off == GATE_KEEPER:
            return self._gates << GATE_KEEPER_OPEN_STATUS_SHIFT | self._gates
        if off == SPECULATION_CTRL:
            return self._spec
        if off == INT_STATUS:
            return self._int_status
        if off == INT_CLEAR:
            return self._bad_access("read", off, 4, "INT_CLEAR is write-only")
        if off in ID_REGISTERS:
            return ID_REGISTERS[off][1]
        if FAIL_BASE <= off < FAIL_BASE + self.filters * FAIL_STRIDE:
            f, r = divmod(off - FAIL_BASE, FAIL_STRIDE)
            addr, control, ident = self._fail[f]
            return (addr & 0xFFFFFFFF, addr >> 32, control, ident)[r // 4]
        reg = self._region_of(off)
        if reg is None:
            return self._bad_access("read", off, 4, "reserved offset")
        n, r = reg
        return (self._base[n] & 0xFFFFFFFF, self._base[n] >> 32, self._top[n] & 0xFFFFFFFF,
                self._top[n] >> 32, self._attr[n] | (0 if n else self._filter_mask),
                self._id[n])[r]

    def _ignored(self, off: int, value: int, why: str, world: str) -> None:
        if self.bus.active:
            self.bus.emit("tzc_ignored_write", world or self.name, register=register_name(off),
                          offset=off, value=value, reason=why)

    def _misuse(self, what: str, world: str, **fields: Any) -> None:
        if self.bus.active:
            self.bus.emit("tzc_misuse", world or self.name, what=what, **fields)

    def _write32(self, off: int, value: int, world: str) -> bool:
        """Apply one 32-bit write; True when it touched a verdict-relevant register."""
        if off == ACTION:
            self._check_ignored(off, value, ACTION_REACTION_VALUE_MASK, world)
            self._action = TzcAction(value & ACTION_REACTION_VALUE_MASK)
            self._program_event(off, value, world, action=self._action.name)
            return True
        if off == GATE_KEEPER:
            self._check_ignored(off, value, self._filter_mask, world)
            self._gates = value & self._filter_mask   # no outstanding transactions: immediate
            self._program_event(off, value, world, open_status=self._gates)
            return True
        if off == SPECULATION_CTRL:
            self._check_ignored(off, value, SPECULATION_CTRL_MASK, world)
            self._spec = value & SPECULATION_CTRL_MASK
            self._program_event(off, value, world)
            return False
        if off == INT_CLEAR:
            bits = value & self._filter_mask      # clears status, overrun and overlap
            self._int_status &= ~(bits | bits << INT_STATUS_OVERRUN_SHIFT
                                  | bits << INT_STATUS_OVERLAP_SHIFT)
            if self.bus.active:
                self.bus.emit("tzc_int_clear", world or self.name, filters=bits,
                              int_status=self._int_status)
            return False
        reg = self._region_of(off)
        if reg is None:
            self._ignored(off, value, "read-only or reserved register", world)
            return False
        n, r = reg
        affected = self._filter_mask if n == 0 else self._attr[n] & self._filter_mask
        if n == 0 and r < 4:
            self._ignored(off, value, "region 0 base/top are read-only", world)
            return False
        if r == 0:
            if value & ~REGION_BASE_LOW_MASK:
                self._misuse("unaligned_base", world, region=n, value=value)
            self._base[n] = self._base[n] & ~0xFFFFFFFF | value & REGION_BASE_LOW_MASK
        elif r == 1:
            self._check_ignored(off, value, self._high_mask, world)
            self._base[n] = (value & self._high_mask) << 32 | self._base[n] & 0xFFFFFFFF
        elif r == 2:
            if value & REGION_TOP_LOW_ONES != REGION_TOP_LOW_ONES:
                self._misuse("unaligned_top", world, region=n, value=value)
            self._top[n] = self._top[n] & ~0xFFFFFFFF | value | REGION_TOP_LOW_ONES
        elif r == 3:
            self._check_ignored(off, value, self._high_mask, world)
            self._top[n] = (value & self._high_mask) << 32 | self._top[n] & 0xFFFFFFFF
        elif r == 4:
            writable = REGION_ATTRIBUTES_S_WR_EN | REGION_ATTRIBUTES_S_RD_EN
            if n:
                writable |= self._filter_mask
            self._check_ignored(off, value, writable, world,
                                "region 0 filter_en is read-only" if n == 0 else "")
            self._attr[n] = value & writable
            affected |= self._attr[n] & self._filter_mask
        else:
            self._id[n] = value
        if self._gates & affected:
            self._misuse("program_while_gate_open", world, register=register_name(off),
                         open_gates=self._gates, region_filters=affected)
        self._program_event(off, value, world, region=n)
        return True

    def _check_ignored(self, off: int, value: int, writable: int, world: str, why: str = "") -> None:
        if value & ~writable:
            self._ignored(off, value & ~writable, why or "read-only or reserved bits", world)

    def _program_event(self, off: int, value: int, world: str, **fields: Any) -> None:
        if self.bus.active:
            self.bus.emit("tzc_program", world or self.name, register=register_name(off),
                          offset=off, value=value, readback=self._read32(off), **fields)

    def _after_config_write(self, world: str) -> None:
        self._tables = None
        pairs = self._overlap_pairs()
        for f, a, b in sorted(pairs - self._overlaps):
            self._misuse("overlap", world, filter=f, regions=(a, b))
        self._overlaps = pairs
        self._fire_change()

    def _fire_change(self) -> None:
        for cb in list(self._callbacks):
            cb()

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after every write that can change a verdict; returns unsubscribe."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        return unsubscribe

    # ---- configuration view -------------------------------------------------------------------
    def regions(self) -> list[TzcRegion]:
        out = []
        for n in range(self.nregions):
            attr = self._attr[n] | (self._filter_mask if n == 0 else 0)
            out.append(TzcRegion(n, self._base[n], self._top[n],
                                 bool(attr & REGION_ATTRIBUTES_S_RD_EN),
                                 bool(attr & REGION_ATTRIBUTES_S_WR_EN),
                                 attr & self._filter_mask, self._id[n] & 0xFFFF,
                                 self._id[n] >> REGION_ID_ACCESS_NSAID_WR_SHIFT & 0xFFFF))
        return out

    def _overlap_pairs(self) -> set[tuple[int, int, int]]:
        live = [r for r in self.regions()[1:] if r.filters and r.base <= r.top]
        return {(f, a.index, b.index) for i, a in enumerate(live) for b in live[i + 1:]
                for f in range(self.filters) if (a.filters & b.filters) >> f & 1
                and a.base <= b.top and b.base <= a.top}

    def _build_tables(self) -> list[_Filter]:
        """Per filter, cut the address space into segments with one decision each."""
        regs = self.regions()
        tables = []
        for f in range(self.filters):
            live = [r for r in regs[1:] if r.filters >> f & 1 and r.base <= r.top]
            cuts = sorted({0, self._addr_limit} | {r.base for r in live}
                          | {r.top + 1 for r in live})
            t = _Filter()
            for start in cuts:
                hits = tuple(r.index for r in live if r.base <= start <= r.top)
                t.starts.append(start)
                t.overlap.append(hits if len(hits) >= 2 else ())
                if start >= self._addr_limit:
                    t.region.append(None)
                    t.perms.append(0)
                    continue
                r = regs[hits[0]] if len(hits) == 1 else regs[0]
                t.region.append(r.index if len(hits) < 2 else hits[0])
                t.perms.append(0 if len(hits) >= 2 else
                               r.nsaid_rd | r.nsaid_wr << 16 | r.s_rd << _S_RD_BIT
                               | r.s_wr << _S_WR_BIT)
            tables.append(t)
        self._tables = tables
        return tables

    # ---- judging accesses ---------------------------------------------------------------------
    def _judge(self, pa: int, size: int, write: bool, secure: bool, nsaid: int,
               filter: int) -> tuple[bool, int | None, bool, str, int]:
        """(allowed, region, overlap, reason, first denied address); no side effects."""
        if not 0 <= filter < self.filters:
            raise ValueError(f"{self.name} has no filter {filter}")
        if not 0 <= nsaid <= 15:
            raise ValueError(f"NSAID {nsaid} is not a 4-bit value")
        t = (self._tables or self._build_tables())[filter]
        i = bisect_right(t.starts, pa) - 1
        if i < 0:
            return False, None, False, "negative address", pa
        if not self._gates >> filter & 1:
            return False, t.region[i], False, "filter gate closed", pa
        bit = (_S_WR_BIT if write else _S_RD_BIT) if secure else nsaid + 16 * write
        end, addr, first = pa + max(size, 1), pa, t.region[i]
        nstarts = len(t.starts)
        while addr < end:
            region = t.region[i]
            if t.overlap[i]:
                regs = ", ".join(map(str, t.overlap[i]))
                return False, region, True, f"overlap of regions {regs} on filter {filter}", addr
            if region is None:
                return (False, None, False,
                        f"address beyond the {self.address_width}-bit address space", addr)
            if not t.perms[i] >> bit & 1:
                who = "secure" if secure else f"NSAID {nsaid}"
                return (False, region, False, f"{who} {'write' if write else 'read'} not "
                        f"enabled in region {region} (filter {filter})", addr)
            i += 1
            addr = t.starts[i] if i < nstarts else end
        return True, first, False, f"allowed by region {first}", pa

    def check(self, pa: int, size: int, *, write: bool, secure: bool, nsaid: int,
              filter: int = 0, master_id: int = 0, privileged: bool = True,
              world: str = "") -> TzcVerdict:
        """Judge one access and latch a failure as the hardware does (first fault per filter)."""
        ok, region, overlap, reason, fail_addr = self._judge(pa, size, write, secure, nsaid, filter)
        if ok:
            return TzcVerdict(True, region, False, TzcResponse.OKAY, False, reason)
        action = self._action
        response = TzcResponse.DECERR if action in (TzcAction.ERR, TzcAction.ERR_INT) \
            else TzcResponse.OKAY
        interrupt = action in (TzcAction.INT, TzcAction.ERR_INT)
        fbit = 1 << filter
        latched = not self._int_status & fbit
        if latched:
            control = ((FAIL_CONTROL_DIRECTION_WRITE if write else 0)
                       | (0 if secure else FAIL_CONTROL_NON_SECURE)
                       | (FAIL_CONTROL_PRIVILEGED if privileged else 0))
            self._fail[filter] = [fail_addr & (self._addr_limit - 1), control,
                                  master_id & FAIL_ID_MASK]
            self._int_status |= fbit
        else:
            self._int_status |= fbit << INT_STATUS_OVERRUN_SHIFT
        if overlap:
            self._int_status |= fbit << INT_STATUS_OVERLAP_SHIFT
        if self.bus.active:
            self.bus.emit("tzc_verdict", world or self.name, allowed=False, address=pa, size=size,
                          fail_address=fail_addr, direction="write" if write else "read",
                          secure=secure, nsaid=nsaid, filter=filter, master_id=master_id,
                          region=region, overlap=overlap, response=response.value,
                          interrupt=interrupt, latched=latched, reason=reason)
        return TzcVerdict(False, region, overlap, response, interrupt, reason)

    def permits(self, pa: int, size: int, *, write: bool, secure: bool, nsaid: int,
                filter: int = 0) -> bool:
        """The judgement of ``check`` without latching or events (for building TLB entries)."""
        return self._judge(pa, size, write, secure, nsaid, filter)[0]

    def page_permissions(self, page_pa: int, *, secure: bool, nsaid: int,
                         filter: int = 0) -> tuple[bool, bool]:
        """(read_ok, write_ok) for the 4 KiB page holding ``page_pa``: one bisect, no loops."""
        if not self._gates >> filter & 1 or page_pa < 0:
            if not 0 <= filter < self.filters:
                raise ValueError(f"{self.name} has no filter {filter}")
            return False, False
        t = (self._tables or self._build_tables())[filter]
        p = t.perms[bisect_right(t.starts, page_pa & ~(PAGE - 1)) - 1]
        if secure:
            return bool(p >> _S_RD_BIT & 1), bool(p >> _S_WR_BIT & 1)
        if not 0 <= nsaid <= 15:
            raise ValueError(f"NSAID {nsaid} is not a 4-bit value")
        return bool(p >> nsaid & 1), bool(p >> (nsaid + 16) & 1)

    # ---- status -------------------------------------------------------------------------------
    def int_status(self) -> int:
        return self._int_status

    def fail_state(self, filter: int = 0) -> dict[str, Any]:
        """The latched fail registers of one filter, raw and decoded."""
        addr, control, ident = self._fail[filter]
        st = self._int_status
        return {"FAIL_ADDRESS": addr, "FAIL_ADDRESS_LOW": addr & 0xFFFFFFFF,
                "FAIL_ADDRESS_HIGH": addr >> 32, "FAIL_CONTROL": control, "FAIL_ID": ident,
                "direction": "write" if control & FAIL_CONTROL_DIRECTION_WRITE else "read",
                "secure": not control & FAIL_CONTROL_NON_SECURE,
                "privileged": bool(control & FAIL_CONTROL_PRIVILEGED),
                "status": bool(st >> filter & 1),
                "overrun": bool(st >> (filter + INT_STATUS_OVERRUN_SHIFT) & 1),
                "overlap": bool(st >> (filter + INT_STATUS_OVERLAP_SHIFT) & 1)}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "build_config": self._build_config,
                "action": self._action.name, "gate_keeper": self._read32(GATE_KEEPER),
                "speculation_ctrl": self._spec, "int_status": self._int_status,
                "regions": [{"index": r.index, "base": r.base, "top": r.top, "s_rd": r.s_rd,
                             "s_wr": r.s_wr, "filters": r.filters, "nsaid_rd": r.nsaid_rd,
                             "nsaid_wr": r.nsaid_wr, "enabled": r.index == 0 or r.filters != 0}
                            for r in self.regions()],
                "fails": [self.fail_state(f) for f in range(self.filters)]}
