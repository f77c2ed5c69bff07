"""C struct layouts as laid out values: :class:`Field`, :class:`StructLayout` and their
little-endian byte encoding (``pack``/``unpack``), which both worlds use to read and write the
structs they exchange in guest memory. The layouts themselves are computed by
:mod:`emu.abi.layout` from the headers.
"""
from __future__ import annotations

import struct as _struct
from dataclasses import dataclass, field as _dc_field, replace
from typing import Any, Mapping


class LayoutError(Exception):
    """A type could not be laid out (unknown or incomplete type, bad member...)."""

    def __init__(self, message: str, coord: Any = None) -> None:
        super().__init__(message)
        self.coord = coord


@dataclass
class Field:
    """One member: byte offset and size (whole array for arrays; 0 for a flexible array)."""

    name: str
    offset: int
    size: int
    type_name: str
    count: int | None = None            # array length, 0 for a flexible array, None if scalar
    is_struct: StructLayout | None = None  # layout of a struct/union member (or element)
    elem_size: int = 0
    signed: bool = False
    kind: str = "int"                   # "int", "pointer", "float" or "struct"
    bit_offset: int | None = None       # bit-fields: position inside the unit at `offset`
    bit_width: int | None = None


@dataclass
class StructLayout:
    """Layout of a struct or union; anonymous members have the name ``""``."""

    name: str
    size: int
    align: int
    is_union: bool
    fields: list[Field] = _dc_field(default_factory=list)
    packed: bool = False

    def __repr__(self) -> str:
        kind = "union" if self.is_union else "struct"
        members = ", ".join(f"{f.name or '<anon>'}@{f.offset}" for f in self.fields)
        name = self.name or "<anonymous>"
        return f"<{kind} {name} size={self.size} align={self.align}: {members}>"

    def field(self, path: str) -> Field:
        """Member by name; ``"u.value.a"`` reaches into nested members (absolute offset)."""
        found = self._find(path.split("."), 0)
        if found is None:
            names = ", ".join(self.member_names())
            raise KeyError(f"{self.name} has no member {path!r} (members: {names})")
        return found

    def offset_of(self, path: str) -> int:
        return self.field(path).offset

    def member_names(self) -> list[str]:
        names: list[str] = []
        for f in self.fields:
            names.extend(f.is_struct.member_names() if not f.name and f.is_struct else [f.name])
        return names

    def _find(self, parts: list[str], base: int) -> Field | None:
        head, rest = parts[0], parts[1:]
        for f in self.fields:
            if f.name == head:
                if not rest:
                    return replace(f, offset=base + f.offset) if base else f
                if f.is_struct is not None and f.count is None:
                    return f.is_struct._find(rest, base + f.offset)
                return None
            if not f.name and f.is_struct is not None:
                found = f.is_struct._find(parts, base + f.offset)
                if found is not None:
                    return found
        return None

    def pack(self, values: Mapping[str, Any] | None = None) -> bytes:
        """Bytes of this struct; missing members are zero.  Flexible arrays are not packed."""
        buf = bytearray(self.size)
        self.pack_into(buf, 0, values or {})
        return bytes(buf)

    def pack_into(self, buf: bytearray, offset: int, values: Mapping[str, Any]) -> None:
        unknown = [k for k in values if self._find([k], 0) is None]
        if unknown:
            raise KeyError(f"{self.name} has no member(s) {unknown} "
                           f"(members: {', '.join(self.member_names())})")
        for f in self.fields:
            if not f.name and f.is_struct is not None:
                sub = {k: v for k, v in values.items() if f.is_struct._find([k], 0)}
                if sub:
                    f.is_struct.pack_into(buf, offset + f.offset, sub)
            elif f.name in values:
                _put_field(buf, offset, f, values[f.name], self.name)

    def unpack(self, buf: bytes | bytearray | memoryview, offset: int = 0) -> dict[str, Any]:
        """Members as a dict: nested dicts, bytes for u8/char arrays, lists for other arrays."""
        mv = memoryview(buf)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        if offset < 0 or len(mv) - offset < self.size:
            raise ValueError(f"{self.name} needs {self.size} bytes at offset {offset}, "
                             f"buffer has {len(mv)}")
        out: dict[str, Any] = {}
        for f in self.fields:
            if not f.name and f.is_struct is not None:
                out.update(f.is_struct.unpack(mv, offset + f.offset))
            elif f.count != 0:
                out[f.name] = _get_field(mv, offset, f)
        return out


