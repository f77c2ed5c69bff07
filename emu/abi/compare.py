"""Cross-side and old/new comparison of ABI header sets (``tzemu abi check`` / ``diff``).

None of this boots anything (that is ``tzemu.abi_cli``'s job). Resolving and loading the
trees the user points at lives in :mod:`emu.abi.trees` (re-exported here):

* :func:`compare_sides` walks the **concept table**: the constants and struct layouts that the
  Linux driver and the secure OS must agree on, same name on both sides where the real trees
  share names, explicit pairs where they differ (FF-A function ids, TEEC_/TEE_ codes...).
* :func:`diff_abi` compares two versions of one side and classifies every change as
  compatible or breaking for binaries built against the old headers.
"""
from __future__ import annotations

import difflib
import os
import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from . import LINUX_HEADERS, SECURE_HEADERS, AbiSet, Unsupported  # noqa: F401 - re-exported
from .trees import (  # noqa: F401 - re-exported: compare.X is the public name
    ABI_FAMILIES, KERNEL_MAP, OPTEE_OS_MAP, SIDES, HeaderTree, TreeError, detect_sides,
    load_checked, materialize, resolve_tree, side_dump)


# --------------------------------------------------------------------------------------------
# The concept table (Linux side <-> secure side)
# --------------------------------------------------------------------------------------------
#: (concept, fnmatch pattern) compared by identical name on both sides.
SAME_NAME: tuple[tuple[str, str], ...] = (
    ("OPTEE_MSG commands", "OPTEE_MSG_CMD_*"),
    ("OPTEE_MSG parameter attributes", "OPTEE_MSG_ATTR_*"),
    ("OPTEE_MSG protected-memory use cases", "OPTEE_MSG_PROTMEM_*"),
    ("OPTEE_MSG protected-memory use cases", "OPTEE_MSG_RSTMEM_*"),  # v6 "restricted" spelling
    ("OPTEE_MSG login methods", "OPTEE_MSG_LOGIN_*"),
    ("OPTEE_MSG identity and revision", "OPTEE_MSG_UID_*"),
    ("OPTEE_MSG identity and revision", "OPTEE_MSG_OS_OPTEE_UUID_*"),
    ("OPTEE_MSG identity and revision", "OPTEE_MSG_REVISION_*"),
    ("OPTEE_MSG identity and revision", "OPTEE_MSG_IMAGE_LOAD_UUID_*"),
    ("OPTEE_MSG function ids", "OPTEE_MSG_FUNCID_*"),
    ("OPTEE_MSG misc", "OPTEE_MSG_NONCONTIG_PAGE_SIZE"),
    ("OPTEE_MSG misc", "OPTEE_MSG_FMEM_*"),
    ("OPTEE_SMC capabilities", "OPTEE_SMC_SEC_CAP_*"),
    ("OPTEE_SMC capabilities", "OPTEE_SMC_NSEC_CAP_*"),
    ("OPTEE_SMC return codes", "OPTEE_SMC_RETURN_*"),
    ("OPTEE_SMC RPC functions", "OPTEE_SMC_RPC_FUNC_*"),
    ("OPTEE_SMC function ids", "OPTEE_SMC_FUNCID_*"),
    ("OPTEE_SMC function ids", "OPTEE_SMC_*"),
    ("OPTEE_FFA capabilities", "OPTEE_FFA_SEC_CAP_*"),
    ("OPTEE_FFA services", "OPTEE_FFA_*"),
    ("OPTEE_RPC commands", "OPTEE_RPC_*"),
    ("FF-A error codes", "FFA_RET_*"),
    ("FF-A function ids", "FFA_*"),
)
#: Families where a name missing on one side is an error (not just a note).
REQUIRED = ("OPTEE_MSG_CMD_*", "OPTEE_MSG_ATTR_TYPE_*", "OPTEE_SMC_SEC_CAP_*",
            "OPTEE_FFA_SEC_CAP_*", "OPTEE_SMC_RETURN_*", "OPTEE_MSG_PROTMEM_*")
