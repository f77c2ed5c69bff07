"""TA system calls by name with their arguments decoded (``ta_syscall``, ``ta_syscall_return``).

A TA enters the secure OS with ``svc #0``: the number in x8, the arguments in x0..x7 in the
order of libutee's ``_utee_*`` wrappers, the result back in x0. The secure OS emits
``ta_syscall`` with the raw registers (``args``) before the handler runs and, when the handler
answers with a code right away, ``ta_syscall_return`` with it (``result``). A call that leaves
the TA — RETURN, PANIC — or waits for the normal world or another TA (an RPC, a TA-to-TA
session) has no ``ta_syscall_return``: its answer comes later or never.

:data:`ARGS` names each implemented call's arguments and says how to show each; the numbers and
every constant shown by name (property sets, access flags, time categories, cache operations,
``TEE_TIMEOUT_INFINITE``, result codes) come from the secure header copy (``secure_abi()``),
like every other decoder. Pure: fields in, dict out, no memory reads.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from emu.abi import secure_abi

M32 = 0xFFFFFFFF

#: syscall -> its arguments (x0, x1, ...) as (name, how to show it):
#: ``ptr`` a TA virtual address (hex), ``size`` a byte count, ``u32`` a 32-bit number,
#: ``code`` a TEE_Result, ``propset`` a TEE_PROPSET_* handle, ``access`` TEE_MEMORY_ACCESS_*
#: flags, ``time_cat`` a UTEE_TIME_CAT_*, ``cache_op`` a TEE_CACHE* operation, ``timeout``
#: milliseconds or TEE_TIMEOUT_INFINITE.
ARGS: dict[str, tuple[tuple[str, str], ...]] = {
    "TEE_SCN_RETURN": (("ret", "code"),),
    "TEE_SCN_LOG": (("buf", "ptr"), ("len", "size")),
    "TEE_SCN_PANIC": (("code", "code"),),
    "TEE_SCN_GET_PROPERTY": (("prop_set", "propset"), ("index", "u32"), ("name", "ptr"),
                             ("name_len", "ptr"), ("buf", "ptr"), ("buf_len", "ptr"),
                             ("prop_type", "ptr")),
    "TEE_SCN_GET_PROPERTY_NAME_TO_INDEX": (("prop_set", "propset"), ("name", "ptr"),
                                           ("name_len", "size"), ("index", "ptr")),
    "TEE_SCN_OPEN_TA_SESSION": (("dest_uuid", "ptr"), ("cancel_req_to", "timeout"),
                                ("params", "ptr"), ("sess", "ptr"), ("ret_orig", "ptr")),
    "TEE_SCN_CLOSE_TA_SESSION": (("sess", "u32"),),
    "TEE_SCN_INVOKE_TA_COMMAND": (("sess", "u32"), ("cancel_req_to", "timeout"), ("cmd", "u32"),
                                  ("params", "ptr"), ("ret_orig", "ptr")),
    "TEE_SCN_CHECK_ACCESS_RIGHTS": (("flags", "access"), ("buf", "ptr"), ("len", "size")),
    "TEE_SCN_GET_CANCELLATION_FLAG": (("cancel", "ptr"),),
    "TEE_SCN_UNMASK_CANCELLATION": (("old_mask", "ptr"),),
    "TEE_SCN_MASK_CANCELLATION": (("old_mask", "ptr"),),
    "TEE_SCN_WAIT": (("timeout", "timeout"),),
    "TEE_SCN_GET_TIME": (("cat", "time_cat"), ("time", "ptr")),
    "TEE_SCN_SET_TA_TIME": (("time", "ptr"),),
    "TEE_SCN_CRYP_RANDOM_NUMBER_GENERATE": (("buf", "ptr"), ("len", "size")),
    "TEE_SCN_CACHE_OPERATION": (("va", "ptr"), ("len", "size"), ("op", "cache_op")),
    # tzemu's own call (tee_os/syscalls.py), known by the name the secure OS gives it
    "TZEMU_SCN_VA_TO_PA": (("va", "ptr"),),
}


def _names(constants: dict[str, int], prefixes: tuple[str, ...],
           skip: tuple[str, ...] = ()) -> dict[int, str]:
    """value -> the shortest name with one of ``prefixes`` (ties: alphabetical)."""
    out: dict[int, str] = {}
    for name, value in sorted(((n, v) for n, v in constants.items()
                               if n.startswith(prefixes) and not any(s in n for s in skip)),
                              key=lambda nv: (len(nv[0]), nv[0])):
        out.setdefault(value & M32, name)
    return out


class SyscallDecoder:
    """Name tables built once from the secure headers; :meth:`call` and :meth:`ret` decode."""

    def __init__(self) -> None:
        k = secure_abi().constants
        self.numbers = _names(k, ("TEE_SCN_",), ("MAX",))
        self.codes = _names(k, ("TEE_SUCCESS", "TEE_ERROR_"))
        self.propsets = _names(k, ("TEE_PROPSET_",))
        self.time_cats = _names(k, ("UTEE_TIME_CAT_",))
        self.cache_ops = _names(k, ("TEE_CACHECLEAN", "TEE_CACHEFLUSH", "TEE_CACHEINVALIDATE"))
        self.infinite = k["TEE_TIMEOUT_INFINITE"] & M32
        self.access = sorted((v, n) for n, v in k.items()
                             if n.startswith("TEE_MEMORY_ACCESS_") and v and v & (v - 1) == 0)
        self._access_all = sum(v for v, _ in self.access)
        self.show: dict[str, Callable[[int], Any]] = {
            "ptr": hex, "size": int, "u32": lambda v: v & M32, "code": self.code,
            "propset": lambda v: self.propsets.get(v & M32, hex(v)),
            "time_cat": lambda v: self.time_cats.get(v & M32, hex(v)),
            "cache_op": lambda v: self.cache_ops.get(v & M32, hex(v)),
            "timeout": lambda v: "TEE_TIMEOUT_INFINITE" if v & M32 == self.infinite else v & M32,
            "access": self.access_flags}
        self._specs: dict[str, tuple[tuple[str, Callable[[int], Any]], ...]] = {
            name: tuple((arg, self.show[how]) for arg, how in args) for name, args in ARGS.items()}

    def code(self, value: int) -> str:
        return self.codes.get(value & M32, hex(value & M32))

    def access_flags(self, value: int) -> str:
        """``TEE_MEMORY_ACCESS_READ|TEE_MEMORY_ACCESS_ANY_OWNER``; unnamed bits in hex."""
        value &= M32
        names = [n for v, n in self.access if value & v]
        if value & ~self._access_all:
            names.append(hex(value & ~self._access_all))
        return "|".join(names) or "0"

    def name(self, fields: dict[str, Any]) -> Any:
        nr = fields.get("nr")
        return self.numbers.get(nr, fields.get("name")) if isinstance(nr, int) else fields.get("name")

    def call(self, world: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``ta_syscall``: ``syscall`` by name and, for the calls tzemu implements, ``args``
        by name (a register the call does not use is not shown)."""
        name = self.name(fields)
        spec = self._specs.get(name)
        raw = fields.get("args") or ()
        if spec is None:
            return {"syscall": name}
        return {"syscall": name, "args": {arg: show(int(raw[i]))
                                          for i, (arg, show) in enumerate(spec) if i < len(raw)}}

    def ret(self, world: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``ta_syscall_return``: the call by name and its ``result`` (TEE_SUCCESS,
        TEE_ERROR_*)."""
        d: dict[str, Any] = {"syscall": self.name(fields)}
        if isinstance(fields.get("result"), int):
            d["result"] = self.code(fields["result"])
        return d


@lru_cache(maxsize=1)
def syscall_decoder() -> SyscallDecoder:
    return SyscallDecoder()
