"""C integer constant expressions, evaluated with the C type rules of LP64 AArch64.

The values of ABI constants depend on C's typing: ``1U << 31`` is positive but ``1 << 31``
is INT_MIN, ``(__u64)-1`` is 2**64-1 and ``-6`` stays negative.  pycparser gives us the
expression tree; this module walks it carrying a (value, type) pair per node, applying
integer promotion and the usual arithmetic conversions exactly as a C compiler would.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from pycparser import c_ast


class NotConstant(Exception):
    """The expression is valid C but not an integer constant we can know (unknown name...)."""


class CExprError(Exception):
    """The expression is an integer constant expression that C itself rejects."""


@dataclass(frozen=True)
class CInt:
    """An integer type: byte size, signedness and conversion rank."""

    name: str
    size: int
    signed: bool
    rank: int

    @property
    def bits(self) -> int:
        return self.size * 8

    def wrap(self, value: int) -> int:
        """Reduce ``value`` modulo 2**bits and reinterpret it as this type does."""
        mask = (1 << self.bits) - 1
        value &= mask
        if self.signed and value >> (self.bits - 1):
            value -= 1 << self.bits
        return value

    def fits(self, value: int) -> bool:
        if self.signed:
            return -(1 << (self.bits - 1)) <= value < (1 << (self.bits - 1))
        return 0 <= value < (1 << self.bits)


BOOL = CInt("_Bool", 1, False, 0)
CHAR = CInt("char", 1, False, 1)  # plain char is unsigned on AArch64
SCHAR = CInt("signed char", 1, True, 1)
UCHAR = CInt("unsigned char", 1, False, 1)
SHORT = CInt("short", 2, True, 2)
USHORT = CInt("unsigned short", 2, False, 2)
INT = CInt("int", 4, True, 3)
UINT = CInt("unsigned int", 4, False, 3)
LONG = CInt("long", 8, True, 4)
ULONG = CInt("unsigned long", 8, False, 4)
LLONG = CInt("long long", 8, True, 5)
ULLONG = CInt("unsigned long long", 8, False, 5)
INT128 = CInt("__int128", 16, True, 6)
UINT128 = CInt("unsigned __int128", 16, False, 6)
_UNSIGNED_OF = {SCHAR: UCHAR, CHAR: UCHAR, SHORT: USHORT, INT: UINT, LONG: ULONG,
                LLONG: ULLONG, INT128: UINT128}


class Value(NamedTuple):
    """An evaluated integer with its C type."""

    v: int
    t: CInt


class Scalar(NamedTuple):
    """Size/alignment of a base type; ``int_type`` is None for floating and void types."""

    size: int
    align: int
    int_type: CInt | None
    kind: str  # "int", "float" or "void"


def base_scalar(names: list[str]) -> Scalar | None:
    """Map a C base-type keyword list (``['unsigned', 'long']``) to its LP64 scalar type."""
    words = [n.strip("_") if n in ("__signed__", "__signed", "__int128", "__int128_t") else n
             for n in names]
    longs = words.count("long")
    unsigned = "unsigned" in words
    rest = {w for w in words if w not in ("long", "unsigned", "signed", "int")}
    if not rest:
        if not words:
            return None
        t = {0: INT, 1: LONG, 2: LLONG}.get(longs)
        if t is None:
            return None
        t = _UNSIGNED_OF[t] if unsigned else t
        return Scalar(t.size, t.size, t, "int")
    if len(rest) != 1:
        return None
    word = rest.pop()
    if word == "char" and not longs:
        t = UCHAR if unsigned else (SCHAR if "signed" in words else CHAR)
    elif word == "short" and not longs:
        t = USHORT if unsigned else SHORT
    elif word in ("int128", "int128_t") and not longs:
        t = UINT128 if unsigned else INT128
    elif word == "_Bool" and len(words) == 1:
        t = BOOL
    elif word == "float" and len(words) == 1:
        return Scalar(4, 4, None, "float")
    elif word == "double" and longs <= 1 and len(words) == longs + 1:
        return Scalar(16, 16, None, "float") if longs else Scalar(8, 8, None, "float")
    elif word == "void" and len(words) == 1:
        return Scalar(1, 1, None, "void")
    else:
        return None
    return Scalar(t.size, t.size, t, "int")


def promote(t: CInt) -> CInt:
    """Integer promotion: everything narrower than int becomes int."""
    return INT if t.rank < INT.rank else t


def common_type(a: CInt, b: CInt) -> CInt:
    """The usual arithmetic conversions of two (already promoted) integer types."""
    a, b = promote(a), promote(b)
    if a == b:
        return a
    if a.signed == b.signed:
        return a if a.rank >= b.rank else b
    u, s = (a, b) if not a.signed else (b, a)
    if u.rank >= s.rank:
        return u
    if s.size > u.size:
        return s
    return _UNSIGNED_OF[s]


#: GCC count-trailing-zeros builtins (FIELD_PREP/FIELD_GET locate a mask's low bit with them).
_CTZ = ("__builtin_ctz", "__builtin_ctzl", "__builtin_ctzll")

_INT_RE = re.compile(r"^(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)([uUlL]*)$")
_SUFFIXES = {"": (False, 0), "u": (True, 0), "l": (False, 1), "ul": (True, 1), "lu": (True, 1),
             "ll": (False, 2), "ull": (True, 2), "llu": (True, 2)}


def parse_int_literal(text: str) -> Value:
    """Value and type of an integer literal, following C's rules for the literal's type."""
    m = _INT_RE.match(text.strip())
    if not m:
        raise NotConstant(f"not an integer literal: {text!r}")
    body, suffix = m.groups()
    if suffix.lower() not in _SUFFIXES:
        raise CExprError(f"bad integer suffix in {text!r}")
    unsigned, longs = _SUFFIXES[suffix.lower()]
    if body[:2] in ("0x", "0X"):
        value, decimal = int(body[2:], 16), False
    elif body[:2] in ("0b", "0B"):
        value, decimal = int(body[2:], 2), False
    elif len(body) > 1 and body[0] == "0":
        value, decimal = int(body, 8), False
    else:
        value, decimal = int(body), True
    if unsigned:
        order = [UINT, ULONG, ULLONG]
    elif decimal:
        order = [INT, LONG, LLONG]
    else:
        order = [INT, UINT, LONG, ULONG, LLONG, ULLONG]
    min_rank = (INT, LONG, LLONG)[longs].rank
    for t in order:
        if t.rank >= min_rank and t.fits(value):
            return Value(value, t)
    if ULLONG.fits(value):  # GCC: "integer constant is so large that it is unsigned"
        return Value(value, ULLONG)
    raise CExprError(f"integer literal {text!r} does not fit in 64 bits")


_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "a": 7, "b": 8, "f": 12, "v": 11,
            "\\": 92, "'": 39, '"': 34, "?": 63, "e": 27}


def parse_char_literal(text: str) -> Value:
    """Value of a character constant such as ``'H'`` or ``'\\x41'`` (type int)."""
    wide = text[0] in "LuU"
    body = text[text.index("'") + 1:-1]
    chars: list[int] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            chars.append(ord(c))
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "x":
            j = i + 2
            while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                j += 1
            chars.append(int(body[i + 2:j], 16))
            i = j
        elif nxt in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            chars.append(int(body[i + 1:j], 8))
            i = j
        elif nxt in _ESCAPES:
            chars.append(_ESCAPES[nxt])
            i += 2
        else:
            raise CExprError(f"unknown escape in {text!r}")
    if not chars:
        raise CExprError(f"empty character constant {text!r}")
    if wide:
        return Value(chars[-1], INT if text[0] == "L" else UINT)
    if len(chars) == 1:
        return Value(chars[0] & 0xFF, INT)
    value = 0
    for c in chars:  # multi-character constants as GCC packs them
        value = (value << 8) | (c & 0xFF)
    return Value(INT.wrap(value), INT)


class Evaluator:
    """Walks a pycparser expression tree; identifiers and types come from callbacks."""

    def __init__(self, ident: Callable[[str], Value | None],
                 typeinfo: Callable[[Any], Any],
                 offsetof: Callable[[Any, Any], int] | None = None) -> None:
        self.ident = ident
        self.typeinfo = typeinfo  # node -> object with .size, .align and .int_type
        self.offsetof = offsetof

    def value(self, node: c_ast.Node) -> int:
        """Evaluate ``node`` and return its Python int (already wrapped to its C type)."""
        return self.eval(node).v

    def eval(self, node: c_ast.Node) -> Value:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise NotConstant(f"{type(node).__name__} is not an integer constant expression")
        return method(node)

    def _Constant(self, node: c_ast.Constant) -> Value:
        text = node.value
        if text.startswith(("'", "L'", "u'", "U'")):
            return parse_char_literal(text)
        if text.startswith(('"', 'L"', 'u8"', 'u"', 'U"')):
            raise NotConstant("string literal")
        return parse_int_literal(text)

    def _ID(self, node: c_ast.ID) -> Value:
        found = self.ident(node.name)
        if found is None:
            raise NotConstant(f"'{node.name}' is not a known constant")
        return found

    def _ExprList(self, node: c_ast.ExprList) -> Value:
        result = None
        for expr in node.exprs:
            result = self.eval(expr)
        if result is None:
            raise NotConstant("empty expression")
        return result

    def _Cast(self, node: c_ast.Cast) -> Value:
        target = self.typeinfo(node.to_type)
        operand = self.eval(node.expr)
        if target.int_type is None:
            raise NotConstant(f"cast to non-integer type {getattr(target, 'name', '?')}")
        if target.int_type == BOOL:
            return Value(int(operand.v != 0), BOOL)
        return Value(target.int_type.wrap(operand.v), target.int_type)

    def _sizeof_like(self, node: c_ast.UnaryOp, attr: str) -> Value:
        if isinstance(node.expr, c_ast.Typename):
            return Value(getattr(self.typeinfo(node.expr), attr), ULONG)
        return Value(self.eval(node.expr).t.size, ULONG)  # sizeof applied to an expression

    def _UnaryOp(self, node: c_ast.UnaryOp) -> Value:
        op = node.op
        if op == "sizeof":
            return self._sizeof_like(node, "size")
        if op in ("_Alignof", "__alignof__", "alignof"):
            return self._sizeof_like(node, "align")
        x = self.eval(node.expr)
        if op == "!":
            return Value(int(x.v == 0), INT)
        t = promote(x.t)
        if op == "-":
            return Value(t.wrap(-x.v), t)
        if op == "+":
            return Value(t.wrap(x.v), t)
        if op == "~":
            return Value(t.wrap(~x.v), t)
        raise NotConstant(f"operator {op!r} in a constant expression")

    def _BinaryOp(self, node: c_ast.BinaryOp) -> Value:
        op = node.op
        left = self.eval(node.left)
        if op in ("&&", "||"):  # short-circuit, result is int
            if (op == "&&") == (left.v == 0):
                return Value(int(op == "||"), INT)
            return Value(int(self.eval(node.right).v != 0), INT)
        right = self.eval(node.right)
        if op in ("<<", ">>"):
            t = promote(left.t)
            count = right.v
            if count < 0 or count >= t.bits:
                raise CExprError(f"shift count {count} out of range for {t.name}")
            return Value(t.wrap(left.v << count if op == "<<" else left.v >> count), t)
        t = common_type(left.t, right.t)
        a, b = t.wrap(left.v), t.wrap(right.v)
        if op in ("==", "!=", "<", ">", "<=", ">="):
            result = {"==": a == b, "!=": a != b, "<": a < b, ">": a > b,
                      "<=": a <= b, ">=": a >= b}[op]
            return Value(int(result), INT)
        if op in ("/", "%"):
            if b == 0:
                raise CExprError("division by zero")
            q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # C truncates
            return Value(t.wrap(q if op == "/" else a - b * q), t)
        ops = {"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}
        if op not in ops:
            raise NotConstant(f"operator {op!r} in a constant expression")
        return Value(t.wrap(ops[op]), t)

    def _TernaryOp(self, node: c_ast.TernaryOp) -> Value:
        cond = self.eval(node.cond)
        chosen = self.eval(node.iftrue if cond.v else node.iffalse)
        try:  # the branch not taken only contributes its type
            other_t = self.eval(node.iffalse if cond.v else node.iftrue).t
        except CExprError:
            other_t = chosen.t
        t = common_type(chosen.t, other_t)
        return Value(t.wrap(chosen.v), t)

    def _FuncCall(self, node: c_ast.FuncCall) -> Value:
        name = getattr(node.name, "name", None)
        if name in ("offsetof", "__builtin_offsetof") and self.offsetof and node.args:
            typename, member = node.args.exprs
            return Value(self.offsetof(typename, member), ULONG)
        if name in _CTZ and node.args and len(node.args.exprs) == 1:
            arg = self.eval(node.args.exprs[0])
            if arg.v == 0:
                raise CExprError(f"{name}(0) is undefined")
            return Value((arg.v & -arg.v).bit_length() - 1, INT)
        raise NotConstant(f"call of {name or 'a function'} in a constant expression")