#: Explicit pairs (linux name, secure name) where the real trees spell a concept differently.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("FF-A function ids", "FFA_SUCCESS", "FFA_SUCCESS_32"),
    ("FF-A function ids", "FFA_FN64_SUCCESS", "FFA_SUCCESS_64"),
    *(("FF-A function ids", f"FFA_{n}", f"FFA_{n}_32") for n in (
        "MEM_LEND", "MEM_SHARE", "MEM_DONATE", "MEM_RETRIEVE_REQ", "RXTX_MAP",
        "MSG_SEND_DIRECT_REQ", "MSG_SEND_DIRECT_RESP", "MEM_PERM_GET", "MEM_PERM_SET",
        "NOTIFICATION_INFO_GET", "CONSOLE_LOG")),
    *(("FF-A function ids", f"FFA_FN64_{n}", f"FFA_{n}_64") for n in (
        "MEM_LEND", "MEM_SHARE", "MEM_DONATE", "MEM_RETRIEVE_REQ", "RXTX_MAP",
        "MSG_SEND_DIRECT_REQ", "MSG_SEND_DIRECT_RESP", "MEM_PERM_GET", "MEM_PERM_SET",
        "NOTIFICATION_INFO_GET", "CONSOLE_LOG", "SECONDARY_EP_REGISTER")),
    ("FF-A function ids", "FFA_MSG_SEND_DIRECT_REQ2", "FFA_MSG_SEND_DIRECT_REQ2_64"),
    ("FF-A function ids", "FFA_MSG_SEND_DIRECT_RESP2", "FFA_MSG_SEND_DIRECT_RESP2_64"),
    ("FF-A function ids", "FFA_PARTITION_INFO_GET_REGS", "FFA_PARTITION_INFO_GET_REGS_64"),
    ("SMCCC", "ARM_SMCCC_VERSION_FUNC_ID", "ARM_SMCCC_VERSION"),
    ("SMCCC", "ARM_SMCCC_ARCH_FEATURES_FUNC_ID", "ARM_SMCCC_ARCH_FEATURES"),
    *(("SMCCC", f"SMCCC_RET_{n}", f"ARM_SMCCC_RET_{n}")
      for n in ("SUCCESS", "NOT_SUPPORTED", "NOT_REQUIRED", "INVALID_PARAMETER")),
)
#: Pair rules: every linux name matching the pattern maps to prefix-substituted secure name.
PAIR_RULES: tuple[tuple[str, str, str], ...] = (
    ("GlobalPlatform return codes (TEEC_ERROR <-> TEE_ERROR)", "TEEC_ERROR_", "TEE_ERROR_"),
    ("GlobalPlatform return codes (TEEC_ERROR <-> TEE_ERROR)", "TEEC_SUCCESS", "TEE_SUCCESS"),
    ("GlobalPlatform return origins", "TEEC_ORIGIN_", "TEE_ORIGIN_"),
)
#: (concept, linux struct, secure struct): layouts that must agree byte for byte.
STRUCT_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("OPTEE_MSG layouts", "optee_msg_arg", "optee_msg_arg"),
    ("OPTEE_MSG layouts", "optee_msg_param", "optee_msg_param"),
    ("OPTEE_MSG layouts", "optee_msg_param_tmem", "optee_msg_param_tmem"),
    ("OPTEE_MSG layouts", "optee_msg_param_rmem", "optee_msg_param_rmem"),
    ("OPTEE_MSG layouts", "optee_msg_param_fmem", "optee_msg_param_fmem"),
    ("OPTEE_MSG layouts", "optee_msg_param_value", "optee_msg_param_value"),
    ("FF-A descriptors", "ffa_mem_region", "ffa_mem_transaction_1_1"),
    ("FF-A descriptors", "ffa_composite_mem_region", "ffa_mem_region"),
    ("FF-A descriptors", "ffa_mem_region_addr_range", "ffa_address_range"),
    ("FF-A descriptors", "ffa_partition_info_le", "ffa_partition_info_x"),
)
#: secure struct -> older layouts of the same descriptor the secure side also implements. A Linux
#: layout equal to one of them is version skew the FF-A version negotiation handles (a note).
STRUCT_OLDER_VERSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "ffa_mem_transaction_1_1": (("ffa_mem_transaction_1_0", "FF-A v1.0"),),
}

