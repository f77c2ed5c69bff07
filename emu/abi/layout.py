"""Struct and union layouts under the LP64 AArch64 ABI, and their byte encoding.

The emulated worlds exchange C structs through guest memory; the offsets must be the ones a
GCC build of the same headers would use.  :class:`Builder` computes them from the pycparser
tree (natural alignment, ``packed``/``aligned`` attributes, ``#pragma pack``, ``_Alignas``,
flexible arrays, bit-fields); :class:`StructLayout` (:mod:`emu.abi.struct_layout`)
packs/unpacks little-endian bytes.
"""
from __future__ import annotations

from dataclasses import dataclass, field as _dc_field, replace
from typing import Any, Callable, Iterator, Mapping

from pycparser import c_ast

from .cexpr import INT, LONG, UINT, ULONG, CExprError, CInt, Evaluator, NotConstant, Value, \
    base_scalar
from .struct_layout import Field, LayoutError, StructLayout


@dataclass(frozen=True, eq=False)
class TypeDesc:
    """A resolved C type: what sizeof/alignof/casts and member layout need to know."""

    name: str
    size: int
    align: int
    kind: str                       # int float void pointer struct union enum array func
    int_type: CInt | None = None    # integer-like types (and pointers, as unsigned long)
    layout: StructLayout | None = None
    elem: TypeDesc | None = None    # arrays
    count: int | None = None        # arrays: element count, None if flexible


