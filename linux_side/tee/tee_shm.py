"""``struct tee_shm``: shared memory objects of the TEE core, with ids and refcounts.

Ids come from the device's id table and start at 1; an id is never handed out again while the
object lives. The cookie a backend sends to the secure world is a kernel-pointer-like value
unique to the object (the real driver sends the ``struct tee_shm *``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from linux_side.mm import PAGE_SIZE

COOKIE_BASE = 0xFFFF_0000_1000_0000


@dataclass(eq=False)
class TeeShm:
    ctx: object | None
    size: int
    flags: int
    pages: tuple[int, ...] = ()       # physical pages backing the buffer
    page_offset: int = 0              # offset of byte 0 in pages[0]
    paddr: int = 0                    # physical address when contiguous
    id: int = -1
    cookie: int = 0
    refcount: int = 1
    user_va: int = 0
    release_cb: list[Callable[["TeeShm"], None]] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def contiguous(self) -> bool:
        return all(b == a + PAGE_SIZE for a, b in zip(self.pages, self.pages[1:]))

    def pa_of(self, offset: int) -> int:
        idx, inpage = divmod(self.page_offset + offset, PAGE_SIZE)
        return self.pages[idx] + inpage


class ShmIdTable:
    """The device's idr of shared-memory objects."""

    def __init__(self) -> None:
        self.by_id: dict[int, TeeShm] = {}
        self.by_cookie: dict[int, TeeShm] = {}
        self._next_id = 1
        self._next_cookie = COOKIE_BASE

    def new_cookie(self, shm: TeeShm) -> int:
        shm.cookie = self._next_cookie
        self._next_cookie += 0x100
        self.by_cookie[shm.cookie] = shm
        return shm.cookie

    def assign_id(self, shm: TeeShm) -> int:
        shm.id = self._next_id
        self._next_id += 1
        self.by_id[shm.id] = shm
        return shm.id

    def get(self, shm: TeeShm) -> TeeShm:
        shm.refcount += 1
        return shm

    def put(self, shm: TeeShm) -> None:
        shm.refcount -= 1
        if shm.refcount == 0:
            self.by_id.pop(shm.id, None)
            self.by_cookie.pop(shm.cookie, None)
            for cb in reversed(shm.release_cb):
                cb(shm)
            shm.release_cb.clear()