#: Which conformance scenario exercises which names (fnmatch patterns on either side's name).
#: Keys are scenario ids as ``tzemu.abi_cli`` runs them: "NAME[abi]" (sdp-basic adds /protmem).
_COMMON_MSG = ("OPTEE_MSG_CMD_OPEN_SESSION", "OPTEE_MSG_CMD_INVOKE_COMMAND",
               "OPTEE_MSG_CMD_CLOSE_SESSION", "OPTEE_MSG_ATTR_*", "OPTEE_MSG_LOGIN_*",
               "OPTEE_RPC_*", "TEE_ERROR_*", "TEEC_*", "TEE_ORIGIN_*", "optee_msg_*")
_SMC_CORE = ("OPTEE_SMC_*", "OPTEE_MSG_UID_*", "OPTEE_MSG_REVISION_*", "OPTEE_MSG_OS_*",
             "OPTEE_MSG_FUNCID_*", "ARM_SMCCC_*", "SMCCC_*")
_FFA_CORE = ("FFA_*", "OPTEE_FFA_*", "ffa_*", "OPTEE_MSG_UID_*", "OPTEE_MSG_REVISION_*")
SCENARIO_USES: dict[str, tuple[str, ...]] = {
    "probe[smc]": _SMC_CORE,
    "ta-roundtrip[smc]": _SMC_CORE + _COMMON_MSG + ("OPTEE_MSG_CMD_*_SHM",),
    "lend-reclaim[smc]": _SMC_CORE + _COMMON_MSG + (
        "OPTEE_MSG_CMD_*PROTMEM*", "OPTEE_MSG_PROTMEM_*", "OPTEE_MSG_CMD_REGISTER_SHM"),
    "sdp-basic[smc/static]": _SMC_CORE + _COMMON_MSG + (
        "OPTEE_MSG_CMD_GET_PROTMEM_CONFIG", "OPTEE_MSG_PROTMEM_*", "OPTEE_MSG_CMD_*_SHM"),
    "sdp-basic[smc/dynamic]": _SMC_CORE + _COMMON_MSG + (
        "OPTEE_MSG_CMD_*PROTMEM*", "OPTEE_MSG_PROTMEM_*", "OPTEE_MSG_CMD_*_SHM"),
    "probe[ffa]": _FFA_CORE,
    "ta-roundtrip[ffa]": _FFA_CORE + _COMMON_MSG,
    "lend-reclaim[ffa]": _FFA_CORE + _COMMON_MSG + (
        "OPTEE_MSG_CMD_ASSIGN_PROTMEM", "OPTEE_MSG_CMD_GET_PROTMEM_CONFIG",
        "OPTEE_MSG_PROTMEM_*"),
    "sdp-basic[ffa/dynamic]": _FFA_CORE + _COMMON_MSG + (
        "OPTEE_MSG_CMD_ASSIGN_PROTMEM", "OPTEE_MSG_CMD_GET_PROTMEM_CONFIG",
        "OPTEE_MSG_PROTMEM_*"),
}


def scenarios_using(*names: str) -> list[str]:
    """Scenario ids whose dependency patterns match any of ``names``."""
    return [sid for sid, pats in SCENARIO_USES.items()
            if any(fnmatch.fnmatchcase(n, p) for n in names if n for p in pats)]


@dataclass
class Finding:
    """One disagreement (or note) between the two sides."""

    kind: str                   # "constant", "missing", "rename", "struct"
    severity: str               # "error" or "note"
    concept: str
    name: str                   # the concept's name (linux name, or "linux / secure")
    detail: str
    linux: dict[str, Any] | None = None     # {"name", "value", "file", "line"}
    secure: dict[str, Any] | None = None
    scenarios: list[str] = field(default_factory=list)   # scenario ids it may break

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _where(abi: AbiSet, tree: HeaderTree, name: str, value: Any = None) -> dict[str, Any]:
    file, line = abi.locations.get(name, ("?", 0))
    out = {"name": name, "file": tree.display(file), "line": line}
    if value is not None:
        out["value"] = value
    return out