def _roundup(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def type_name(node: Any) -> str:
    """Readable C spelling of a declarator type, without resolving it."""
    if isinstance(node, (c_ast.TypeDecl, c_ast.Typename)):
        return type_name(node.type)
    if isinstance(node, c_ast.IdentifierType):
        return " ".join(node.names)
    if isinstance(node, (c_ast.Struct, c_ast.Union, c_ast.Enum)):
        kw = {c_ast.Struct: "struct", c_ast.Union: "union", c_ast.Enum: "enum"}[type(node)]
        return f"{kw} {node.name or '<anonymous>'}"
    if isinstance(node, c_ast.PtrDecl):
        return type_name(node.type) + " *"
    if isinstance(node, c_ast.ArrayDecl):
        return type_name(node.type) + "[]"
    return "function"


class TypeTable:
    """Named types (typedefs, tags, enum constants) and resolution of type trees."""

    def __init__(self) -> None:
        self.typedefs: dict[str, TypeDesc] = {}
        self.tags: dict[str, TypeDesc] = {}        # "struct x" / "union x" / "enum x"
        self.enum_values: dict[str, Value] = {}

    def evaluator(self) -> Evaluator:
        return Evaluator(self.enum_values.get, self.resolve, self._offsetof)

    def resolve(self, node: Any) -> TypeDesc:
        if isinstance(node, (c_ast.Typename, c_ast.TypeDecl, c_ast.Decl, c_ast.Typedef)):
            return self.resolve(node.type)
        if isinstance(node, c_ast.IdentifierType):
            return self._named(node.names, node.coord)
        if isinstance(node, (c_ast.Struct, c_ast.Union, c_ast.Enum)):
            has_body = node.values if isinstance(node, c_ast.Enum) else node.decls
            if has_body is not None:
                return self._body(node)
            key = type_name(node)
            if key not in self.tags:
                raise LayoutError(f"incomplete type '{key}'", node.coord)
            return self.tags[key]
        if isinstance(node, c_ast.PtrDecl):
            return TypeDesc(type_name(node), 8, 8, "pointer", ULONG)
        if isinstance(node, c_ast.ArrayDecl):
            elem = self.resolve(node.type)
            if node.dim is None:
                return TypeDesc(elem.name, 0, elem.align, "array", None, None, elem, None)
            count = self.evaluator().value(node.dim)
            if count < 0:
                raise LayoutError(f"negative array size {count}", node.coord)
            return TypeDesc(elem.name, elem.size * count, elem.align, "array", None, None,
                            elem, count)
        if isinstance(node, c_ast.FuncDecl):
            return TypeDesc("function", 1, 1, "func")
        raise LayoutError(f"unsupported type construct {type(node).__name__}",
                          getattr(node, "coord", None))

    def _named(self, names: list[str], coord: Any) -> TypeDesc:
        if len(names) == 1 and names[0] in self.typedefs:
            return self.typedefs[names[0]]
        scalar = base_scalar(list(names))
        if scalar is None:
            raise LayoutError(f"unknown type '{' '.join(names)}'", coord)
        return TypeDesc(" ".join(names), scalar.size, scalar.align, scalar.kind, scalar.int_type)

    def _body(self, node: Any) -> TypeDesc:
        raise LayoutError("type definitions are not allowed here", node.coord)

    def _offsetof(self, typename: Any, member: Any) -> int:
        layout = self.resolve(typename).layout
        if layout is None:
            raise NotConstant("offsetof on a non-struct type")
        return _designator(layout, member, self.evaluator())[0]

    def sizeof(self, spelling: str) -> int:
        """sizeof of a type written as text: ``"struct foo"``, ``"__u32"``, ``"char *"``."""
        text = " ".join(spelling.split())
        if text.endswith("*"):
            return 8
        if text in self.tags:
            return self.tags[text].size
        return self._named(text.split(), None).size


def _designator(layout: StructLayout, node: Any, ev: Evaluator) -> tuple[int, Field]:
    """Offset and member named by an offsetof() designator such as ``a.b[2].c``."""
    if isinstance(node, c_ast.ID):
        f = layout.field(node.name)
        return f.offset, f
    if isinstance(node, c_ast.StructRef):
        off, f = _designator(layout, node.name, ev)
        if f.is_struct is None:
            raise NotConstant(f"offsetof: '{f.name}' is not a struct")
        g = f.is_struct.field(node.field.name)
        return off + g.offset, g
    if isinstance(node, c_ast.ArrayRef):
        off, f = _designator(layout, node.name, ev)
        return off + ev.value(node.subscript) * f.elem_size, replace(f, count=None)
    raise NotConstant("unsupported offsetof member designator")


@dataclass
class StructAttr:
    """GNU attributes / #pragma pack in force for one struct body."""

    packed: bool = False
    aligned: list[str | None] = _dc_field(default_factory=list)  # expressions; None = max
    pack: int | None = None


def _preorder(node: c_ast.Node) -> Iterator[c_ast.Node]:
    yield node
    for _, child in node.children():
        yield from _preorder(child)


class Builder(TypeTable):
    """Lays out every type defined in a sequence of parsed chunks, in source order."""

    def __init__(self, struct_attrs: Mapping[int, StructAttr],
                 decl_attrs: Mapping[tuple[int | None, str], StructAttr],
                 eval_text: Callable[[str], int],
                 report: Callable[[Any, str], None]) -> None:
        super().__init__()
        self.struct_attrs, self.decl_attrs = struct_attrs, decl_attrs
        self.eval_text, self.report = eval_text, report
        self.structs: dict[str, StructLayout] = {}
        self.locations: dict[str, tuple[str, int]] = {}
        self.enum_order: list[str] = []
        self._ordinals: dict[int, int] = {}
        self._bodies: dict[int, TypeDesc] = {}
        self._lazy: dict[str, Any] = {}   # typedefs of types still incomplete
        self._keep: list[c_ast.Node] = []  # keeps ids in _bodies/_ordinals unique

    def add_chunk(self, ast: c_ast.FileAST, first_ordinal: int) -> None:
        self._keep.append(ast)
        n = first_ordinal
        for node in _preorder(ast):
            if isinstance(node, (c_ast.Struct, c_ast.Union)) and node.decls is not None \
                    and id(node) not in self._ordinals:
                self._ordinals[id(node)] = n
                n += 1
        for ext in ast.ext:
            try:
                self._external(ext)
            except (LayoutError, NotConstant, CExprError, KeyError) as e:
                msg = e.args[0] if isinstance(e, KeyError) else str(e)
                self.report(getattr(e, "coord", None) or ext.coord, msg)

    def _external(self, ext: c_ast.Node) -> None:
        if isinstance(ext, c_ast.StaticAssert):
            self._static_assert(ext)
            return
        if not isinstance(ext, (c_ast.Decl, c_ast.Typedef)):
            return
        for node in _preorder(ext.type):
            if isinstance(node, (c_ast.Struct, c_ast.Union)) and node.decls is not None:
                self._body(node)
            elif isinstance(node, c_ast.Enum) and node.values is not None:
                self._body(node)
        if isinstance(ext, c_ast.Typedef):
            self._typedef(ext.name, ext.type, ext.coord)

    def _typedef(self, name: str, node: Any, coord: Any) -> None:
        try:
            desc = self.resolve(node)
        except LayoutError as e:
            if not str(e).startswith("incomplete type"):
                raise
            self._lazy[name] = (node, coord)
            return
        attr = self.decl_attrs.get((None, name))
        if attr and attr.aligned:
            desc = replace(desc, align=self._attr_align(attr.aligned))
        self.typedefs[name] = replace(desc, name=name)
        self._lazy.pop(name, None)
        if desc.kind in ("struct", "union") and desc.layout is not None:
            self.structs.setdefault(name, desc.layout)
            self.locations.setdefault(name, (coord.file, coord.line))

    def _named(self, names: list[str], coord: Any) -> TypeDesc:
        if len(names) == 1 and names[0] in self._lazy:
            node, tcoord = self._lazy[names[0]]
            self._typedef(names[0], node, tcoord)
        return super()._named(names, coord)

    def _static_assert(self, node: c_ast.StaticAssert) -> None:
        try:
            ok = self.evaluator().value(node.cond)
        except (NotConstant, CExprError, LayoutError) as e:
            raise LayoutError(f"cannot evaluate static assertion: {e}", node.coord) from e
        if not ok:
            msg = node.message.value if node.message is not None else ""
            raise LayoutError(f"static assertion failed {msg}".strip(), node.coord)

    def _attr_align(self, exprs: list[str | None]) -> int:
        return max(16 if e is None else self.eval_text(e) for e in exprs)

    def _body(self, node: Any) -> TypeDesc:
        if id(node) in self._bodies:
            return self._bodies[id(node)]
        if isinstance(node, c_ast.Enum):
            desc = self._enum(node)
        else:
            layout = self._layout(node)
            kw = "union" if layout.is_union else "struct"
            desc = TypeDesc(f"{kw} {node.name or '<anonymous>'}", layout.size, layout.align,
                            kw, None, layout)
            if node.name:
                self.structs[node.name] = layout
                self.locations[node.name] = (node.coord.file, node.coord.line)
        self._bodies[id(node)] = desc
        if node.name:
            self.tags[desc.name] = desc
        return desc

    def _enum(self, node: c_ast.Enum) -> TypeDesc:
        ev = self.evaluator()
        prev: int = -1
        values: list[int] = []
        for e in node.values.enumerators:
            prev = ev.value(e.value) if e.value is not None else prev + 1
            t = next(t for t in (INT, UINT, LONG, ULONG) if t.fits(prev))
            self.enum_values[e.name] = Value(prev, t)
            self.enum_order.append(e.name)
            self.locations[e.name] = (e.coord.file, e.coord.line)
            values.append(prev)
        negative = any(v < 0 for v in values)
        wide = not all((INT if negative else UINT).fits(v) for v in values)
        t = (LONG if negative else ULONG) if wide else (INT if negative else UINT)
        return TypeDesc(f"enum {node.name or '<anonymous>'}", t.size, t.size, "enum", t)

    def _explicit_align(self, decl: c_ast.Decl, attr: StructAttr | None) -> int:
        aligns = [0]
        for a in getattr(decl, "align", None) or []:
            x = a.alignment
            aligns.append(self.resolve(x).align if isinstance(x, c_ast.Typename)
                          else self.evaluator().value(x))
        if attr and attr.aligned:
            aligns.append(self._attr_align(attr.aligned))
        return max(aligns)

    def _layout(self, node: Any) -> StructLayout:
        ordinal = self._ordinals.get(id(node))
        sattr = self.struct_attrs.get(ordinal) or StructAttr() if ordinal is not None \
            else StructAttr()
        is_union = isinstance(node, c_ast.Union)
        layout = StructLayout(node.name or "", 0, 1, is_union, [], sattr.packed)
        decls = [d for d in node.decls if isinstance(d, (c_ast.Decl, c_ast.StaticAssert))]
        bitpos = end = 0
        max_align = 1
        for i, d in enumerate(decls):
            if isinstance(d, c_ast.StaticAssert):
                self._static_assert(d)
                continue
            try:
                dattr = self.decl_attrs.get((ordinal, d.name)) if d.name else None
                t = self.resolve(d.type)
                if t.kind in ("void", "func"):
                    raise LayoutError(f"member '{d.name}' has incomplete type '{t.name}'")
                if t.kind == "array" and t.count is None and i != len(decls) - 1:
                    raise LayoutError(f"flexible array member '{d.name}' is not last")
                packed = sattr.packed or bool(dattr and dattr.packed)
                align = 1 if packed else t.align
                align = max(align, self._explicit_align(d, dattr))
                if sattr.pack:
                    align = min(align, sattr.pack)
                if d.bitsize is not None:
                    bitpos, end, max_align = self._bitfield(layout, d, t, packed, bitpos, end,
                                                            max_align, align)
                    continue
                start = 0 if is_union else _roundup((bitpos + 7) // 8, align)
                layout.fields.append(self._field(d.name or "", start, t))
                bitpos = (start + t.size) * 8
                end = max(end, bitpos)
                max_align = max(max_align, align)
            except LayoutError as e:
                e.coord = e.coord or d.coord
                raise
        for expr in sattr.aligned:
            max_align = max(max_align, self._attr_align([expr]))
        layout.align = max_align
        layout.size = _roundup((end + 7) // 8, max_align)
        return layout

    def _bitfield(self, layout: StructLayout, d: c_ast.Decl, t: TypeDesc, packed: bool,
                  bitpos: int, end: int, max_align: int, align: int) -> tuple[int, int, int]:
        """GCC/AAPCS64 placement: a field may not straddle a unit of its declared type."""
        if t.int_type is None:
            raise LayoutError(f"bit-field '{d.name}' has non-integer type '{t.name}'")
        width = self.evaluator().value(d.bitsize)
        unit = t.size * 8
        if not 0 <= width <= unit or (width == 0 and d.name):
            raise LayoutError(f"bad bit-field width {width} for '{d.name}'")
        pos = 0 if layout.is_union else bitpos
        if width == 0:
            return _roundup(bitpos, t.align * 8), end, max_align
        if not packed and pos // unit != (pos + width - 1) // unit:
            pos = _roundup(pos, unit)
        if packed:
            offset, bit = pos // 8, pos % 8
            nbytes = (bit + width + 7) // 8
        else:
            offset, bit, nbytes = pos // unit * t.size, pos % unit, t.size
        if d.name:
            layout.fields.append(Field(d.name, offset, nbytes, t.name, kind="int",
                                       signed=t.int_type.signed, bit_offset=bit,
                                       bit_width=width))
            max_align = max(max_align, align)
        return pos + width, max(end, pos + width), max_align

    @staticmethod
    def _field(name: str, offset: int, t: TypeDesc) -> Field:
        count: int | None = None
        elem = t
        if t.kind == "array":
            count = 1
            while elem.kind == "array":
                count = 0 if elem.count is None or count == 0 else count * elem.count
                elem = elem.elem
        kind = {"struct": "struct", "union": "struct", "pointer": "pointer",
                "float": "float"}.get(elem.kind, "int")
        signed = bool(elem.int_type and elem.int_type.signed)
        return Field(name, offset, t.size, elem.name, count, elem.layout, elem.size, signed, kind)
