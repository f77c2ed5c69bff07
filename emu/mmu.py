"""The simulated MMU: a VMSAv8-64 stage-1 table walker, 4 KiB granule.

The NS-EL1 view does not see physical memory directly: like a real core, it translates through
stage-1 tables that the Linux model builds in NS memory (``linux_side/pgtable.py``). Walking
real descriptors — rather than trusting a Python dict of mappings — is what lets the kernel
build a mapping of a protected page, as a buggy or hostile kernel can on hardware, and still
see the access fault at the TZC: the MMU says "allowed", the firewall says "no".

Only the parts of the architecture that change an access verdict are modelled: the
TTBR0/TTBR1 split by TxSZ, start level by input size, table/block/page descriptors, the
access flag, output-address size, AP[2:1], PXN/UXN, the implicit PXN of EL0-writable pages and
the hierarchical APTable/PXNTable/UXNTable controls. Memory attributes (AttrIndx, SH, NS) are
decoded and reported but do not affect the verdict. PAN, WXN, hardware AF/dirty management,
the contiguous hint and TBI are not modelled.

Nothing is cached between walks: the cache is the CPU view's TLB, which the owner of the
tables flushes after changing them, exactly where Linux would issue a TLBI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE
from unicorn.unicorn_const import UC_MEM_FETCH, UC_MEM_WRITE

from emu.physmem import BusError

if TYPE_CHECKING:
    from emu.cpu import CpuView

MASK64 = (1 << 64) - 1
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
ENTRIES = 512
# VA bits each level resolves (4 KiB granule): level n indexes VA[shift+8:shift].
LEVEL_SHIFT = {0: 39, 1: 30, 2: 21, 3: 12}
BLOCK_SIZE = {1: 1 << 30, 2: 1 << 21, 3: 1 << 12}
MIN_TXSZ, MAX_TXSZ = 16, 39          # 48-bit .. 25-bit VA without FEAT_LVA

# --- descriptor bits (Arm ARM D8.3, "Translation table descriptor formats") ---------------
DESC_VALID = 1 << 0
DESC_TABLE = 1 << 1          # with VALID: table at levels 0-2, page at level 3
DESC_PAGE = DESC_TABLE
DESC_BLOCK = 0               # VALID with bit 1 clear: block at levels 1-2
DESC_TYPE_MASK = 0b11


def ATTRINDX(n: int) -> int:  # noqa: N802 - named like the Arm ARM field
    """AttrIndx[2:0] (bits 4:2): index into MAIR_ELx."""
    if not 0 <= n < 8:
        raise ValueError(f"AttrIndx {n} out of range 0..7")
    return n << 2


ATTRINDX_MASK = 0b111 << 2
NS = 1 << 5                  # output is Non-secure (ignored in Non-secure state)
AP_EL0 = 1 << 6              # AP[1]: EL0 may access
AP_RO = 1 << 7               # AP[2]: read-only at every EL
SH_NONE = 0b00 << 8
SH_OUTER = 0b10 << 8
SH_INNER = 0b11 << 8
AF = 1 << 10                 # access flag: 0 faults on first use (software-managed)
NG = 1 << 11                 # not global (ASID-tagged)
CONTIG = 1 << 52             # contiguous hint (not modelled)
PXN = 1 << 53                # privileged execute-never
UXN = 1 << 54                # unprivileged execute-never (XN)
PXN_TABLE = 1 << 59          # table: PXN for every later level
UXN_TABLE = 1 << 60          # table: UXN for every later level
AP_TABLE_NO_EL0 = 1 << 61    # table: APTable[0], no EL0 access at later levels
AP_TABLE_RO = 1 << 62        # table: APTable[1], read-only at later levels
NS_TABLE = 1 << 63           # table: later levels are Non-secure
TABLE_ATTR_MASK = PXN_TABLE | UXN_TABLE | AP_TABLE_NO_EL0 | AP_TABLE_RO | NS_TABLE
LOWER_ATTR_MASK = 0xFFC      # bits 11:2 of a block/page descriptor
UPPER_ATTR_MASK = 0xFFF << 52
OA_MASK = ((1 << 52) - 1) & ~(PAGE_SIZE - 1)  # bits 51:12; above pa_bits -> address size fault
PA_BITS = 48
TTBR_BADDR_MASK = ((1 << 48) - 1) & ~1        # BADDR[47:1]; [63:48] is the ASID, bit 0 CnP

FAULT_KINDS = ("translation", "access_flag", "address_size", "permission", "external_abort")
_R, _W, _X = UC_PROT_READ, UC_PROT_WRITE, UC_PROT_EXEC


def start_level(va_bits: int) -> int:
    """First lookup level for an input range of ``va_bits`` (4 KiB granule, no concatenation)."""
    if not 64 - MAX_TXSZ <= va_bits <= 64 - MIN_TXSZ:
        raise ValueError(f"{va_bits}-bit VA not supported (TxSZ must be {MIN_TXSZ}..{MAX_TXSZ})")
    return 4 - (va_bits - PAGE_SHIFT + 8) // 9


def leaf_attrs(*, writable: bool = True, user: bool = False, pxn: bool = True,
               uxn: bool = True, af: bool = True, ns: bool = False, attr_index: int = 0,
               sh: int = SH_INNER, ng: bool = False) -> int:
    """Attribute bits shared by block and page descriptors (execute-never by default)."""
    return ((0 if writable else AP_RO) | (AP_EL0 if user else 0) | (PXN if pxn else 0)
            | (UXN if uxn else 0) | (AF if af else 0) | (NS if ns else 0) | ATTRINDX(attr_index)
            | sh | (NG if ng else 0))


def _oa(pa: int, align: int) -> int:
    if pa & (align - 1) or pa < 0 or pa & ~OA_MASK & ~(align - 1):
        raise ValueError(f"output address {pa:#x} not {align:#x}-aligned or out of range")
    return pa


def page_descriptor(pa: int, **attrs: bool | int) -> int:
    """A level-3 page descriptor mapping the 4 KiB page at ``pa`` (see :func:`leaf_attrs`)."""
    return _oa(pa, PAGE_SIZE) | leaf_attrs(**attrs) | DESC_PAGE | DESC_VALID


def block_descriptor(pa: int, level: int, **attrs: bool | int) -> int:
    """A level-1 (1 GiB) or level-2 (2 MiB) block descriptor."""
    if level not in (1, 2):
        raise ValueError(f"4 KiB granule blocks exist at levels 1 and 2, not {level}")
    return _oa(pa, BLOCK_SIZE[level]) | leaf_attrs(**attrs) | DESC_BLOCK | DESC_VALID


def table_descriptor(table_pa: int, *, pxn_table: bool = False, uxn_table: bool = False,
                     ap_table_no_el0: bool = False, ap_table_ro: bool = False,
                     ns_table: bool = False) -> int:
    """A level-0..2 descriptor pointing at the next-level table at ``table_pa``."""
    return (_oa(table_pa, PAGE_SIZE) | DESC_TABLE | DESC_VALID
            | (PXN_TABLE if pxn_table else 0) | (UXN_TABLE if uxn_table else 0)
            | (AP_TABLE_NO_EL0 if ap_table_no_el0 else 0) | (AP_TABLE_RO if ap_table_ro else 0)
            | (NS_TABLE if ns_table else 0))


def descriptor(kind: str, address: int, level: int = 3, **attrs: bool | int) -> int:
    """Any descriptor by name: ``'table'``, ``'block'`` (level 1/2) or ``'page'``."""
    if kind == "table":
        return table_descriptor(address, **attrs)  # type: ignore[arg-type]
    if kind == "block":
        return block_descriptor(address, level, **attrs)
    if kind == "page":
        return page_descriptor(address, **attrs)
    raise ValueError(f"unknown descriptor kind {kind!r}")


@dataclass(frozen=True)
class Translation:
    """The result of a successful walk: where the byte is and what the leaf allows.

    ``readable`` is always true (EL1 may read every valid mapping; PAN is not modelled);
    ``executable`` is EL1 execute (not PXN, and not an EL0-writable page); ``user`` is EL0
    access (AP[1]); ``user_exec`` is EL0 execute (not UXN). Hierarchical table controls are
    already folded in.
    """

    va: int
    pa: int
    page_pa: int
    level: int
    block_size: int
    readable: bool
    writable: bool
    executable: bool
    user: bool
    user_exec: bool
    af: bool
    ns_bit: bool
    attr_index: int
    descriptor: int = 0


class TranslationFault(Exception):
    """A stage-1 fault as the core would report it in ESR.DFSC: kind and level."""

    def __init__(self, va: int, level: int, kind: str, message: str):
        super().__init__(f"{kind.replace('_', ' ')} fault, level {level}, VA {va:#x}: {message}")
        self.va, self.level, self.kind, self.message = va, level, kind, message


@dataclass
class MmuStats:
    """Counters for the cost report; ``stats['walks']`` works as well as ``stats.walks``."""

    walks: int = 0
    faults: int = 0
    descriptor_reads: int = 0

    def __getitem__(self, key: str) -> int:
        return getattr(self, key)


Policy = Callable[["CpuView", int, int], Optional[tuple[int, int]]]
SecureCheck = Callable[[int, bool], Optional[str]]


def _walk_read_errors() -> tuple[type[BaseException], ...]:
    """What a failed descriptor read raises: a synchronous external abort on the walk.

    Resolved when an MMU is built, not at import, so emu.protection may import this module.
    """
    from emu.protection import ProtectionFault   # the firewall refused the walk's read
    return (BusError, ProtectionFault)


class Stage1Mmu:
    """One EL1&0 stage-1 regime: TTBR0/TTBR1, T0SZ/T1SZ, and the EL the CPU view runs at.

    ``ttbr0``/``ttbr1`` may be reassigned at any time (a context switch); the caller then
    flushes the CPU view's TLB. ``read_u64`` reads a descriptor from physical memory.
    """

    def __init__(self, read_u64: Callable[[int], int], *, t0sz: int = 16, t1sz: int = 16,
                 ttbr0: int = 0, ttbr1: int = 0, el: int = 1, pa_bits: int = PA_BITS):
        if el not in (0, 1):
            raise ValueError(f"the EL1&0 regime serves EL0 and EL1, not EL{el}")
        if not 32 <= pa_bits <= 48:
            raise ValueError(f"pa_bits {pa_bits} outside 32..48")
        self.read_u64 = read_u64
        self.t0sz, self.t1sz = t0sz, t1sz
        self.ttbr0, self.ttbr1 = ttbr0, ttbr1
        self.el, self.pa_bits = el, pa_bits
        self.stats = MmuStats()
        self._read_errors = _walk_read_errors()

    @property
    def t0sz(self) -> int:
        return self._t0sz

    @t0sz.setter
    def t0sz(self, value: int) -> None:
        self._start0 = start_level(64 - value)
        self._t0sz = value

    @property
    def t1sz(self) -> int:
        return self._t1sz

    @t1sz.setter
    def t1sz(self, value: int) -> None:
        self._start1 = start_level(64 - value)
        self._t1sz = value

    # --- the walk ------------------------------------------------------------------------
    def _fault(self, va: int, level: int, kind: str, message: str) -> TranslationFault:
        self.stats.faults += 1
        return TranslationFault(va, level, kind, message)

    def walk(self, va: int) -> Translation:
        """Translate ``va`` through the tables; raise :class:`TranslationFault` on a fault."""
        stats = self.stats
        stats.walks += 1
        va &= MASK64
        if va >> (64 - self._t0sz) == 0:
            va_bits, level, ttbr = 64 - self._t0sz, self._start0, self.ttbr0
        elif va >> (64 - self._t1sz) == (1 << self._t1sz) - 1:
            va_bits, level, ttbr = 64 - self._t1sz, self._start1, self.ttbr1
        else:
            raise self._fault(va, 0, "translation", "VA outside the TTBR0 and TTBR1 ranges")
        pa_limit = 1 << self.pa_bits
        shift = LEVEL_SHIFT[level]
        index_mask = (1 << (va_bits - shift)) - 1
        table = ttbr & TTBR_BADDR_MASK & ~((index_mask + 1) * 8 - 1 | 0x3F)
        if table >= pa_limit:
            raise self._fault(va, 0, "address_size", f"TTBR base {table:#x} beyond the PA size")
        hier = 0
        read, read_errors = self.read_u64, self._read_errors
        while True:
            addr = table + 8 * ((va >> shift) & index_mask)
            try:
                desc = read(addr)
            except read_errors as exc:
                raise self._fault(va, level, "external_abort",
                                  f"descriptor read at PA {addr:#x} failed: {exc}") from None
            stats.descriptor_reads += 1
            if not desc & DESC_VALID:
                raise self._fault(va, level, "translation",
                                  f"invalid descriptor {desc:#x} at PA {addr:#x}")
            oa = desc & OA_MASK
            if desc & DESC_TABLE and level < 3:
                if oa >= pa_limit:
                    raise self._fault(va, level, "address_size",
                                      f"next-level table {oa:#x} beyond the PA size")
                hier |= desc
                table, level = oa, level + 1
                shift, index_mask = LEVEL_SHIFT[level], ENTRIES - 1
                continue
            if level == 0 or (level == 3 and not desc & DESC_TABLE):
                raise self._fault(va, level, "translation",
                                  f"reserved descriptor {desc:#x} at level {level}")
            size = 1 << shift
            oa &= ~(size - 1)
            if oa >= pa_limit:
                raise self._fault(va, level, "address_size",
                                  f"output address {oa:#x} beyond the {self.pa_bits}-bit PA size")
            if not desc & AF:
                raise self._fault(va, level, "access_flag", "access flag is 0")
            return self._leaf(va, oa | (va & (size - 1)), level, size, desc, hier)

    @staticmethod
    def _leaf(va: int, pa: int, level: int, size: int, desc: int, hier: int) -> Translation:
        writable = not (desc & AP_RO or hier & AP_TABLE_RO)
        user = bool(desc & AP_EL0) and not hier & AP_TABLE_NO_EL0
        # An EL0-writable page is never executable at EL1 (Arm ARM: AP[2:1]=0b01 implies PXN).
        executable = not (desc & PXN or hier & PXN_TABLE or (user and writable))
        return Translation(
            va=va, pa=pa, page_pa=pa & ~(PAGE_SIZE - 1), level=level, block_size=size,
            readable=True, writable=writable, executable=executable, user=user,
            user_exec=not (desc & UXN or hier & UXN_TABLE), af=bool(desc & AF),
            ns_bit=bool(desc & NS or hier & NS_TABLE), attr_index=(desc & ATTRINDX_MASK) >> 2,
            descriptor=desc)

    # --- permissions -----------------------------------------------------------------------
    @staticmethod
    def perms(t: Translation, el: int) -> int:
        """The UC_PROT_* bits the leaf grants at ``el`` (what a TLB entry may hold)."""
        if el == 0:
            if not t.user:
                return _X if t.user_exec else 0   # EL0 execute-only memory
            return _R | (_W if t.writable else 0) | (_X if t.user_exec else 0)
        return _R | (_W if t.writable else 0) | (_X if t.executable else 0)

    def _denied(self, t: Translation, write: bool, fetch: bool, el: int) -> TranslationFault:
        what = "fetch" if fetch else "write" if write else "read"
        if el == 0 and not t.user and not fetch:
            why = "page is not EL0-accessible (AP[1]=0)"
        elif fetch:
            why = "execute-never (UXN)" if el == 0 else "privileged execute-never (PXN)"
        else:
            why = "page is read-only (AP[2]=1)"
        return self._fault(t.va, t.level, "permission", f"EL{el} {what} denied: {why}")

    def check(self, va: int, *, write: bool, fetch: bool, el: int | None = None) -> Translation:
        """Walk and apply the stage-1 permission check for one access (``el`` defaults to
        the regime's EL, 1 unless configured)."""
        el = self.el if el is None else el
        t = self.walk(va)
        need = _X if fetch else _W if write else _R
        if not self.perms(t, el) & need:
            raise self._denied(t, write, fetch, el)
        return t

    # --- the CPU view's TLB-fill policy -----------------------------------------------------
    def translate_policy(self, secure_check: SecureCheck | None = None) -> Policy:
        """A :class:`emu.cpu.CpuView` translate policy: MMU first, then the firewall.

        The order matters and mirrors hardware: the MMU decides whether the VA maps and the
        access type is allowed; only then does the physical access reach the TZC, whose
        refusal (``secure_check(page_pa, write)`` returning a reason) is reported as-is.
        Because the TLB entry serves later accesses without asking again, a direction the
        firewall refuses (write on a read fill, or read on a write fill) is dropped from the
        entry's permissions; the next such access misses and is checked on its own.
        """
        walk, perms_of, el = self.walk, self.perms, self.el

        def policy(view: "CpuView", vaddr: int, access: int) -> tuple[int, int] | None:
            try:
                t = walk(vaddr)
            except TranslationFault as fault:
                view.deny(vaddr, access, str(fault), None)
                return None
            perms = perms_of(t, el)
            write, fetch = access == UC_MEM_WRITE, access == UC_MEM_FETCH
            if not perms & (_W if write else _X if fetch else _R):
                view.deny(vaddr, access, str(self._denied(t, write, fetch, el)), t.pa)
                return None
            if secure_check is not None:
                reason = secure_check(t.page_pa, write)
                if reason is not None:
                    view.deny(vaddr, access, reason, t.pa)
                    return None
                if write:
                    if perms & (_R | _X) and secure_check(t.page_pa, False) is not None:
                        perms &= ~(_R | _X)
                elif perms & _W and secure_check(t.page_pa, True) is not None:
                    perms &= ~_W
            return t.page_pa, perms

        return policy


__all__ = [
    "AF", "AP_EL0", "AP_RO", "AP_TABLE_NO_EL0", "AP_TABLE_RO", "ATTRINDX", "BLOCK_SIZE",
    "DESC_BLOCK", "DESC_PAGE", "DESC_TABLE", "DESC_TYPE_MASK", "DESC_VALID", "LEVEL_SHIFT",
    "MmuStats", "NG", "NS", "NS_TABLE", "OA_MASK", "PXN", "PXN_TABLE", "SH_INNER", "SH_NONE",
    "SH_OUTER", "Stage1Mmu", "Translation", "TranslationFault", "UXN", "UXN_TABLE",
    "block_descriptor", "descriptor", "leaf_attrs", "page_descriptor", "start_level",
    "table_descriptor",
]
