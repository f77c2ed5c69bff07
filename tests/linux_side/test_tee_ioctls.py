"""/dev/tee0 at byte level: real request numbers, real struct bytes, errno on bad input."""
from __future__ import annotations

import errno
import struct

import pytest

from linux_side.errors import LinuxError

TEE_IOC_VERSION, TEE_IOC_SHM_ALLOC = 0x800CA400, 0xC010A401
TEE_IOC_OPEN_SESSION, TEE_IOC_INVOKE = 0x8010A402, 0x8010A403
TEE_IOC_CANCEL, TEE_IOC_CLOSE_SESSION = 0x8008A404, 0x8004A405
TEE_IOC_SHM_REGISTER = 0xC018A409
ECHO = bytes.fromhex("7a1f0c8e3d4b4c6a9e2f5b8d1c0e7f31")
MEMREF_NULL = 0xFFFFFFFFFFFFFFFF


def open_arg(uuid: bytes, params=(), login: int = 0) -> bytes:
    head = uuid + bytes(16) + struct.pack("<6I", login, 0, 0, 0, 0, len(params))
    return head + b"".join(struct.pack("<4Q", *p) for p in params)


def invoke_arg(session: int, func: int, params=()) -> bytes:
    head = struct.pack("<6I", func, session, 0, 0, 0, len(params))
    return head + b"".join(struct.pack("<4Q", *p) for p in params)


def buf_call(lx, fd, request, body: bytes, buf_len: int | None = None) -> bytes:
    va = lx.user_alloc(len(body) + 64)
    lx.user_write(va, body)
    lx.ioctl(fd, request, struct.pack("<QQ", va, len(body) if buf_len is None else buf_len))
    return lx.user_read(va, len(body))


@pytest.fixture
def tee(platform):
    lx = platform.linux
    return platform, lx, lx.open("/dev/tee0")


def test_version_reports_optee_with_reg_mem_and_memref_null(tee):
    _p, lx, fd = tee
    impl_id, impl_caps, gen_caps = struct.unpack("<3I", lx.ioctl(fd, TEE_IOC_VERSION, bytes(12)))
    assert (impl_id, impl_caps) == (1, 1)
    assert gen_caps == 0x1 | 0x4 | 0x8           # GP | REG_MEM | MEMREF_NULL


def test_open_invoke_close_at_byte_level(tee):
    p, lx, fd = tee
    out = buf_call(lx, fd, TEE_IOC_OPEN_SESSION, open_arg(ECHO))
    session, ret, origin = struct.unpack_from("<3I", out, 40)
    assert (ret, origin) == (0, 4) and session != 0
    out = buf_call(lx, fd, TEE_IOC_INVOKE, invoke_arg(session, 0, [(3, 7, 8, 0)]))
    assert struct.unpack_from("<2I", out, 12) == (0, 4)
    assert struct.unpack_from("<3Q", out, 32) == (8, 9, 0)
    lx.ioctl(fd, TEE_IOC_CLOSE_SESSION, struct.pack("<I", session))
    assert not p.secure_os.ta_manager.sessions


def test_shm_alloc_returns_an_fd_and_increasing_ids(tee):
    p, lx, fd = tee
    a = lx.ioctl(fd, TEE_IOC_SHM_ALLOC, struct.pack("<QIi", 0x3000, 0, 0))
    b = lx.ioctl(fd, TEE_IOC_SHM_ALLOC, struct.pack("<QIi", 0x10, 0, 0))
    (size_a, _fa, id_a), (_sb, _fb, id_b) = struct.unpack("<QIi", a), struct.unpack("<QIi", b)
    assert size_a == 0x3000 and id_a >= 1 and id_b > id_a
    assert a.ret != b.ret and a.ret >= 3
    assert len(p.secure_os.shm.by_cookie) == 2
    lx.close(a.ret)
    lx.close(b.ret)
    assert not p.secure_os.shm.by_cookie, "closing the shm fd unregisters it in the secure world"


def test_memref_through_registered_user_memory(tee):
    p, lx, fd = tee
    out = buf_call(lx, fd, TEE_IOC_OPEN_SESSION, open_arg(ECHO))
    session = struct.unpack_from("<I", out, 40)[0]
    va = lx.user_alloc(0x2000)
    lx.user_write(va + 0x10, b"ping")
    reg = lx.ioctl(fd, TEE_IOC_SHM_REGISTER, struct.pack("<QQIi", va, 0x2000, 0, 0))
    shm_id = struct.unpack_from("<i", reg, 20)[0]
    out = buf_call(lx, fd, TEE_IOC_INVOKE, invoke_arg(session, 1, [(5, 0x10, 4, shm_id),
                                                                   (6, 0x100, 16, shm_id)]))
    assert struct.unpack_from("<2I", out, 12) == (0, 4)
    assert struct.unpack_from("<Q", out, 24 + 32 + 16)[0] == 4      # output size written back
    assert lx.user_read(va + 0x100, 4) == b"ping"
    lx.close(reg.ret)