def _concept(name: str) -> str | None:
    for concept, pat in SAME_NAME:
        if fnmatch.fnmatchcase(name, pat):
            return concept
    return None


def _field_rows(s: Any) -> list[tuple[str, int, int]]:
    """Fields that occupy the wire layout: a trailing flexible array member (``params[]``,
    size 0) only names the bytes after the struct, so older trees that describe it in a
    comment (optee_os's optee_msg_arg) have the same layout."""
    rows = [(f.name, f.offset, f.size) for f in s.fields]
    if rows and rows[-1][2] == 0:
        rows.pop()
    return rows


def compare_layouts(old: Any, new: Any, *, by_name: bool = True) -> list[str]:
    """Human-readable differences between two struct layouts (empty: identical)."""
    out = []
    if old.size != new.size:
        out.append(f"size {old.size} -> {new.size}")
    if not by_name:
        a = [(o, z) for _, o, z in _field_rows(old)]
        b = [(o, z) for _, o, z in _field_rows(new)]
        if a != b:
            out.append(f"fields (offset, size) {a} -> {b}")
        return out
    of = {n: (o, z) for n, o, z in _field_rows(old)}
    nf = {n: (o, z) for n, o, z in _field_rows(new)}
    for n, (o, z) in of.items():
        if n not in nf:
            out.append(f"field {n!r} (offset {o}, size {z}) removed")
        elif nf[n] != (o, z):
            out.append(f"field {n!r} offset/size {o}/{z} -> {nf[n][0]}/{nf[n][1]}")
    for n, (o, z) in nf.items():
        if n not in of:
            out.append(f"field {n!r} added at offset {o} (size {z})")
    return out


def _same_wire_layout(linux: Any, secure: Any) -> bool:
    """Same size, and every Linux field starts where a secure field starts (one side may
    split a span the other keeps whole, e.g. ``u16 attributes`` vs ``u8 attr; u8 reserved``)."""
    starts = {o for _, o, _z in _field_rows(secure)}
    return linux.size == secure.size and all(o in starts for _, o, _z in _field_rows(linux))


def concept_pairs(lin: AbiSet, sec: AbiSet) -> list[tuple[str, str, str]]:
    """(concept, linux name, secure name) for every constant both sides must agree on."""
    lc, sc = lin.constants, sec.constants
    pairs: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for concept, ln, sn in PAIRS:
        if ln in lc and sn in sc:
            pairs.append((concept, ln, sn))
            seen.add(ln)
    for concept, lp, sp in PAIR_RULES:
        for ln in [n for n in lc if n.startswith(lp)]:
            sn = sp + ln[len(lp):]
            if sn in sc and ln not in seen:
                pairs.append((concept, ln, sn))
                seen.add(ln)
    for name in sorted(set(lc) & set(sc)):
        concept = _concept(name)
        if concept and name not in seen:
            pairs.append((concept, name, name))
    return pairs


