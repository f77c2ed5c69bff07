"""Fixtures shared by the ABI loader tests: each world's header set, an isolated loader cache,
and a small header set exercising the preprocessor and layout rules."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import emu.abi as abi_mod
from emu.abi import AbiSet, load_headers

sys.path.insert(0, str(Path(__file__).parent))   # abi_expect, the golden-number assertions


@pytest.fixture(scope="module")
def linux() -> AbiSet:
    return abi_mod.linux_abi()


@pytest.fixture(scope="module")
def secure() -> AbiSet:
    return abi_mod.secure_abi()


@pytest.fixture(scope="module")
def firmware() -> AbiSet:
    return abi_mod.firmware_abi()


@pytest.fixture()
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep loader unit tests out of the user's cache directory."""
    monkeypatch.setenv("TZEMU_CACHE_DIR", str(tmp_path / "cache"))
    abi_mod.clear_cache()
    return tmp_path / "cache"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


BASIC = {
    "inc/types.h": """\
        #ifndef TYPES_H
        #define TYPES_H
        typedef unsigned char u8;
        typedef unsigned short u16;
        typedef unsigned int u32;
        typedef unsigned long long u64;
        typedef long long s64;
        #define GENMASK(h, l) ((~0UL << (l)) & (~0UL >> (63 - (h))))
        #endif
        """,
    "main.h": """\
        #include <inc/types.h>
        #define MODE 2
        #if MODE == 1
        #define PICK 10
        #elif MODE == 2
        #define PICK 20
        #else
        #define PICK 30
        #endif
        #ifdef UNDEFINED_THING
        #define NEVER 1
        #endif
        #define SQUARE(x) ((x) * (x))
        #define ALL_ONES ((u64)-1)
        #define TRUNCATED ((u16)0x12345)
        #define NEGATIVE (-6)
        #define INT_MIN_SHIFT (1 << 31)
        #define UNSIGNED_SHIFT (1U << 31)
        #define MIXED (-1 < 0U)
        #define OCTAL 0755
        #define CHARLIT 'H'
        #define MASK GENMASK(15, 8)
        #define PK_SIZE sizeof(struct pk)
        #define OFFS __builtin_offsetof(struct nest, in.w)
        #define COND (PICK > 15 ? 0x10 : 0x20UL)
        #define GREETING "hello"
        enum colour { RED, GREEN, BLUE = 7, CYAN, BELOW = -2, NEXT };
        struct pk { u8 a; u32 b; } __attribute__((packed));
        struct __attribute__((__packed__)) pk2 { u8 a; u64 b; };
        struct al { u8 a; } __attribute__((aligned(16)));
        struct mal { u8 a; u64 b __attribute__((aligned(16))); u8 c; };
        struct fl { u32 n; struct pk items[]; };
        union un { u32 a; u64 b; u8 c[3]; };
        struct nest { u8 x; struct { u32 y; union { u8 z; u32 w; }; } in; struct al q; };
        struct bits { u32 a:3, b:5; u8 c; u32 d:30; int e:4; };
        #pragma pack(push, 2)
        struct pp { u8 a; u32 b; };
        #pragma pack(pop)
        struct after { u8 a; u32 b; enum colour col; u8 arr[CYAN]; };
        typedef struct { u32 v; u16 w; } anon_t;
        typedef u32 wide_t __attribute__((aligned(8)));
        struct usesw { u8 a; wide_t w; u8 arr2[2][3]; };
        static inline int helper(int x) { return ({ x + 1; }); }
        """,
}


@pytest.fixture()
def basic(tmp_path: Path, isolated_cache: Path) -> AbiSet:
    return load_headers(_write(tmp_path / "h", BASIC), ["main.h"])


@pytest.fixture()
def write_headers():
    """``write_headers(root, {name: text})``: write a header set, return ``root``."""
    return _write