def _put_field(buf: bytearray, base: int, f: Field, value: Any, owner: str) -> None:
    at = base + f.offset
    if f.count == 0:
        raise ValueError(f"{owner}.{f.name} is a flexible array: pack() covers only the "
                         f"fixed part; append the elements yourself")
    if f.bit_width is not None:
        limit = 1 << f.bit_width
        if not -(limit >> 1) <= int(value) < limit:
            raise ValueError(f"{owner}.{f.name}: {value} does not fit in {f.bit_width} bits")
        unit = int.from_bytes(buf[at:at + f.size], "little")
        mask = (limit - 1) << f.bit_offset
        unit = (unit & ~mask) | ((int(value) << f.bit_offset) & mask)
        buf[at:at + f.size] = unit.to_bytes(f.size, "little")
    elif f.count is None:
        _put_scalar(buf, at, f, value, f.size, f"{owner}.{f.name}")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) > f.size:
            raise ValueError(f"{owner}.{f.name} holds {f.size} bytes, got {len(data)}")
        buf[at:at + len(data)] = data
    else:
        items = list(value)
        if len(items) > f.count:
            raise ValueError(f"{owner}.{f.name} has {f.count} elements, got {len(items)}")
        for i, item in enumerate(items):
            _put_scalar(buf, at + i * f.elem_size, f, item, f.elem_size, f"{owner}.{f.name}[{i}]")


def _put_scalar(buf: bytearray, at: int, f: Field, value: Any, size: int, what: str) -> None:
    if f.is_struct is not None:
        if isinstance(value, Mapping):
            f.is_struct.pack_into(buf, at, value)
            return
        data = bytes(value)
        if len(data) > size:
            raise ValueError(f"{what} holds {size} bytes, got {len(data)}")
        buf[at:at + len(data)] = data
    elif f.kind == "float":
        if size not in (4, 8):
            raise ValueError(f"{what}: cannot encode a {size}-byte float")
        _struct.pack_into("<f" if size == 4 else "<d", buf, at, value)
    else:
        v = int(value)
        bits = size * 8
        if not -(1 << (bits - 1)) <= v < (1 << bits):
            raise ValueError(f"{what}: {value} does not fit in {bits} bits")
        buf[at:at + size] = (v & ((1 << bits) - 1)).to_bytes(size, "little")


def _get_field(mv: memoryview, base: int, f: Field) -> Any:
    at = base + f.offset
    if f.bit_width is not None:
        unit = int.from_bytes(mv[at:at + f.size], "little")
        v = (unit >> f.bit_offset) & ((1 << f.bit_width) - 1)
        if f.signed and v >> (f.bit_width - 1):
            v -= 1 << f.bit_width
        return v
    if f.count is None:
        return _get_scalar(mv, at, f, f.size)
    if f.is_struct is None and f.kind == "int" and f.elem_size == 1 and not f.signed:
        return bytes(mv[at:at + f.size])
    return [_get_scalar(mv, at + i * f.elem_size, f, f.elem_size) for i in range(f.count)]


def _get_scalar(mv: memoryview, at: int, f: Field, size: int) -> Any:
    if f.is_struct is not None:
        return f.is_struct.unpack(mv, at)
    if f.kind == "float":
        return _struct.unpack_from("<f" if size == 4 else "<d", mv, at)[0]
    return int.from_bytes(mv[at:at + size], "little", signed=f.signed)
