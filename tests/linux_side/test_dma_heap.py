"""DMA heaps, TEE protected heaps and their dma-bufs, at the byte level of the uAPI.

Runs on a default boot with a static pool made by hand over the secure-video carveout: no
secure-world traffic is involved in any of this (static pool: none at allocation or free).
"""
from __future__ import annotations

import errno
import struct

import pytest

from linux_side.dma_buf import (dma_buf_attach, dma_buf_detach, dma_buf_get, dma_buf_map_attachment,
                                dma_buf_put, dma_buf_unmap_attachment, dma_buf_vmap)
from linux_side.dma_mapping import Device
from linux_side.errors import LinuxError
from linux_side.teec import dma_heap_alloc
from linux_side.tee.tee_heap import tee_device_register_dma_heap
from linux_side.tee.tee_protmem_pool import tee_protmem_static_pool_alloc

DMA_HEAP_IOCTL_ALLOC = 0xC0184800
O_RDWR, O_CLOEXEC, O_SYNC = 0o2, 0o2000000, 0o4010000
SV = "/dev/dma_heap/protected,secure-video"
PAGE = 0x1000


def alloc_arg(length, fd=0, fd_flags=O_RDWR | O_CLOEXEC, heap_flags=0) -> bytes:
    return struct.pack("<QIIQ", length, fd, fd_flags, heap_flags)


def heap_ioctl(lx, arg, request=DMA_HEAP_IOCTL_ALLOC):
    hfd = lx.open(SV, O_RDWR | O_SYNC)
    try:
        return lx.ioctl(hfd, request, arg)
    finally:
        lx.close(hfd)


def test_allocation_returns_the_struct_with_a_dmabuf_fd(static_sv):
    p, pool = static_sv
    lx = p.linux
    smcs = p.monitor.smc_count
    out = heap_ioctl(lx, alloc_arg(5000))
    length, fd, fd_flags, heap_flags = struct.unpack("<QIIQ", out)
    assert (length, fd_flags, heap_flags) == (5000, O_RDWR | O_CLOEXEC, 0)   # len not rewritten
    assert out.ret == 0 and fd >= 3 and p.kernel.files[fd].name == "dmabuf"
    buf = p.kernel.files[fd].obj.dmabuf
    assert buf.size == 2 * PAGE and buf.flags == O_RDWR | O_CLOEXEC
    assert pool.avail() == pool.size - 2 * PAGE
    assert p.monitor.smc_count == smcs                  # static pool: no secure-world call
    lx.close(fd)
    assert pool.avail() == pool.size


@pytest.mark.parametrize("arg, words", [
    (alloc_arg(0), "len is 0"),
    (alloc_arg(2**64 - 1), "len is 0"),                  # page alignment wraps to 0
    (alloc_arg(PAGE, fd=3), "fd must be 0"),
    (alloc_arg(PAGE, fd_flags=0o4000), "fd_flags"),       # O_NONBLOCK is not allowed
    (alloc_arg(PAGE, heap_flags=1), "heap_flags"),
])
def test_allocation_argument_rules_are_einval(static_sv, arg, words):
    p, pool = static_sv
    files = dict(p.kernel.files)
    with pytest.raises(LinuxError, match=words) as e:
        heap_ioctl(p.linux, arg)
    assert e.value.errno == errno.EINVAL
    assert p.kernel.files == files and pool.avail() == pool.size


def test_ioctl_number_and_size_handling(static_sv):
    p, _pool = static_sv
    lx = p.linux
    with pytest.raises(LinuxError) as e:                  # only command number 0 exists
        heap_ioctl(lx, alloc_arg(PAGE), request=0xC0184801)
    assert e.value.errno == errno.EINVAL
    # a shorter (older) struct is zero-extended: heap_flags missing reads as 0
    short = 0xC0104800
    out = heap_ioctl(lx, struct.pack("<QII", PAGE, 0, O_RDWR), request=short)
    assert len(out) == 16 and struct.unpack("<QII", out)[1] >= 3
    with pytest.raises(LinuxError) as e:                  # user buffer shorter than the request
        heap_ioctl(lx, bytes(8))
    assert e.value.errno == errno.EFAULT
    hfd = lx.open(SV)
    with pytest.raises(LinuxError) as e:
        lx.mmap(hfd, PAGE)
    assert e.value.errno == errno.ENODEV


def test_pool_exhaustion_is_enomem_and_frees_come_back(static_sv):
    p, pool = static_sv
    k = p.kernel
    fds = [dma_heap_alloc(k, SV, 1 << 20) for _ in range(4)]    # the 4 MiB carveout
    with pytest.raises(LinuxError) as e:
        dma_heap_alloc(k, SV, PAGE)
    assert e.value.errno == errno.ENOMEM
    assert k.tee_dma_heaps[1].refcount == 1 + 4
    k.close(fds[1])
    again = dma_heap_alloc(k, SV, 1 << 20)
    pa = k.files[again].obj.dmabuf.priv.table.sgl[0].phys
    assert pa == pool.pa_base + (1 << 20)                # first fit reuses the hole
    for fd in fds[:1] + fds[2:] + [again]:
        k.close(fd)
    assert pool.avail() == pool.size and k.tee_dma_heaps[1].refcount == 1


