"""Platform memory map: regions, layout and carveouts, read from a TOML file.

The map is data, not code, so a user can describe another SoC layout without touching the
emulator; the built-in default (``default_platform.toml``) is a QEMU-virt-like layout.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from emu.types import PhysAddr

PAGE_SIZE = 0x1000


class PlatformConfigError(ValueError):
    """The platform file is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class Region:
    name: str
    base: PhysAddr
    size: int
    kind: str            # "ram" or "mmio"
    secure: bool
    behind_tzc: bool = True   # DRAM is filtered by the TZC-400; on-chip SRAM and MMIO are not

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, pa: int, size: int = 1) -> bool:
        return self.base <= pa and pa + size <= self.end


@dataclass(frozen=True)
class Carveout:
    use_case: str
    base: PhysAddr
    size: int


@dataclass(frozen=True)
class MemoryMap:
    name: str
    regions: tuple[Region, ...]
    layout: Mapping[str, int]
    cma_base: PhysAddr
    cma_size: int
    carveouts: tuple[Carveout, ...] = field(default_factory=tuple)
    devices: Mapping[str, int] = field(default_factory=dict)
    nsaid: Mapping[str, int] = field(default_factory=dict)
    protmem_access: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    protmem_min_size: int = 0x100000

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(f"platform {self.name!r} has no region {name!r}")

    def region_of(self, pa: int, size: int = 1) -> Region | None:
        for r in self.regions:
            if r.contains(pa, size):
                return r
        return None

    def carveout(self, use_case: str) -> Carveout | None:
        for c in self.carveouts:
            if c.use_case == use_case:
                return c
        return None

    def as_json(self) -> list[dict[str, Any]]:
        return [{"name": r.name, "base": r.base, "size": r.size, "secure": r.secure,
                 "kind": r.kind} for r in self.regions]


def _int(entry: Mapping[str, Any], key: str, where: str) -> int:
    try:
        value = entry[key]
    except KeyError:
        raise PlatformConfigError(f"{where}: missing '{key}'") from None
    if not isinstance(value, int) or value < 0:
        raise PlatformConfigError(f"{where}: '{key}' must be a non-negative integer")
    return value


def parse_memory_map(doc: Mapping[str, Any]) -> MemoryMap:
    """Validate a parsed platform document and build the map."""
    regions: list[Region] = []
    for i, entry in enumerate(doc.get("region", [])):
        where = f"region[{i}]"
        name = entry.get("name") or where
        base, size = _int(entry, "base", where), _int(entry, "size", where)
        kind = entry.get("kind", "ram")
        if kind not in ("ram", "mmio"):
            raise PlatformConfigError(f"{where} ({name}): kind must be 'ram' or 'mmio'")
        if base % PAGE_SIZE or size % PAGE_SIZE or size == 0:
            raise PlatformConfigError(f"{where} ({name}): base and size must be non-zero "
                                      f"multiples of {PAGE_SIZE:#x}")
        regions.append(Region(name, PhysAddr(base), size, kind, bool(entry.get("secure", False)),
                              bool(entry.get("behind_tzc", kind == "ram"))))
    if not regions:
        raise PlatformConfigError("platform has no [[region]] entries")
    ordered = sorted(regions, key=lambda r: r.base)
    for a, b in zip(ordered, ordered[1:]):
        if a.end > b.base:
            raise PlatformConfigError(f"regions {a.name} and {b.name} overlap")
    names = {r.name for r in regions}
    for required in ("secure_dram", "ns_dram"):
        if required not in names:
            raise PlatformConfigError(f"platform needs a region named {required!r}")
    cma = doc.get("cma", {})
    cma_base, cma_size = _int(cma, "base", "cma"), _int(cma, "size", "cma")
    mm = MemoryMap(str(doc.get("name", "custom")), tuple(regions),
                   {k: int(v) for k, v in doc.get("layout", {}).items()},
                   PhysAddr(cma_base), cma_size)
    ns = mm.region("ns_dram")
    if not ns.contains(cma_base, cma_size):
        raise PlatformConfigError("cma must lie inside ns_dram")
    carveouts = []
    for i, entry in enumerate(doc.get("carveout", [])):
        where = f"carveout[{i}]"
        c = Carveout(str(entry.get("use_case", "")), PhysAddr(_int(entry, "base", where)),
                     _int(entry, "size", where))
        if c.base % PAGE_SIZE or c.size % PAGE_SIZE or not ns.contains(c.base, c.size):
            raise PlatformConfigError(f"{where} ({c.use_case}): must be page aligned and "
                                      f"inside ns_dram")
        carveouts.append(c)
    devices = {k: int(v) for k, v in doc.get("devices", {}).items()}
    nsaid = {k: int(v) for k, v in doc.get("nsaid", {}).items()}
    for k, v in nsaid.items():
        if not 0 <= v <= 15:
            raise PlatformConfigError(f"nsaid.{k}: must be 0..15 (TZC-400 NSAIDs are 4 bits)")
    access: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for use_case, entry in doc.get("protmem_access", {}).items():
        lists = []
        for key in ("read", "write"):
            names = entry.get(key, [])
            unknown = [n for n in names if n not in nsaid]
            if unknown:
                raise PlatformConfigError(f"protmem_access.{use_case}.{key}: unknown masters {unknown}")
            lists.append(tuple(nsaid[n] for n in names))
        access[use_case] = (lists[0], lists[1])
    min_size = _int(doc.get("protmem", {"dynamic_min_size": 0x100000}), "dynamic_min_size",
                    "protmem")
    if min_size == 0 or min_size % PAGE_SIZE or min_size > cma_size:
        raise PlatformConfigError("protmem.dynamic_min_size: must be a page multiple within cma")
    return MemoryMap(mm.name, mm.regions, mm.layout, mm.cma_base, mm.cma_size, tuple(carveouts),
                     devices, nsaid, access, min_size)


def load_memory_map(path: str | Path | None = None) -> MemoryMap:
    """Load the platform TOML at ``path``, or the built-in default."""
    if path is None:
        text = resources.files("emu").joinpath("default_platform.toml").read_text()
        where = "default_platform.toml"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise PlatformConfigError(f"cannot read platform file {path}: {exc.strerror}") from None
        where = str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlatformConfigError(f"{where}: {exc}") from None
    return parse_memory_map(doc)
