"""ABI numbers and layouts read from each world's own C headers.

Each emulated world (Linux, the secure OS, the EL3 firmware) keeps its own copy of the ABI
headers, as the real trees do; the emulator never hard-codes those numbers in Python.
:func:`load_headers` turns a header set into an :class:`AbiSet` (integer constants, struct
layouts, function-like macros) and caches it, in process and on disk, keyed by the files'
contents, so repeated boots cost nothing.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .cexpr import CExprError, NotConstant
from .layout import Field, LayoutError, StructLayout, TypeTable

# The preprocessing/parsing front end (emu.abi.loader, which needs pcpp) is imported only
# when headers really have to be read: a process served from the cache never loads it.

__all__ = ["load_headers", "AbiSet", "StructLayout", "Field", "AbiError", "Unsupported",
           "MacroDef", "linux_abi", "secure_abi", "firmware_abi", "LINUX_HEADERS",
           "SECURE_HEADERS", "FIRMWARE_HEADERS", "clear_cache"]

#: Bump when the loader's output for the same input changes (invalidates disk caches).
LOADER_VERSION = 6

_ROOT = Path(__file__).resolve().parents[2]

LINUX_HEADERS: tuple[str, ...] = (
    "uapi/linux/tee.h", "uapi/asm-generic/fcntl.h", "uapi/linux/dma-heap.h", "linux/tee_core.h", "linux/arm-smccc.h",
    "linux/arm_ffa.h", "drivers/tee/optee/optee_smc.h", "drivers/tee/optee/optee_msg.h",
    "drivers/tee/optee/optee_rpc_cmd.h", "drivers/tee/optee/optee_ffa.h",
    "drivers/tee/optee/optee_private.h",
)
SECURE_HEADERS: tuple[str, ...] = (
    "sm/optee_smc.h", "optee_msg.h", "optee_rpc_cmd.h", "optee_ffa.h", "ffa.h",
    "tee_api_defines.h", "tee_api_types.h", "user_ta_header.h", "tee_syscall_numbers.h",
    "utee_types.h", "mobj_use_case.h", "teesmc_opteed.h", "drivers/tzc400.h",
)
FIRMWARE_HEADERS: tuple[str, ...] = ("smccc.h", "teesmc_opteed.h", "ffa_svc.h",
                                      "drivers/arm/tzc400.h")


#: Predefined macros of the emulated target (GCC, AArch64 LP64 little-endian).
DEFAULT_PREDEFINED: dict[str, str] = {
    "__aarch64__": "1", "__LP64__": "1", "_LP64": "1", "__CHAR_BIT__": "8",
    "__CHAR_UNSIGNED__": "1", "__SIZEOF_SHORT__": "2", "__SIZEOF_INT__": "4",
    "__SIZEOF_LONG__": "8", "__SIZEOF_LONG_LONG__": "8", "__SIZEOF_POINTER__": "8",
    "__ORDER_LITTLE_ENDIAN__": "1234", "__ORDER_BIG_ENDIAN__": "4321",
    "__BYTE_ORDER__": "__ORDER_LITTLE_ENDIAN__", "__LITTLE_ENDIAN_BITFIELD": "1",
}


class AbiError(Exception):
    """Headers could not be loaded, or a name/macro is not what the caller expected."""

    def __init__(self, message: str, problems: Iterable[Unsupported] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class Unsupported:
    """A construct the loader did not understand, with where it is."""

    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}"


@dataclass(frozen=True)
class MacroDef:
    """A ``#define`` as written (``params`` is None for object-like macros)."""

    name: str
    params: tuple[str, ...] | None
    body: str
    file: str
    line: int
    variadic: bool = False

    def define_text(self) -> str:
        if self.params is None:
            return f"{self.name} {self.body}"
        params = list(self.params)
        if self.variadic:
            params[-1] = "..." if params[-1] == "__VA_ARGS__" else params[-1] + "..."
        return f"{self.name}({', '.join(params)}) {self.body}"



class _Constants:
    """``abi.c.NAME``: attribute access to the integer constants.

    Every constant is an instance attribute, so a lookup on a hot path is a plain attribute
    read; only a missing name reaches ``__getattr__``, which explains why it is missing.
    """

    def __init__(self, abi: AbiSet) -> None:
        self._abi = abi
        self.__dict__.update(abi.constants)

    def __getattr__(self, name: str) -> int:
        try:
            return self._abi.constants[name]
        except KeyError:
            raise AttributeError(self._abi.why_missing(name)) from None

    def __dir__(self) -> list[str]:
        return list(self._abi.constants)