def compare_sides(lin: AbiSet, sec: AbiSet, lt: HeaderTree, st: HeaderTree) -> list[Finding]:
    """Every concept-table entry the two sides disagree on (errors) plus notes."""
    out: list[Finding] = []
    lc, sc = lin.constants, sec.constants
    paired_l: set[str] = set()
    paired_s: set[str] = set()
    for concept, ln, sn in concept_pairs(lin, sec):
        paired_l.add(ln)
        paired_s.add(sn)
        lv, sv = lc[ln], sc[sn]
        if lv != sv:
            label = ln if ln == sn else f"{ln} / {sn}"
            out.append(Finding("constant", "error", concept, label,
                               f"{label}: Linux has {lv:#x}, the secure side {sv:#x}",
                               _where(lin, lt, ln, lv), _where(sec, st, sn, sv),
                               scenarios_using(ln, sn)))
    # names only one side has, in a shared family: renamed (same value) or missing
    # (only for the REQUIRED families: elsewhere each side legitimately has helpers of its own)
    def req(n: str) -> bool:
        return any(fnmatch.fnmatchcase(n, p) for p in REQUIRED)
    only_l = sorted(n for n in lc if req(n) and n not in sc and n not in paired_l)
    only_s = sorted(n for n in sc if req(n) and n not in lc and n not in paired_s)
    for side, names, other, abi, tree in (("Linux", only_l, only_s, lin, lt),
                                          ("secure", only_s, only_l, sec, st)):
        mine, theirs = (lc, sc) if side == "Linux" else (sc, lc)
        oabi, otree = (sec, st) if side == "Linux" else (lin, lt)
        for n in names:
            twin = _rename_twin(n, mine[n], sorted(o for o, v in theirs.items()
                                                   if v == mine[n] and o not in mine
                                                   and o not in paired_l | paired_s))
            required = True
            if twin and side == "Linux":
                out.append(Finding(
                    "rename", "note", _concept(n) or "", f"{n} / {twin}",
                    f"same value {mine[n]:#x} under different names (Linux {n}, secure "
                    f"{twin}): compatible on the wire", _where(abi, tree, n, mine[n]),
                    _where(oabi, otree, twin, theirs[twin]), []))
            elif not twin:
                other_side = "secure side" if side == "Linux" else "Linux side"
                w = _where(abi, tree, n, mine[n])
                out.append(Finding(
                    "missing", "error" if required else "note", _concept(n) or "", n,
                    f"{n} ({mine[n]:#x}) is defined on the {side} side only; the "
                    f"{other_side} does not define it",
                    w if side == "Linux" else None, w if side != "Linux" else None,
                    scenarios_using(n) if required else []))
    for concept, ln, sn in STRUCT_PAIRS:
        if ln not in lin.structs or sn not in sec.structs:
            linux_lacks = ln not in lin.structs       # decided by side, not by name: the
            missing = ln if linux_lacks else sn       # two names are often the same
            out.append(Finding("struct", "note", concept, f"struct {ln}",
                               f"struct {missing} is not defined on "
                               f"{'the Linux' if linux_lacks else 'the secure'} side"))
            continue
        diffs = compare_layouts(lin.structs[ln], sec.structs[sn], by_name=ln == sn)
        older = [(o, v) for o, v in STRUCT_OLDER_VERSIONS.get(sn, ()) if o in sec.structs
                 and _same_wire_layout(lin.structs[ln], sec.structs[o])]
        if diffs and older:
            o, version = older[0]
            out.append(Finding("struct", "note", concept, f"struct {ln} / {o}",
                               f"struct {ln} has the {version} layout (= secure {o}), not "
                               f"{sn}: compatible when {version} is negotiated",
                               _where(lin, lt, ln), _where(sec, st, o)))
        elif diffs:
            label = ln if ln == sn else f"{ln} / {sn}"
            lw, sw = _where(lin, lt, ln), _where(sec, st, sn)
            lw["name"], sw["name"] = f"struct {ln}", f"struct {sn}"
            out.append(Finding("struct", "error", concept, f"struct {label}",
                               f"struct {label} layouts differ (Linux -> secure): "
                               + "; ".join(diffs), lw, sw, scenarios_using(ln, sn)))
    return out


def _match_renames(removed: list[str], added: list[str], oc: dict[str, int],
                   nc: dict[str, int]) -> dict[str, str]:
    """Pair removed and added names with equal values, most similar pairs first."""
    cands = []
    for r in removed:
        for a in added:
            if oc[r] == nc[a] and _rename_twin(r, oc[r], [a]):
                cands.append((difflib.SequenceMatcher(None, r, a).ratio(), r, a))
    out: dict[str, str] = {}
    used: set[str] = set()
    for _, r, a in sorted(cands, key=lambda c: (-c[0], c[1], c[2])):
        if r not in out and a not in used:
            out[r] = a
            used.add(a)
    return out


#: Words renamed between ABI revisions (the v6 protected-memory series said "restricted").
RENAMED_WORDS = {"RSTMEM": "PROTMEM", "RESTRICTED": "PROTECTED", "FN64": "64"}


