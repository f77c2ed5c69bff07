"""Front end of the ABI header loader: preprocess with pcpp, scrub GNU C, parse with pycparser.

Why each step exists:

* pcpp resolves ``#include``/``#if`` and expands macros exactly like cpp, and it keeps the
  macro table so every ``#define`` can be evaluated on its own afterwards.
* pycparser only knows ISO C, so GNU extensions are removed from the token stream first;
  ``packed``/``aligned`` attributes and ``#pragma pack`` are remembered per struct body
  (numbered in source order) and per member/typedef, because they change layouts.
* The translation unit is parsed one top-level declaration at a time: a construct pycparser
  rejects is then reported with its file:line and the rest of the headers still load.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from pycparser import c_ast, c_parser
from pycparser.c_parser import Coord

from . import MacroDef, Unsupported
from .cexpr import CExprError, NotConstant, Value
from .layout import Builder, LayoutError, StructAttr, TypeTable
from .preprocess import expand, make_preprocessor


@dataclass
class _Tok:
    value: str
    file: str
    line: int
    space: bool = False
    pack: int | None = None  # #pragma pack value in force


@dataclass
class _Decl:
    """Declaration being scanned at one brace level (for member/typedef attributes)."""

    typedef: bool = False
    ident: str | None = None
    attrs: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass
class _Frame:
    kind: str
    ordinal: int | None
    saved: _Decl


@dataclass
class Chunk:
    """One top-level declaration, as text for pycparser with #line markers."""

    text: str
    first_ordinal: int


_WS = {"CPP_WS", "CPP_LINECONT", "CPP_COMMENT1", "CPP_COMMENT2"}
_IDENT = re.compile(r"[A-Za-z_]\w*$")
_KEYWORDS = set("""auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while _Bool _Alignas _Alignof _Atomic _Noreturn
_Static_assert _Thread_local __int128""".split())
_RENAMES = {"__signed__": "signed", "__signed": "signed", "__inline__": "inline",
            "__inline": "inline", "__const__": "const", "__const": "const",
            "__volatile__": "volatile", "__volatile": "volatile", "__restrict__": "restrict",
            "__restrict": "restrict", "__alignof__": "_Alignof", "__alignof": "_Alignof",
            "__builtin_offsetof": "offsetof"}
_DROP = {"__extension__"}
_SKIP_CALL = {"__declspec", "__asm__", "__asm", "asm"}
#: Attributes with no effect on sizes, offsets or values.
_HARMLESS_ATTRS = set("""unused used deprecated may_alias always_inline noinline noreturn const
pure warn_unused_result format format_arg nonnull section weak alias visibility cold hot
designated_init randomize_layout no_randomize_layout preserve_access_index externally_visible
malloc alloc_size alloc_align returns_nonnull sentinel transparent_union fallthrough nonstring
counted_by noclone optimize target flatten leaf gnu_inline artificial unavailable access copy
btf_type_tag btf_decl_tag error warning no_instrument_function no_sanitize
no_sanitize_address no_stack_protector cleanup noderef address_space context nocommon common
constructor destructor retain uninitialized tls_model no_profile_instrument_function
no_split_stack naked interrupt""".split())
_GNU_WORDS = re.compile(r"\b(" + "|".join(sorted([*_RENAMES, *_DROP], key=len, reverse=True))
                        + r")\b")
_STRING = re.compile(r'(^|[^\'\w])(u8|[LuU])?"')


def _parse_attribute(toks: list[_Tok]) -> list[tuple[str, str | None]]:
    """Split ``((a, b(x)))`` content into (name, argument-text) items."""
    items: list[list[_Tok]] = [[]]
    depth = 0
    for t in toks[2:-2]:
        if t.value == "(":
            depth += 1
        elif t.value == ")":
            depth -= 1
        if t.value == "," and depth == 0:
            items.append([])
        else:
            items[-1].append(t)
    out = []
    for item in items:
        if not item:
            continue
        name = item[0].value.strip("_") if item[0].value.startswith("__") else item[0].value
        args = _join(item[2:-1]) if len(item) > 2 and item[1].value == "(" else None
        out.append((name, args))
    return out


def _join(toks: list[_Tok]) -> str:
    return "".join((" " if t.space else "") + t.value for t in toks).strip()


def _balanced(toks: list[_Tok], i: int) -> int:
    """Index just past the parenthesised group starting at toks[i] == '('."""
    depth = 0
    for j in range(i, len(toks)):
        depth += {"(": 1, ")": -1}.get(toks[j].value, 0)
        if depth == 0:
            return j + 1
    return len(toks)