class AbiSet:
    """Constants, struct layouts and macros of one header set."""

    def __init__(self, include_dirs: Sequence[str], requested: Sequence[str],
                 predefined: Mapping[str, str], *, constants: dict[str, int],
                 constant_types: dict[str, str], structs: dict[str, StructLayout],
                 defines: dict[str, MacroDef], locations: dict[str, tuple[str, int]],
                 headers: list[str], unsupported: list[Unsupported], skipped: dict[str, str],
                 types: TypeTable, pp: Any = None) -> None:
        self.include_dirs = list(include_dirs)
        self.requested = list(requested)
        self.predefined = dict(predefined)
        self.constants = constants                # name -> value as C computes it
        self.constant_types = constant_types      # name -> C type of that value
        self.structs = structs                    # tag or typedef name -> layout
        self.defines = defines                    # every #define of the set
        self.macros = {n: m for n, m in defines.items() if m.params is not None}
        self.locations = locations                # name -> (file, line)
        self.headers = headers                    # absolute paths actually read
        self.unsupported = unsupported            # constructs not understood
        self.skipped = skipped                    # object-like macros that are not integers
        self._types = types
        self._pp = pp
        self._parser: Any = None
        self._memo: dict[tuple, int] = {}

    @property
    def c(self) -> _Constants:
        return _Constants(self)

    def describe(self) -> str:
        return f"{'+'.join(self.include_dirs)} [{', '.join(self.requested)}]"

    def __repr__(self) -> str:
        return (f"<AbiSet {self.describe()}: {len(self.constants)} constants, "
                f"{len(self.structs)} structs, {len(self.macros)} macros>")

    def why_missing(self, name: str) -> str:
        msg = f"{name!r} is not an integer constant of the header set {self.describe()}"
        if name in self.macros:
            return msg + f"; it is a function-like macro: use call_macro({name!r}, ...)"
        if name in self.skipped:
            return msg + f"; its definition was not an integer constant: {self.skipped[name]}"
        return msg

    def struct(self, name: str) -> StructLayout:
        """Layout by tag or typedef name, with an error naming the header set."""
        try:
            return self.structs[name]
        except KeyError:
            raise AbiError(f"no struct/union {name!r} in {self.describe()}") from None

    def sizeof(self, spelling: str) -> int:
        """sizeof a type written as C text, e.g. ``"struct optee_msg_arg"`` or ``"__u32"``."""
        try:
            return self._types.sizeof(spelling)
        except LayoutError as e:
            raise AbiError(f"sizeof({spelling}): {e} in {self.describe()}") from None

    def call_macro(self, name: str, *args: int | str) -> int:
        """Expand ``name(args...)`` with this header set's macros and evaluate it as C."""
        key = (name, args)
        if key in self._memo:
            return self._memo[key]
        if name not in self.defines:
            raise AbiError(f"no macro {name!r} in the header set {self.describe()}")
        from . import loader

        if self.defines[name].params is None and not args:
            text = name
        else:
            text = f"{name}({', '.join(_c_arg(a) for a in args)})"
        expanded = loader.expand(self._preprocessor(), text)
        if self._parser is None:
            self._parser = loader.CParser()
        try:
            value = loader.evaluate(expanded, self._parser, self._types).v
        except (NotConstant, CExprError, LayoutError, KeyError) as e:
            raise AbiError(f"{text} expands to {expanded.strip()!r}, which is not an integer "
                           f"constant ({e}) in {self.describe()}") from None
        self._memo[key] = value
        return value

    def _preprocessor(self) -> Any:
        if self._pp is None:  # after unpickling: rebuild from the stored definitions
            from . import loader

            self._pp = loader.make_preprocessor([], self.predefined, [], [])
            for m in self.defines.values():
                self._pp.define(m.define_text())
        return self._pp

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pp"], state["_parser"], state["_memo"] = None, None, {}
        return state


def _c_arg(a: int | str) -> str:
    if isinstance(a, str):
        return a
    if a < 0:
        return f"(-{-a})"
    return hex(a) if a > 0x7FFFFFFF else str(a)


_MEMORY: dict[tuple, tuple[AbiSet, list[tuple[str, int, int, str]]]] = {}


def clear_cache() -> None:
    """Forget in-process results (the disk cache is keyed by contents and needs no reset)."""
    _MEMORY.clear()


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _deps(paths: Sequence[str]) -> list[tuple[str, int, int, str]]:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((p, st.st_size, st.st_mtime_ns, _digest(p)))
    return out