@pytest.mark.parametrize("request_, arg, err", [
    (0xC010A4FF, bytes(16), errno.ENOTTY),
    (TEE_IOC_VERSION, bytes(8), errno.EFAULT),
    (TEE_IOC_SHM_ALLOC, struct.pack("<QIi", 0x1000, 1, 0), errno.EINVAL),
    (TEE_IOC_SHM_ALLOC, struct.pack("<QIi", 0, 0, 0), errno.EINVAL),
    (TEE_IOC_SHM_REGISTER, struct.pack("<QQIi", 0x1000, 0x1000, 0, 0), errno.EFAULT),
    (TEE_IOC_CLOSE_SESSION, struct.pack("<I", 1234), errno.EINVAL),
    (TEE_IOC_CANCEL, struct.pack("<II", 0, 1234), errno.EINVAL),
])
def test_bad_ioctls_fail_with_the_kernel_errno(tee, request_, arg, err):
    _p, lx, fd = tee
    with pytest.raises(LinuxError) as e:
        lx.ioctl(fd, request_, arg)
    assert e.value.errno == err


def test_buf_len_rules(tee):
    _p, lx, fd = tee
    body = open_arg(ECHO, [(1, 0, 0, 0)])
    for buf_len in (len(body) - 32, 8, 4097):
        with pytest.raises(LinuxError) as e:
            buf_call(lx, fd, TEE_IOC_OPEN_SESSION, body, buf_len=buf_len)
        assert e.value.errno == errno.EINVAL


@pytest.mark.parametrize("param, words", [
    ((5, 0, 16, 77), "unknown in this context"),
    ((5, 0x1000, 1, "ID"), "outside shm"),
    ((5, 2**64 - 1, 2, "ID"), "outside shm"),
    ((8, 0, 0, 0), "not supported"),
    ((1 | 0x200, 0, 0, 0), "unknown bits"),
    ((5, 4, 0, MEMREF_NULL), "NULL memref"),
])
def test_bad_params_fail_before_any_world_switch(tee, param, words):
    p, lx, fd = tee
    shm = lx.ioctl(fd, TEE_IOC_SHM_ALLOC, struct.pack("<QIi", 0x1000, 0, 0))
    shm_id = struct.unpack_from("<i", shm, 12)[0]
    param = tuple(shm_id if v == "ID" else v for v in param)
    smcs = p.monitor.smc_count
    with pytest.raises(LinuxError, match=words) as e:
        buf_call(lx, fd, TEE_IOC_OPEN_SESSION, open_arg(ECHO, [param]))
    assert e.value.errno == errno.EINVAL
    assert p.monitor.smc_count == smcs


def test_ree_kernel_login_is_refused(tee):
    _p, lx, fd = tee
    with pytest.raises(LinuxError) as e:
        buf_call(lx, fd, TEE_IOC_OPEN_SESSION, open_arg(ECHO, login=0x80000000))
    assert e.value.errno == errno.EPERM


def test_closing_the_context_closes_its_sessions(tee):
    p, lx, fd = tee
    buf_call(lx, fd, TEE_IOC_OPEN_SESSION, open_arg(ECHO))
    buf_call(lx, fd, TEE_IOC_OPEN_SESSION, open_arg(ECHO))
    assert len(p.secure_os.ta_manager.sessions) == 2
    lx.close(fd)
    assert not p.secure_os.ta_manager.sessions


def test_session_of_another_context_is_not_usable(tee):
    _p, lx, fd = tee
    out = buf_call(lx, fd, TEE_IOC_OPEN_SESSION, open_arg(ECHO))
    session = struct.unpack_from("<I", out, 40)[0]
    other = lx.open("/dev/tee0")
    with pytest.raises(LinuxError) as e:
        buf_call(lx, other, TEE_IOC_INVOKE, invoke_arg(session, 0, [(3, 1, 1, 0)]))
    assert e.value.errno == errno.EINVAL


def test_files_and_devices(platform):
    lx = platform.linux
    with pytest.raises(LinuxError) as e:
        lx.open("/dev/tee9")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(LinuxError) as e:
        lx.close(99)
    assert e.value.errno == errno.EBADF
    fd = lx.open("/dev/tee0")
    with pytest.raises(LinuxError) as e:
        lx.mmap(fd, 0x1000)
    assert e.value.errno == errno.EINVAL


def test_shm_pages_return_to_the_kernel_pool(tee):
    p, lx, fd = tee
    free = p.kernel.pages.free_bytes
    shm = lx.ioctl(fd, TEE_IOC_SHM_ALLOC, struct.pack("<QIi", 0x5000, 0, 0))
    assert p.kernel.pages.free_bytes < free
    lx.close(shm.ret)
    assert p.kernel.pages.free_bytes == free