def _tokens(pp_tokens: Iterable[Any]) -> Iterator[_Tok | tuple[str, list[str], str, int]]:
    """pcpp tokens -> significant tokens; directive lines come out as tuples."""
    line_start, space = True, False
    toks = list(pp_tokens)
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.type in _WS:
            line_start = line_start or "\n" in tok.value
            space, i = True, i + 1
            continue
        if tok.value == "#" and line_start:
            j, words = i + 1, []
            while j < len(toks) and "\n" not in toks[j].value:
                if toks[j].type not in _WS:
                    words.append(toks[j].value)
                j += 1
            yield ("directive", words, tok.source or "<input>", tok.lineno)
            i = j
            continue
        line_start = False
        yield _Tok(tok.value, tok.source or "<input>", tok.lineno, space)
        space, i = False, i + 1


class Scrubber:
    """Turns the preprocessed token stream into pycparser-ready chunks plus layout attributes."""

    def __init__(self, report: Callable[[str, int, str], None]) -> None:
        self.report = report
        self.struct_attrs: dict[int, StructAttr] = {}
        self.decl_attrs: dict[tuple[int | None, str], StructAttr] = {}
        self.chunks: list[Chunk] = []

    def run(self, pp_tokens: Iterable[Any]) -> None:
        toks: list[_Tok] = []
        pack: list[int | None] = [None]
        for t in _tokens(pp_tokens):
            if isinstance(t, tuple):
                self._pragma(t, pack)
                continue
            if t.value in _DROP:
                continue
            t.value = _RENAMES.get(t.value, t.value)
            t.pack = pack[-1]
            toks.append(t)
        self._scan(toks)

    def _pragma(self, d: tuple[str, list[str], str, int], pack: list[int | None]) -> None:
        _, words, file, line = d
        if words[:2] != ["pragma", "pack"]:
            return  # other pragmas (once, GCC diagnostic...) do not affect layout
        args = [w for w in words[2:] if w not in "(),"]
        if args[:1] == ["push"]:
            pack.append(int(args[1], 0) if len(args) > 1 else pack[-1])
        elif args[:1] == ["pop"]:
            if len(pack) > 1:
                pack.pop()
        elif args and args[0].isdigit():
            pack[-1] = int(args[0])
        elif not args:
            pack[-1] = None
        else:
            self.report(file, line, f"unsupported #pragma pack{tuple(args)}")

    def _scan(self, toks: list[_Tok]) -> None:
        out: list[_Tok] = []
        stack: list[_Frame] = []
        decl = _Decl()
        ordinal = chunk_ordinal = 0
        paren = bracket = 0
        pending: StructAttr | None = None
        last_closed: _Frame | None = None
        prev: list[str] = ["", ""]
        i = 0
        while i < len(toks):
            t = toks[i]
            v = t.value
            if v in ("__attribute__", "__attribute") and i + 1 < len(toks):
                end = _balanced(toks, i + 1)
                items = self._check_attrs(_parse_attribute(toks[i + 1:end]), t)
                if prev[-1] == "}" and last_closed and last_closed.kind == "struct":
                    self._merge(self.struct_attrs, last_closed.ordinal, items)
                elif prev[-1] in ("struct", "union"):
                    pending = pending or StructAttr()
                    _apply(pending, items)
                elif prev[-1] == "}" and last_closed and items:
                    self.report(t.file, t.line, f"attributes on a {last_closed.kind} body")
                elif not stack or stack[-1].kind == "struct":
                    decl.attrs.extend(items)
                i = end
                continue
            if v in _SKIP_CALL:
                j = i + 1
                while j < len(toks) and toks[j].value in ("volatile", "goto", "inline"):
                    j += 1
                i = _balanced(toks, j) if j < len(toks) and toks[j].value == "(" else j
                continue
            if v == "{":
                p1, p2 = prev[-1], prev[-2]
                if p1 in ("struct", "union") or (p2 in ("struct", "union") and _is_ident(p1)):
                    frame = _Frame("struct", ordinal, decl)
                    attr = self.struct_attrs.setdefault(ordinal, StructAttr())
                    if pending:
                        _apply(attr, [("packed", None)] if pending.packed else [])
                        attr.aligned.extend(pending.aligned)
                    attr.pack = t.pack
                    ordinal += 1
                elif p1 == ")" and not stack and paren == 0:  # function body: drop it
                    depth, j = 0, i
                    while j < len(toks):
                        depth += {"{": 1, "}": -1}.get(toks[j].value, 0)
                        j += 1
                        if depth == 0:
                            break
                    out.append(_Tok(";", t.file, t.line, True))
                    self._flush(out, chunk_ordinal)
                    out, chunk_ordinal, decl, pending = [], ordinal, _Decl(), None
                    prev.append(";")
                    i = j
                    continue
                else:
                    kind = "enum" if "enum" in (p1, p2) else "other"
                    frame = _Frame("init" if p1 == "=" or (stack and stack[-1].kind == "init")
                                   else kind, None, decl)
                stack.append(frame)
                decl, pending = _Decl(), None
            elif v == "}" and stack:
                last_closed = stack.pop()
                decl = last_closed.saved
            elif v in ("(", ")"):
                paren += 1 if v == "(" else -1
            elif v in ("[", "]"):
                bracket += 1 if v == "[" else -1
            elif v in (";", ",") and paren == 0 and bracket == 0 and \
                    (not stack or stack[-1].kind == "struct"):
                self._end_declarator(decl, stack)
                if v == ";":
                    decl, pending = _Decl(), None
            elif v == "typedef":
                decl.typedef = True
            elif _is_ident(v) and v not in _KEYWORDS and bracket == 0 and \
                    (paren == 0 or prev[-1] in ("*", "(")):
                decl.ident = v
            out.append(t)
            prev.append(v)
            del prev[:-2]
            i += 1
            if v == ";" and not stack and paren == 0:
                self._flush(out, chunk_ordinal)
                out, chunk_ordinal = [], ordinal
        if out:
            self._flush(out, chunk_ordinal)

    def _end_declarator(self, decl: _Decl, stack: list[_Frame]) -> None:
        if decl.attrs and decl.ident and (stack or decl.typedef):
            scope = stack[-1].ordinal if stack else None
            self._merge(self.decl_attrs, (scope, decl.ident), decl.attrs)
        decl.attrs, decl.ident = [], None

    @staticmethod
    def _merge(table: dict, key: Any, items: list[tuple[str, str | None]]) -> None:
        _apply(table.setdefault(key, StructAttr()), items)

    def _check_attrs(self, items: list[tuple[str, str | None]], at: _Tok) -> list:
        kept = []
        for name, args in items:
            if name in ("packed", "aligned"):
                kept.append((name, args))
            elif name not in _HARMLESS_ATTRS:
                self.report(at.file, at.line, f"unsupported attribute '{name}'")
        return kept

    def _flush(self, toks: list[_Tok], first_ordinal: int) -> None:
        if not toks:
            return
        parts: list[str] = []
        file, line = None, 0
        for t in toks:
            if t.file != file or not line <= t.line <= line + 8:
                parts.append(f'\n#line {t.line} "{t.file}"\n')
                file, line = t.file, t.line
            elif t.line > line:
                parts.append("\n" * (t.line - line))
                line = t.line
            elif t.space:
                parts.append(" ")
            parts.append(t.value)
        parts.append("\n")
        self.chunks.append(Chunk("".join(parts), first_ordinal))