def _still_valid(deps: list[tuple[str, int, int, str]], trust_mtime: bool) -> bool:
    for i, (path, size, mtime, digest) in enumerate(deps):
        try:
            st = os.stat(path)
            if trust_mtime and (st.st_size, st.st_mtime_ns) == (size, mtime):
                continue
            if _digest(path) != digest:
                return False
            deps[i] = (path, st.st_size, st.st_mtime_ns, digest)
        except OSError:
            return False
    return True


def _disk_dir() -> Path | None:
    if os.environ.get("TZEMU_ABI_DISK_CACHE", "1") == "0":
        return None
    base = os.environ.get("TZEMU_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tzemu")
    return Path(base) / "abi"


def _disk_load(key: tuple) -> tuple[AbiSet, list] | None:
    d = _disk_dir()
    if d is None:
        return None
    path = d / (hashlib.sha256(repr(key).encode()).hexdigest()[:40] + ".pickle")
    try:
        with open(path, "rb") as f:
            stored_key, deps, abi = pickle.load(f)
    except Exception:  # absent, truncated or from an incompatible version
        return None
    if stored_key != key or not _still_valid(deps, trust_mtime=False):
        return None
    return abi, deps


def _disk_store(key: tuple, deps: list, abi: AbiSet) -> None:
    d = _disk_dir()
    if d is None:
        return
    path = d / (hashlib.sha256(repr(key).encode()).hexdigest()[:40] + ".pickle")
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump((key, deps, abi), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache location only costs speed


def load_headers(include_dir: str | Path, headers: Sequence[str], *,
                 extra_include_dirs: Sequence[str | Path] = (),
                 predefined: Mapping[str, str] | None = None,
                 strict: bool = True) -> AbiSet:
    """Load ``headers`` (relative to ``include_dir``) into an :class:`AbiSet`.

    With ``strict`` (the default) any construct the loader did not understand raises
    :class:`AbiError` listing each one with its file:line.
    """
    dirs = tuple(str(Path(d).resolve()) for d in (include_dir, *extra_include_dirs))
    preds = dict(DEFAULT_PREDEFINED)
    preds.update(predefined or {})
    key = (LOADER_VERSION, dirs, tuple(headers), tuple(sorted(preds.items())))
    hit = _MEMORY.get(key)
    if hit is None or not _still_valid(hit[1], trust_mtime=True):
        hit = _disk_load(key)
        if hit is None:
            from .loader import translate

            abi = AbiSet(dirs, headers, preds, **translate(list(dirs), list(headers), preds))
            hit = (abi, _deps(abi.headers))
            _disk_store(key, hit[1], abi)
        _MEMORY[key] = hit
    abi = hit[0]
    if strict and abi.unsupported:
        lines = "\n  ".join(str(u) for u in abi.unsupported)
        raise AbiError(f"{len(abi.unsupported)} unsupported construct(s) in the header set "
                       f"{abi.describe()}:\n  {lines}", abi.unsupported)
    return abi


def _tree_include(tree: Path | None, side: str) -> Path:
    """``tree`` is a checkout holding ``<side>/include``, or that include directory itself."""
    if tree is None:
        return _ROOT / side / "include"
    nested = Path(tree) / side / "include"
    return nested if nested.is_dir() else Path(tree)


#: Stand-in "system include" directories (see sysinclude/README.md): definitions of the
#: tree-internal headers real ABI headers include, searched after the tree itself. The basic
#: headers a world's own copy already has (types.h, bits.h, ioctl.h, util.h) are not repeated
#: there: the world's own copy is searched last.
SYSINCLUDE = Path(__file__).resolve().parent / "sysinclude"


def system_include_dirs(side: str) -> tuple[Path, Path]:
    """What a ``"linux"`` or ``"optee_os"`` header set searches after its own tree: the
    stand-ins, then the world's own header copy."""
    own = {"linux": "linux_side", "optee_os": "tee_os"}[side]
    return (SYSINCLUDE / side, _tree_include(None, own))


def linux_abi(tree: Path | None = None) -> AbiSet:
    """The normal world's headers (linux_side/include)."""
    return load_headers(_tree_include(tree, "linux_side"), LINUX_HEADERS,
                        extra_include_dirs=system_include_dirs("linux"))


def secure_abi(tree: Path | None = None) -> AbiSet:
    """The secure OS's headers (tee_os/include)."""
    return load_headers(_tree_include(tree, "tee_os"), SECURE_HEADERS,
                        extra_include_dirs=system_include_dirs("optee_os"))


def firmware_abi(tree: Path | None = None) -> AbiSet:
    """The EL3 firmware's headers (firmware/include)."""
    return load_headers(_tree_include(tree, "firmware"), FIRMWARE_HEADERS)
