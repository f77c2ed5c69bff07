"""The Arm FF-A bus driver (drivers/firmware/arm_ffa/driver.c), as much as OP-TEE needs.

``ffa_init``: FFA_VERSION (asks 1.2, keeps the lower of that and the firmware's 1.x answer),
FFA_ID_GET, FFA_FEATURES(FFA_RXTX_MAP) for the RX/TX size (4/16/64 KiB, naturally aligned
kernel pages), FFA_RXTX_MAP_64, and the MEM_SHARE/LEND width (64-bit ids when FFA_FEATURES
knows MEM_LEND_64 or MEM_SHARE_64). Partitions are found by UUID (FFA_PARTITION_INFO_GET, a
count query first from v1.1, descriptors in the RX buffer, FFA_RX_RELEASE). A
:class:`FfaDevice` sends direct requests (w1 = own id << 16 | partition id; FFA_INTERRUPT /
FFA_YIELD resumed with FFA_RUN; FFA_ERROR -> errno, optee_ffa.md §8).

Memory: ``ffa_memory_share`` / ``ffa_memory_lend`` build the descriptor in the TX buffer (or a
buffer of their own) in the negotiated version's layout (optee_ffa.md §11), one constituent
per scatterlist entry, fragmented with FFA_MEM_FRAG_TX after each FFA_MEM_FRAG_RX (§12); the
handle comes from w2/w3 of FFA_SUCCESS (w1/w2 of FFA_MEM_FRAG_RX). ``ffa_memory_reclaim``
gives memory back. Layouts and numbers come from linux_side's arm_ffa.h copy; failures raise
LinuxError with the kernel's errno.
"""
from __future__ import annotations

import errno
import struct
import uuid as uuidlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from linux_side.errors import LinuxError

if TYPE_CHECKING:
    from linux_side.kernel import Kernel

M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1
MAX_RUN_LOOPS = 1 << 16          # tzemu guard: the kernel would FFA_RUN forever
# ffa_to_linux_errno: index = -FF-A error code (NOT_READY, -10, has no name in arm_ffa.h)
FFA_LINUX_ERRMAP = (0, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOMEM, errno.EBUSY, errno.EINTR,
                    errno.EACCES, errno.EAGAIN, errno.ECANCELED, errno.ENODATA, errno.EAGAIN)


def ffa_to_linux_errno(code: int) -> int:
    """The errno (positive) for an FF-A error code read from w2 (unknown codes: EINVAL)."""
    code &= M32
    idx = -(code - (1 << 32)) if code & 0x8000_0000 else -code
    return FFA_LINUX_ERRMAP[idx] if 0 <= idx < len(FFA_LINUX_ERRMAP) else errno.EINVAL


@dataclass
class FfaPartitionInfo:
    """``struct ffa_partition_info``; ``uuid`` is None in a v1.0 descriptor."""

    id: int
    exec_ctxt: int
    properties: int
    uuid: uuidlib.UUID | None = None


@dataclass
class FfaMemRegionAttributes:
    """One receiver of a memory transaction: its endpoint id and access permissions."""

    receiver: int
    attrs: int
    flag: int = 0


@dataclass
class FfaMemOpsArgs:
    """``struct ffa_mem_ops_args``: ``sg`` lists (physical address, length) per scatterlist
    entry; ``g_handle`` is filled in by a successful send."""

    sg: Sequence[tuple[int, int]]
    attrs: Sequence[FfaMemRegionAttributes]
    tag: int = 0
    flags: int = 0
    use_txbuf: bool = True
    g_handle: int = 0


def uuid_words(u: uuidlib.UUID) -> tuple[int, int, int, int]:
    """export_uuid into four u32 (little-endian words of the 16 octets), for w1..w4."""
    return struct.unpack("<4I", u.bytes)


class FfaDevice:
    """``struct ffa_device``: one partition on the FF-A bus."""

    def __init__(self, drv: "FfaDriver", info: FfaPartitionInfo):
        self.drv, self.info = drv, info
        self.vm_id, self.uuid, self.properties = info.id, info.uuid, info.properties
        self.mode_32bit = False

    def mode_32bit_set(self) -> None:
        self.mode_32bit = True

    def sync_send_receive(self, data: Sequence[int]) -> list[int]:
        """ffa_sync_send_receive: data0..data4 (w3..w7) out, the response's w3..w7 back."""
        return self.drv.ffa_msg_send_direct_req(self.drv.vm_id, self.vm_id, self.mode_32bit, data)