def _is_ident(v: str) -> bool:
    return bool(_IDENT.match(v))


def _apply(attr: StructAttr, items: list[tuple[str, str | None]]) -> None:
    for name, args in items:
        if name == "packed":
            attr.packed = True
        elif name == "aligned":
            attr.aligned.append(args)


class LocatedParseError(Exception):
    """pycparser rejected the text at file:line."""

    def __init__(self, file: str, line: int, msg: str) -> None:
        super().__init__(f"{file}:{line}: {msg}")
        self.file, self.line, self.msg = file, line, msg


class CParser(c_parser.CParser):
    """pycparser that starts with known typedef names and always reports a file:line."""

    def parse_chunk(self, text: str, typedefs: Iterable[str]) -> c_ast.FileAST:
        self._scope_stack = [dict.fromkeys(typedefs, True)]
        self._typedef_checked_token = None
        self.clex.input(text, "<abi>")
        self._tokens = c_parser._TokenStream(self.clex.token)
        ast = self._parse_translation_unit_or_empty()
        tok = self._peek()
        if tok is not None:
            self._parse_error(f"unexpected '{tok.value}'", self._tok_coord(tok))
        return ast

    def parse_expr(self, text: str, typedefs: Iterable[str]) -> c_ast.Node:
        return self.parse_chunk(f"int __tzemu_expr = ({text});", typedefs).ext[0].init

    def _parse_error(self, msg: str, coord: Any) -> Any:
        try:  # look one token further so "T x" pairs are visible below
            self._tokens._fill(2)
        except Exception:
            pass
        buf, idx = self._tokens._buffer, self._tokens._index
        near = [t for t in buf[idx:idx + 1] + buf[:idx][::-1] if t is not None]
        if not isinstance(coord, Coord) or not coord.line:
            coord = self._tok_coord(near[0]) if near else Coord(self.clex.filename, 0)
        for k in range(1, min(idx + 2, len(buf))):  # "T x" where T is not a known type
            a, b, before = buf[k - 1], buf[k], buf[k - 2] if k > 1 else None
            if a is not None and b is not None and a.type == b.type == "ID" and \
                    not self._is_type_in_scope(a.value) and \
                    (before is None or before.type not in ("STRUCT", "UNION", "ENUM", "GOTO")):
                msg += f" (unknown type name '{a.value}'?)"
                coord = self._tok_coord(a)
                break
        raise LocatedParseError(coord.file, coord.line or 0, msg)