def _canonical(name: str) -> tuple[str, ...]:
    toks = [RENAMED_WORDS.get(t, t) for t in name.split("_")]
    if "64" in toks:  # FFA_FN64_X (Linux) and FFA_X_64 (optee_os) spell the same id
        toks = [t for t in toks if t != "64"] + ["64"]
    return tuple(toks)


def _rename_twin(name: str, value: int, candidates: list[str]) -> str | None:
    """The candidate (same value, same concept family) that looks like a renamed ``name``."""
    best, score = None, 0.0
    toks = name.split("_")
    for c in candidates:
        if _canonical(c) == _canonical(name):
            return c
    family = _concept(name)
    for c in candidates:
        if _concept(c) != family:
            continue  # equal small numbers in unrelated families are not renames
        ctoks = c.split("_")
        common = 0
        for a, b in zip(toks, ctoks):
            if a != b:
                break
            common += 1
        r = difflib.SequenceMatcher(None, name, c).ratio()
        if (common >= 2 or r >= 0.75) and r > score:
            best, score = c, r
    return best


# --------------------------------------------------------------------------------------------
# diff: two versions of one side
# --------------------------------------------------------------------------------------------
#: Headers that are not an interface between separately built binaries: value changes there
#: are reported but compatible.
INTERNAL_HEADERS = ("linux/tee_core.h", "drivers/tee/optee/optee_private.h", "linux/types.h",
                    "linux/bits.h", "linux/sizes.h", "types.h", "util.h", "mobj_use_case.h",
                    "drivers/tzc400.h")
#: Families whose values are distinct ids: a new name reusing an existing value is breaking.
ID_FAMILIES = ("OPTEE_MSG_CMD_*", "OPTEE_SMC_FUNCID_*", "OPTEE_SMC_SEC_CAP_*",
               "OPTEE_FFA_SEC_CAP_*", "OPTEE_RPC_CMD_*", "TEE_IOC_*", "OPTEE_MSG_ATTR_TYPE_*",
               "OPTEE_MSG_PROTMEM_*")
_CAPS = ("*_SEC_CAP_*", "*_NSEC_CAP_*", "TEE_GEN_CAP_*")


@dataclass
class Change:
    kind: str            # "added", "removed", "renumbered", "renamed", "struct-changed",
                         # "struct-added", "struct-removed", "struct-grown", "field-renamed"
    side: str
    name: str
    classification: str  # "compatible" or "breaking"
    detail: str
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _internal(tree: HeaderTree, abi: AbiSet, name: str) -> bool:
    file = abi.locations.get(name, ("", 0))[0]
    rel = os.path.relpath(file, tree.include) if file else ""
    return rel.replace(os.sep, "/") in INTERNAL_HEADERS


def _family(name: str, families: Iterable[str]) -> str | None:
    for p in families:
        if fnmatch.fnmatchcase(name, p):
            return p
    return None