@dataclass
class FfaDriver:
    """``drv_info``: the negotiated version, own id, RX/TX pair and flags."""

    kernel: "Kernel"
    version: int = 0
    vm_id: int = 0
    rxtx_bufsz: int = 0
    rx_buffer: int = 0                 # physical addresses of the mapped pair
    tx_buffer: int = 0
    mem_ops_native: bool = False
    stats: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.abi = self.kernel.abi
        self.c = self.abi.c
        s = self.abi.structs
        self.s_region = s["ffa_mem_region"]
        self.s_emad = s["ffa_mem_region_attributes"]
        self.s_composite = s["ffa_composite_mem_region"]
        self.s_range = s["ffa_mem_region_addr_range"]
        self.s_part = s["ffa_partition_info_le"]

    # --- plumbing --------------------------------------------------------------------------------
    def invoke_ffa_fn(self, *args: int) -> tuple[int, ...]:
        regs = tuple(a & M64 for a in args) + (0,) * (8 - len(args))
        self.stats[f"{regs[0]:#x}"] += 1
        return tuple(self.kernel.conduit.smc(*regs))

    def _error(self, r: tuple[int, ...], what: str) -> LinuxError:
        err = ffa_to_linux_errno(r[2])
        code = r[2] & M32
        signed = code - (1 << 32) if code & 0x8000_0000 else code
        return LinuxError(err, f"arm_ffa: {what} failed with FF-A error {signed}")

    def _is(self, r: tuple[int, ...], fid: int) -> bool:
        return r[0] & M32 == fid

    def log(self, line: str) -> None:
        self.kernel.log(f"arm_ffa: {line}")

    # --- initialisation -------------------------------------------------------------------------
    def ffa_version_check(self) -> int:
        c = self.c
        ver = self.invoke_ffa_fn(c.FFA_VERSION, c.FFA_DRIVER_VERSION)[0] & M32
        if ver == c.FFA_RET_NOT_SUPPORTED & M32:
            raise LinuxError(errno.EOPNOTSUPP, "arm_ffa: FFA_VERSION returned not supported")
        major = (ver & c.FFA_MAJOR_VERSION_MASK) >> 16
        minor = ver & c.FFA_MINOR_VERSION_MASK
        if ver & 0x8000_0000 or major > (c.FFA_DRIVER_VERSION & c.FFA_MAJOR_VERSION_MASK) >> 16:
            raise LinuxError(errno.EINVAL, f"arm_ffa: incompatible firmware version {ver:#x}")
        if ver < c.FFA_MIN_VERSION:
            raise LinuxError(errno.EINVAL, f"arm_ffa: firmware version {major}.{minor} is older "
                                           "than 1.0")
        self.log(f"Firmware version {major}.{minor} found")
        return min(ver, c.FFA_DRIVER_VERSION)

    def ffa_id_get(self) -> int:
        r = self.invoke_ffa_fn(self.c.FFA_ID_GET)
        if self._is(r, self.c.FFA_ERROR):
            raise self._error(r, "FFA_ID_GET")
        return r[2] & 0xFFFF

    def ffa_features(self, func_feat_id: int, input_props: int = 0) -> tuple[int, int]:
        """FFA_FEATURES: (w2, w3) of the SUCCESS answer; FFA_ERROR raises."""
        r = self.invoke_ffa_fn(self.c.FFA_FEATURES, func_feat_id, input_props)
        if self._is(r, self.c.FFA_ERROR):
            raise self._error(r, f"FFA_FEATURES({func_feat_id:#x})")
        return r[2] & M32, r[3] & M32

    def ffa_rxtx_map(self, tx_buf: int, rx_buf: int, pg_cnt: int) -> None:
        r = self.invoke_ffa_fn(self.c.FFA_FN64_RXTX_MAP, tx_buf, rx_buf, pg_cnt)
        if self._is(r, self.c.FFA_ERROR):
            raise self._error(r, "FFA_RXTX_MAP")

    def ffa_rx_release(self) -> None:
        r = self.invoke_ffa_fn(self.c.FFA_RX_RELEASE)
        if self._is(r, self.c.FFA_ERROR):
            raise self._error(r, "FFA_RX_RELEASE")

    def rxtx_bufsz_from_features(self) -> int:
        c = self.c
        try:
            props, _ = self.ffa_features(c.FFA_FN64_RXTX_MAP)
        except LinuxError:
            return c.RXTX_BUFFER_SIZE
        return {c.FFA_FEAT_RXTX_MIN_SZ_64K: c.SZ_64K, c.FFA_FEAT_RXTX_MIN_SZ_16K: c.SZ_16K}.get(
            props & c.RXTX_MAP_MIN_BUFSZ_MASK, c.SZ_4K)

    def ffa_set_up_mem_ops_native_flag(self) -> None:
        c = self.c
        for fid in (c.FFA_FN64_MEM_LEND, c.FFA_FN64_MEM_SHARE):
            try:
                self.ffa_features(fid)
            except LinuxError:
                continue
            self.mem_ops_native = True
            return

    # --- partitions -----------------------------------------------------------------------------
    def ffa_partition_info_get(self, words: Sequence[int],
                               num_partitions: int) -> tuple[int, list[FfaPartitionInfo]]:
        """__ffa_partition_info_get: with ``num_partitions`` 0 (v1.1+) only the count;
        otherwise the descriptors read from the RX buffer, which is then released."""
        c = self.c
        count_only = self.version > c.FFA_VERSION_1_0 and not num_partitions
        flags = c.PARTITION_INFO_GET_RETURN_COUNT_ONLY if count_only else 0
        r = self.invoke_ffa_fn(c.FFA_PARTITION_INFO_GET, *words, flags)
        if self._is(r, c.FFA_ERROR):
            raise self._error(r, "FFA_PARTITION_INFO_GET")
        count = r[2] & M32
        if self.version > c.FFA_VERSION_1_0:
            sz = r[3] & M32
            buf_sz = min(sz, self.s_part.size)
        else:
            sz = buf_sz = self.s_part.offset_of("uuid")      # v1.0 descriptors: 8 bytes
        parts: list[FfaPartitionInfo] = []
        try:
            if num_partitions and count <= num_partitions:
                if count * sz > self.rxtx_bufsz:
                    raise LinuxError(errno.EINVAL, f"arm_ffa: {count} partition descriptors of "
                                                   f"{sz} bytes overflow the RX buffer")
                raw = self.kernel.conduit.read(self.rx_buffer, count * sz) if count else b""
                for i in range(count):
                    one = raw[i * sz:i * sz + buf_sz].ljust(self.s_part.size, b"\0")
                    d = self.s_part.unpack(one)
                    u = uuidlib.UUID(bytes=d["uuid"]) if buf_sz > 8 else None
                    parts.append(FfaPartitionInfo(d["id"], d["exec_ctxt"], d["properties"], u))
        finally:
            if not count_only:
                self.ffa_rx_release()
        return count, parts

    def ffa_partition_probe(self, u: uuidlib.UUID) -> list[FfaPartitionInfo]:
        """The partitions with UUID ``u`` (nil: all of them)."""
        words = uuid_words(u)
        count, _ = self.ffa_partition_info_get(words, 0)
        if count <= 0:
            return []
        _, parts = self.ffa_partition_info_get(words, count)
        return parts

    # --- direct messages --------------------------------------------------------------------------
    def ffa_msg_send_wait_for_completion(self, r: tuple[int, ...]) -> tuple[int, ...]:
        c = self.c
        for _ in range(MAX_RUN_LOOPS):
            if self._is(r, c.FFA_INTERRUPT):
                self.stats["interrupt"] += 1
                self.kernel.take_interrupts()
            elif self._is(r, c.FFA_YIELD):
                self.stats["yield"] += 1
                self.kernel.fsleep(1000)
            else:
                return r
            r = self.invoke_ffa_fn(c.FFA_RUN, r[1] & M32)
        raise LinuxError(errno.EIO, "arm_ffa: the partition never stopped asking for FFA_RUN")

    def ffa_msg_send_direct_req(self, src_id: int, dst_id: int, mode_32bit: bool,
                                data: Sequence[int]) -> list[int]:
        """FFA_MSG_SEND_DIRECT_REQ (32- or 64-bit): w1 = src << 16 | dst, w2 = 0, w3..w7 =
        data0..data4. Returns the response's w3..w7; FFA_ERROR -> its errno, anything else
        than the matching DIRECT_RESP -> EINVAL."""
        c = self.c
        if mode_32bit:
            req, resp, mask = c.FFA_MSG_SEND_DIRECT_REQ, c.FFA_MSG_SEND_DIRECT_RESP, M32
        else:
            req, resp, mask = c.FFA_FN64_MSG_SEND_DIRECT_REQ, c.FFA_FN64_MSG_SEND_DIRECT_RESP, M64
        target = ((src_id << 16) & c.SENDER_ID_MASK) | (dst_id & c.RECEIVER_ID_MASK)
        vals = (list(data) + [0] * 5)[:5]
        r = self.invoke_ffa_fn(req, target, 0, *(v & mask for v in vals))
        r = self.ffa_msg_send_wait_for_completion(r)
        if self._is(r, c.FFA_ERROR):
            raise self._error(r, f"direct request to {dst_id:#x}")
        if self._is(r, resp):
            return [v & mask for v in r[3:8]]
        raise LinuxError(errno.EINVAL, f"arm_ffa: direct request to {dst_id:#x} answered "
                                       f"{r[0]:#x}")

    # --- memory -----------------------------------------------------------------------------------
    def emad_size(self) -> int:
        if self.version >= self.c.FFA_VERSION_1_2:          # FFA_EMAD_HAS_IMPDEF_FIELD
            return self.s_emad.size
        return self.s_emad.size - self.s_emad.field("impdef_val").size

    def ffa_mem_desc_offset(self, count: int) -> int:
        """Where EMAD ``count`` starts (with ``count`` = number of EMADs: the composite)."""
        if self.version <= self.c.FFA_VERSION_1_0:
            return self.s_region.offset_of("ep_mem_offset") + count * self.emad_size()
        return self.s_region.size + count * self.emad_size()

    def ffa_memory_attributes_get(self, func_id: int) -> int:
        c = self.c
        if func_id in (c.FFA_FN64_MEM_LEND, c.FFA_MEM_LEND):
            return 0
        return c.FFA_MEM_NORMAL | c.FFA_MEM_WRITE_BACK | c.FFA_MEM_INNER_SHAREABLE

    def ffa_memory_share(self, args: FfaMemOpsArgs) -> int:
        c = self.c
        return self.ffa_memory_ops(c.FFA_FN64_MEM_SHARE if self.mem_ops_native
                                   else c.FFA_MEM_SHARE, args)

    def ffa_memory_lend(self, args: FfaMemOpsArgs) -> int:
        c = self.c
        return self.ffa_memory_ops(c.FFA_FN64_MEM_LEND if self.mem_ops_native
                                   else c.FFA_MEM_LEND, args)

    def ffa_memory_ops(self, func_id: int, args: FfaMemOpsArgs) -> int:
        """The descriptor in the TX buffer (``use_txbuf``; x3 = w4 = 0) or in a buffer of the
        RX/TX size allocated for the call (its PA and page count in x3/w4). Returns and
        records the handle."""
        if args.use_txbuf:
            return self.ffa_setup_and_transmit(func_id, self.tx_buffer, 0, 0, args)
        pages = self.kernel.pages
        buf = pages.alloc_aligned(self.rxtx_bufsz, self.rxtx_bufsz)
        try:
            return self.ffa_setup_and_transmit(func_id, buf, buf,
                                               self.rxtx_bufsz // self.c.FFA_PAGE_SIZE, args)
        finally:
            pages.free(buf)

    def ffa_setup_and_transmit(self, func_id: int, buffer: int, addr: int, buf_sz: int,
                               args: FfaMemOpsArgs) -> int:
        c, max_fragsize = self.c, self.rxtx_bufsz
        nattrs, emad = len(args.attrs), self.emad_size()
        composite_off = self.ffa_mem_desc_offset(nattrs)
        cons_off = self.s_composite.offset_of("constituents")
        cons_sz = self.s_range.size
        length = composite_off + cons_off + cons_sz * len(args.sg)
        frag_len = composite_off + cons_off
        if frag_len > max_fragsize:
            raise LinuxError(errno.ENXIO, f"arm_ffa: {nattrs} receivers do not fit the "
                                          f"{max_fragsize:#x}-byte first fragment")
        buf = bytearray(max_fragsize)
        hdr = {"sender_id": self.vm_id, "attributes": self.ffa_memory_attributes_get(func_id),
               "flags": args.flags, "handle": 0, "tag": args.tag, "ep_count": nattrs}
        if self.version > c.FFA_VERSION_1_0:             # FFA_MEM_REGION_HAS_EP_MEM_OFFSET
            hdr.update(ep_mem_size=emad, ep_mem_offset=self.s_region.size)
        self.s_region.pack_into(buf, 0, hdr)
        for i, a in enumerate(args.attrs):
            self.s_emad.pack_into(buf, self.ffa_mem_desc_offset(i),
                                  {"receiver": a.receiver, "attrs": a.attrs, "flag": 0,
                                   "composite_off": composite_off})
        total_pg = sum(n // c.FFA_PAGE_SIZE for _, n in args.sg)
        self.s_composite.pack_into(buf, composite_off, {"total_pg_cnt": total_pg,
                                                        "addr_range_cnt": len(args.sg)})
        first, handle = True, 0
        for pa, n in args.sg:
            if frag_len == max_fragsize:
                try:
                    handle = self.ffa_transmit_fragment(func_id, buffer, addr, buf_sz,
                                                        buf[:frag_len], length, handle, first)
                except LinuxError as exc:
                    raise LinuxError(errno.ENXIO, f"arm_ffa: fragment refused ({exc})") from exc
                first, frag_len, buf = False, 0, bytearray(max_fragsize)
            self.s_range.pack_into(buf, frag_len, {"address": pa,
                                                   "pg_cnt": n // c.FFA_PAGE_SIZE})
            frag_len += cons_sz
        handle = self.ffa_transmit_fragment(func_id, buffer, addr, buf_sz, buf[:frag_len],
                                            length, handle, first)
        args.g_handle = handle
        return handle

    def ffa_transmit_fragment(self, func_id: int, buffer: int, addr: int, buf_sz: int,
                              frag: bytes, length: int, handle: int, first: bool) -> int:
        self.kernel.conduit.write(buffer, bytes(frag))
        if first:
            return self.ffa_mem_first_frag(func_id, addr, buf_sz, len(frag), length)
        self.ffa_mem_next_frag(handle, len(frag))
        return handle

    def _op_pause_loop(self, r: tuple[int, ...]) -> tuple[int, ...]:
        c = self.c
        for _ in range(MAX_RUN_LOOPS):
            if not self._is(r, c.FFA_MEM_OP_PAUSE):
                return r
            r = self.invoke_ffa_fn(c.FFA_MEM_OP_RESUME, r[1], r[2])
        raise LinuxError(errno.EIO, "arm_ffa: memory operation paused for good")

    def ffa_mem_first_frag(self, func_id: int, addr: int, buf_sz: int, frag_len: int,
                           length: int) -> int:
        c = self.c
        r = self._op_pause_loop(self.invoke_ffa_fn(func_id, length, frag_len, addr, buf_sz))
        if self._is(r, c.FFA_ERROR):
            raise self._error(r, f"memory send {func_id:#x}")
        if self._is(r, c.FFA_SUCCESS):
            return (r[2] & M32) | (r[3] & M32) << 32
        if self._is(r, c.FFA_MEM_FRAG_RX):
            self.stats["frag_rx"] += 1
            return (r[1] & M32) | (r[2] & M32) << 32
        raise LinuxError(errno.EOPNOTSUPP, f"arm_ffa: memory send answered {r[0]:#x}")

    def ffa_mem_next_frag(self, handle: int, frag_len: int) -> int:
        """FFA_MEM_FRAG_TX; FRAG_RX (more expected) and SUCCESS both go on, as in the kernel."""
        c = self.c
        r = self._op_pause_loop(self.invoke_ffa_fn(
            c.FFA_MEM_FRAG_TX, handle & c.HANDLE_LOW_MASK, (handle & c.HANDLE_HIGH_MASK) >> 32,
            frag_len))
        if self._is(r, c.FFA_ERROR):
            raise self._error(r, "FFA_MEM_FRAG_TX")
        if self._is(r, c.FFA_MEM_FRAG_RX):
            self.stats["frag_rx"] += 1
            return r[3] & M32
        if self._is(r, c.FFA_SUCCESS):
            return 0
        raise LinuxError(errno.EOPNOTSUPP, f"arm_ffa: FFA_MEM_FRAG_TX answered {r[0]:#x}")

    def ffa_memory_reclaim(self, g_handle: int, flags: int = 0) -> None:
        c = self.c
        r = self.invoke_ffa_fn(c.FFA_MEM_RECLAIM, g_handle & c.HANDLE_LOW_MASK,
                               (g_handle & c.HANDLE_HIGH_MASK) >> 32, flags)
        if self._is(r, c.FFA_ERROR):
            raise self._error(r, f"FFA_MEM_RECLAIM({g_handle:#x})")

    # --- the short forms ------------------------------------------------------------------------
    def mem_share(self, sg: Sequence[tuple[int, int]], attrs: Sequence[FfaMemRegionAttributes],
                  tag: int = 0, flags: int = 0, use_txbuf: bool = True) -> int:
        return self.ffa_memory_share(FfaMemOpsArgs(sg, attrs, tag, flags, use_txbuf))

    def mem_lend(self, sg: Sequence[tuple[int, int]], attrs: Sequence[FfaMemRegionAttributes],
                 tag: int = 0, flags: int = 0, use_txbuf: bool = True) -> int:
        return self.ffa_memory_lend(FfaMemOpsArgs(sg, attrs, tag, flags, use_txbuf))

    def mem_reclaim(self, handle: int, flags: int = 0) -> None:
        self.ffa_memory_reclaim(handle, flags)


def ffa_init(kernel: "Kernel") -> FfaDriver:
    """Bring up the FF-A bus driver (raises LinuxError, leaving nothing mapped, on failure)."""
    drv = FfaDriver(kernel)
    drv.version = drv.ffa_version_check()
    try:
        drv.vm_id = drv.ffa_id_get()
    except LinuxError as exc:
        raise LinuxError(errno.ENODEV, f"arm_ffa: failed to obtain VM id for self ({exc})") \
            from exc
    drv.rxtx_bufsz = drv.rxtx_bufsz_from_features()
    pages = kernel.pages
    drv.rx_buffer = pages.alloc_aligned(drv.rxtx_bufsz, drv.rxtx_bufsz)
    try:
        drv.tx_buffer = pages.alloc_aligned(drv.rxtx_bufsz, drv.rxtx_bufsz)
    except LinuxError:
        pages.free(drv.rx_buffer)
        raise
    try:
        for pa in (drv.rx_buffer, drv.tx_buffer):
            kernel.conduit.write(pa, bytes(drv.rxtx_bufsz))
        drv.ffa_rxtx_map(drv.tx_buffer, drv.rx_buffer, drv.rxtx_bufsz // drv.c.FFA_PAGE_SIZE)
    except LinuxError as exc:
        pages.free(drv.rx_buffer)
        pages.free(drv.tx_buffer)
        raise LinuxError(exc.errno, f"arm_ffa: failed to register FFA RxTx buffers "
                                    f"({exc.message})") from exc
    drv.ffa_set_up_mem_ops_native_flag()
    v = drv.version
    drv.log(f"Driver version {v >> 16}.{v & 0xFFFF}, endpoint {drv.vm_id:#x}, "
            f"RX/TX {drv.rxtx_bufsz:#x} bytes")
    return drv
