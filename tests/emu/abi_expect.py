"""Assertions of the golden ABI tests (test_abi_loader*.py): constants and struct layouts as
the fact sheets in /work/shared/abi give them."""
from __future__ import annotations

from emu.abi import AbiSet


def check_constants(abi: AbiSet, expected: dict[str, int]) -> None:
    wrong = {k: (abi.constants.get(k), v) for k, v in expected.items()
             if abi.constants.get(k) != v}
    assert not wrong, f"(got, fact sheet): {wrong}"


def check_layout(abi: AbiSet, name: str, size: int, offsets: dict[str, int]) -> None:
    s = abi.structs[name]
    assert s.size == size, name
    assert {k: s.offset_of(k) for k in offsets} == offsets, name