def test_protected_dmabuf_cannot_be_mapped_by_any_cpu(static_sv):
    p, _pool = static_sv
    k = p.kernel
    fd = dma_heap_alloc(k, SV, PAGE)
    with pytest.raises(LinuxError) as e:
        k.mmap(fd, PAGE)
    assert e.value.errno == errno.EINVAL
    buf = dma_buf_get(k, fd)
    with pytest.raises(LinuxError) as e:
        dma_buf_vmap(buf)
    assert e.value.errno == errno.EINVAL
    dma_buf_put(buf)
    k.close(fd)


def test_devices_attach_and_map_to_the_physical_address(static_sv):
    p, pool = static_sv
    k = p.kernel
    fd = dma_heap_alloc(k, SV, 3 * PAGE)
    buf = dma_buf_get(k, fd)
    display, codec = Device("display"), Device("codec")
    a1, a2 = dma_buf_attach(buf, display), dma_buf_attach(buf, codec)
    sgt = dma_buf_map_attachment(a1)
    assert [(s.dma_address, s.dma_length) for s in sgt.sgl] == [(pool.pa_base, 3 * PAGE)]
    assert a2.priv.table is not a1.priv.table            # a private copy per attachment
    narrow = Device("narrow", dma_mask=0xFFFF)
    a3 = dma_buf_attach(buf, narrow)
    with pytest.raises(LinuxError) as e:
        dma_buf_map_attachment(a3)
    assert e.value.errno == errno.EIO
    dma_buf_unmap_attachment(a1, sgt)
    for a in (a1, a2, a3):
        dma_buf_detach(buf, a)
    k.close(fd)
    assert pool.avail() == pool.size - 3 * PAGE          # our own reference keeps it alive
    dma_buf_put(buf)
    assert pool.avail() == pool.size


def test_dma_buf_get_refuses_closed_and_foreign_fds(static_sv):
    p, _pool = static_sv
    k = p.kernel
    with pytest.raises(LinuxError) as e:
        dma_buf_get(k, 77)
    assert e.value.errno == errno.EBADF
    tee = k.open("/dev/tee0")
    with pytest.raises(LinuxError) as e:
        dma_buf_get(k, tee)
    assert e.value.errno == errno.EINVAL


def test_heap_registration_rules(platform):
    k = platform.kernel
    cv = platform.memory_map.carveout("trusted-ui")
    pool = lambda: tee_protmem_static_pool_alloc(k, cv.base, cv.size)   # noqa: E731
    users = k.tee0.num_users
    for heap_id in (0, 4):
        with pytest.raises(LinuxError) as e:
            tee_device_register_dma_heap(k.tee0, heap_id, pool())
        assert e.value.errno == errno.EINVAL
    assert "can't register DMA heap id 4 (None)" in k.dmesg[-1]
    tee_device_register_dma_heap(k.tee0, 2, pool())
    with pytest.raises(LinuxError) as e:
        tee_device_register_dma_heap(k.tee0, 2, pool())
    assert e.value.errno == errno.EBUSY
    tee_device_register_dma_heap(k.tee0, 3, pool())
    assert set(k.heaps) == {"protected,trusted-ui", "protected,secure-video-record"}
    assert k.heaps["protected,trusted-ui"].priv.id == 2
    assert "/dev/dma_heap/protected,secure-video-record" in k.devices
    assert k.tee0.num_users == users + 2                  # one per bound heap


@pytest.mark.parametrize("base, size, words", [
    (0x5e00_0800, 0x1000, "page aligned"),
    (0x5e00_0000, 0x800, "page aligned"),
    (0x0e10_0000, 0x1000, "struct page"),                  # secure DRAM is not kernel RAM
])
def test_static_pool_preconditions(platform, base, size, words):
    with pytest.raises(LinuxError, match=words) as e:
        tee_protmem_static_pool_alloc(platform.kernel, base, size)
    assert e.value.errno == errno.EINVAL


def test_unbind_waits_for_buffers_then_keeps_the_node(static_sv):
    p, pool = static_sv
    k = p.kernel
    fd = dma_heap_alloc(k, SV, PAGE)
    with pytest.raises(LinuxError, match="protected buffers") as e:
        k.teardown()
    assert e.value.errno == errno.EBUSY
    assert k.tee0 is not None and k.tee_dma_heaps[1].bound and "/dev/tee0" in k.devices
    ctx = k.open("/dev/tee0")
    k.close(fd)
    with pytest.raises(LinuxError, match="open files") as e:
        k.teardown()
    k.close(ctx)
    k.teardown()
    h = k.tee_dma_heaps[1]
    assert not h.bound and h.refcount == 0 and pool.gen_pool is None    # pool destroyed
    assert SV in k.devices and "/dev/tee0" not in k.devices            # heaps are never removed
    with pytest.raises(LinuxError, match="not bound") as e:
        dma_heap_alloc(k, SV, PAGE)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(LinuxError) as e:
        k.open("/dev/tee0")
    assert e.value.errno == errno.ENOENT


def test_reprobe_rebinds_the_same_heap(static_sv):
    p, _pool = static_sv
    k = p.kernel
    heap = k.heaps["protected,secure-video"]
    k.teardown()
    k.probe_optee()
    cv = p.memory_map.carveout("secure-video")
    tee_device_register_dma_heap(k.tee0, 1, tee_protmem_static_pool_alloc(k, cv.base, cv.size))
    assert k.heaps["protected,secure-video"] is heap and heap.priv.teedev is k.tee0
    fd = dma_heap_alloc(k, SV, PAGE)
    k.close(fd)
    s = p.linux.teec().open_session("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
    assert s.ret == 0
