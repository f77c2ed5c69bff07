"""Registered (dynamic) shared memory: OPTEE_MSG_CMD_REGISTER_SHM / UNREGISTER_SHM.

The normal world describes a buffer as a list of physical pages (the NONCONTIG page-list
format: each 4 KiB list page holds 511 page addresses and, last, the address of the next list
page; the low 12 bits of buf_ptr give the buffer's offset in its first page). Every page must be
normal-world RAM; cookies are the normal world's names for the registrations.
"""
from __future__ import annotations

import struct
from typing import Callable

from emu.physmem import PhysMem
from tee_os.mobj import PAGE, Mobj

ENTRIES_PER_LIST_PAGE = PAGE // 8 - 1


class ShmError(Exception):
    def __init__(self, code_name: str, message: str):
        super().__init__(message)
        self.code_name = code_name      # a TEE_ERROR_* name


def read_page_list(physmem: PhysMem, buf_ptr: int, size: int,
                   is_ns_page: Callable[[int], bool]) -> tuple[int, tuple[int, ...]]:
    """Decode a NONCONTIG page list; returns (offset in first page, page addresses)."""
    page_offset = buf_ptr & (PAGE - 1)
    list_pa = buf_ptr & ~(PAGE - 1)
    npages = (page_offset + size + PAGE - 1) // PAGE
    if size == 0 or npages > 1 << 18:
        raise ShmError("TEE_ERROR_BAD_PARAMETERS", f"page list for {size:#x} bytes refused")
    pages: list[int] = []
    seen_lists: set[int] = set()
    while len(pages) < npages:
        if list_pa in seen_lists or not is_ns_page(list_pa):
            raise ShmError("TEE_ERROR_BAD_PARAMETERS", f"page-list page {list_pa:#x} not NS RAM")
        seen_lists.add(list_pa)
        raw = physmem.read(list_pa, PAGE)
        entries = struct.unpack_from(f"<{ENTRIES_PER_LIST_PAGE + 1}Q", raw)
        take = min(ENTRIES_PER_LIST_PAGE, npages - len(pages))
        for pa in entries[:take]:
            if pa & (PAGE - 1) or not is_ns_page(pa):
                raise ShmError("TEE_ERROR_BAD_PARAMETERS", f"page {pa:#x} is not a NS RAM page")
            pages.append(pa)
        list_pa = entries[ENTRIES_PER_LIST_PAGE]
    return page_offset, tuple(pages)


class ShmRegistry:
    def __init__(self) -> None:
        self.by_cookie: dict[int, Mobj] = {}

    def register(self, cookie: int, page_offset: int, pages: tuple[int, ...], size: int) -> Mobj:
        if cookie in self.by_cookie:
            raise ShmError("TEE_ERROR_BAD_PARAMETERS", f"cookie {cookie:#x} already registered")
        mobj = Mobj("reg_shm", pages, page_offset, size, secure=False, cookie=cookie)
        self.by_cookie[cookie] = mobj
        return mobj

    def unregister(self, cookie: int) -> None:
        mobj = self.by_cookie.get(cookie)
        if mobj is None:
            raise ShmError("TEE_ERROR_ITEM_NOT_FOUND", f"no shm with cookie {cookie:#x}")
        if mobj.refs:
            raise ShmError("TEE_ERROR_BUSY", f"shm {cookie:#x} still in use")
        del self.by_cookie[cookie]

    def lookup(self, cookie: int) -> Mobj | None:
        return self.by_cookie.get(cookie)

    def overlaps(self, pa: int, size: int) -> bool:
        for mobj in self.by_cookie.values():
            for page in mobj.pages:
                if page < pa + size and pa < page + PAGE:
                    return True
        return False