def diff_abi(side: str, old: AbiSet, new: AbiSet, ot: HeaderTree, nt: HeaderTree) -> list[Change]:
    """Every constant/struct change from ``old`` to ``new``, classified for old binaries."""
    out: list[Change] = []
    oc, nc = old.constants, new.constants
    removed = sorted(set(oc) - set(nc))
    added = sorted(set(nc) - set(oc))
    renamed_to = _match_renames(removed, added, oc, nc)
    for n, twin in renamed_to.items():
        out.append(Change("renamed", side, f"{n} -> {twin}", "compatible",
                          f"{n} renamed to {twin}, same value {oc[n]:#x}: compatible (source "
                          f"users must follow the rename)", _where(old, ot, n, oc[n]),
                          _where(new, nt, twin, nc[twin])))
    for n in removed:
        if n in renamed_to:
            continue
        internal = _internal(ot, old, n)
        out.append(Change("removed", side, n, "compatible" if internal else "breaking",
                          f"{n} ({oc[n]:#x}) removed" + (
                              " (kernel/OS-internal header)" if internal else
                              ": binaries built against the old headers may still use it"),
                          _where(old, ot, n, oc[n]), None))
    taken = set(renamed_to.values())
    for n in added:
        if n in taken:
            continue
        fam = _family(n, ID_FAMILIES)
        clash = [o for o in oc if o in nc and fam and fnmatch.fnmatchcase(o, fam)
                 and oc[o] == nc[n] and not _is_mask(o)] if fam else []
        if clash and not _is_mask(n):
            out.append(Change("added", side, n, "breaking",
                              f"{n} ({nc[n]:#x}) added with the value of existing {clash[0]}: "
                              f"old binaries would take one for the other", None,
                              _where(new, nt, n, nc[n])))
            continue
        cap = _family(n, _CAPS)
        out.append(Change("added", side, n, "compatible",
                          f"{n} ({nc[n]:#x}) added" + (
                              ": a new capability bit, old binaries ignore it" if cap else
                              ": old binaries never use it"), None, _where(new, nt, n, nc[n])))
    for n in sorted(set(oc) & set(nc)):
        if oc[n] == nc[n]:
            continue
        internal = _internal(nt, new, n)
        what = "capability bit" if _family(n, _CAPS) else "value"
        out.append(Change("renumbered", side, n, "compatible" if internal else "breaking",
                          f"{n} {what} changed {oc[n]:#x} -> {nc[n]:#x}" + (
                              " (kernel/OS-internal header)" if internal else
                              ": binaries built against the old headers disagree with new ones"),
                          _where(old, ot, n, oc[n]), _where(new, nt, n, nc[n])))
    # structs
    os_, ns = old.structs, new.structs
    for n in sorted(set(os_) - set(ns)):
        out.append(Change("struct-removed", side, f"struct {n}", "breaking",
                          f"struct {n} removed", _where(old, ot, n), None))
    for n in sorted(set(ns) - set(os_)):
        out.append(Change("struct-added", side, f"struct {n}", "compatible",
                          f"struct {n} added ({ns[n].size} bytes)", None, _where(new, nt, n)))
    for n in sorted(set(os_) & set(ns)):
        a, b = os_[n], ns[n]
        ra, rb = _field_rows(a), _field_rows(b)
        if ra == rb and a.size == b.size:
            continue
        pos_a = [(o, z) for _, o, z in ra]
        pos_b = [(o, z) for _, o, z in rb]
        ow, nw = _where(old, ot, n), _where(new, nt, n)
        old_at = {f: (o, z) for f, o, z in ra}
        moved = [f for f, o, z in rb if f in old_at and old_at[f] != (o, z)]
        if pos_a == pos_b and a.size == b.size and not moved:
            ren = [f"{x[0]!r} -> {y[0]!r}" for x, y in zip(ra, rb) if x[0] != y[0]]
            out.append(Change("field-renamed", side, f"struct {n}", "compatible",
                              f"struct {n}: field(s) renamed at the same offset/size: "
                              + ", ".join(ren), ow, nw))
            continue
        prefix_same = rb[:len(ra)] == ra and all(z for _, _, z in ra[-1:]) \
            and b.size >= a.size and len(rb) > len(ra)
        if prefix_same:
            grown = ", ".join(f"{f} @ {o} ({z} bytes)" for f, o, z in rb[len(ra):])
            out.append(Change("struct-grown", side, f"struct {n}", "compatible",
                              f"struct {n} grew at the end {a.size} -> {b.size} bytes ({grown}):"
                              f" existing fields keep their offsets; compatible only where the "
                              f"size is passed/negotiated (an ioctl that encodes the size gets a "
                              f"new number, reported separately)", ow, nw))
            continue
        out.append(Change("struct-changed", side, f"struct {n}", "breaking",
                          f"struct {n} layout changed: " + "; ".join(compare_layouts(a, b)),
                          ow, nw))
    return out


def _is_mask(name: str) -> bool:
    return name.endswith(("_MASK", "_SHIFT", "_COUNT", "_MAX", "_MIN"))


__all__ = ["HeaderTree", "TreeError", "resolve_tree", "detect_sides", "materialize",
           "load_checked", "side_dump", "compare_sides", "concept_pairs", "diff_abi", "Finding", "Change",
           "SCENARIO_USES", "scenarios_using", "PAIRS", "SAME_NAME", "STRUCT_PAIRS",
           "LINUX_HEADERS", "SECURE_HEADERS"]