def evaluate(text: str, parser: CParser, types: TypeTable) -> Value:
    """Value of a C expression, or NotConstant/CExprError/LayoutError saying why not."""
    if not text.strip():
        raise NotConstant("expands to nothing")
    if _STRING.search(text):
        raise NotConstant("not an integer (string literal)")
    text = _GNU_WORDS.sub(lambda m: _RENAMES.get(m.group(1), ""), text)
    try:
        node = parser.parse_expr(text, types.typedefs.keys())
    except LocatedParseError as e:
        raise NotConstant(f"not an expression ({e.msg})") from e
    return types.evaluator().eval(node)


def translate(include_dirs: list[str], headers: list[str],
              predefined: dict[str, str]) -> dict[str, Any]:
    """Run the whole front end over ``headers``; returns the fields of an AbiSet."""
    unsupported: list[Unsupported] = []
    opened: list[str] = []
    pp = make_preprocessor(include_dirs, predefined, unsupported, opened)
    pp.parse("".join(f"#include <{h}>\n" for h in headers), "<headers>")
    scrub = Scrubber(lambda f, ln, msg: unsupported.append(Unsupported(f, ln, msg)))
    scrub.run(iter(pp.token, None))

    parser = CParser()
    typedef_names: set[str] = set()

    def report(coord: Any, msg: str) -> None:
        file, line = (coord.file, coord.line) if isinstance(coord, Coord) else (str(coord), 0)
        unsupported.append(Unsupported(file, line or 0, msg))

    def eval_text(text: str) -> int:
        return builder.evaluator().value(parser.parse_expr(text, typedef_names))

    builder = Builder(scrub.struct_attrs, scrub.decl_attrs, eval_text, report)
    for chunk in scrub.chunks:
        try:
            ast = parser.parse_chunk(chunk.text, typedef_names)
        except LocatedParseError as e:
            unsupported.append(Unsupported(e.file, e.line, f"syntax error: {e.msg}"))
            continue
        typedef_names.update(x.name for x in ast.ext if isinstance(x, c_ast.Typedef))
        builder.add_chunk(ast, chunk.first_ordinal)

    types = TypeTable()
    types.typedefs, types.tags, types.enum_values = builder.typedefs, builder.tags, \
        builder.enum_values
    constants: dict[str, int] = {}
    ctypes: dict[str, str] = {}
    defines: dict[str, MacroDef] = {}
    skipped: dict[str, str] = {}
    locations = dict(builder.locations)
    known = set(opened)
    for name, m in pp.macros.items():
        if m.source not in known:
            continue
        params = tuple(m.arglist) if m.arglist is not None else None
        defines[name] = MacroDef(name, params, "".join(t.value for t in m.value).strip(),
                                 m.source, m.lineno, bool(m.variadic))
        locations[name] = (m.source, m.lineno)
        if params is not None:
            continue
        text = expand(pp, name)
        try:
            value = evaluate(text, parser, types)
        except (NotConstant, CExprError, LayoutError, KeyError) as e:
            skipped[name] = f"{text.strip()!r}: {e.args[0] if e.args else e}"
            continue
        constants[name], ctypes[name] = value.v, value.t.name
    for name in builder.enum_order:
        constants[name] = builder.enum_values[name].v
        ctypes[name] = builder.enum_values[name].t.name
    return dict(constants=constants, constant_types=ctypes, structs=dict(builder.structs),
                defines=defines, locations=locations, headers=opened, unsupported=unsupported,
                skipped=skipped, types=types, pp=pp)
