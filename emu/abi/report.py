"""Plain-text renderings of ``tzemu abi dump`` / ``check`` / ``diff`` results.

Text goes to CI logs, so it is plain ASCII, one finding per paragraph, every location as
``file:line`` (clickable in most CI log viewers). The JSON forms are built by the callers.
"""
from __future__ import annotations

from typing import Any, Iterable

from . import Unsupported


def _loc(w: dict[str, Any] | None) -> str:
    if not w:
        return "(not defined)"
    val = f" = {w['value']:#x}" if isinstance(w.get("value"), int) else ""
    return f"{w['file']}:{w['line']}: {w['name']}{val}"


def dump_text(dump: dict[str, dict[str, Any]]) -> str:
    out: list[str] = []
    for side, d in dump.items():
        out.append(f"== {side} side: {len(d['constants'])} constants, "
                   f"{len(d['structs'])} structs ==")
        out.append("headers:")
        out.extend(f"  {h}" for h in d["headers"])
        out.append("constants:")
        width = max((len(n) for n in d["constants"]), default=0)
        for n, v in d["constants"].items():
            out.append(f"  {n:<{width}} = {v:#x}" + (f" ({v})" if 0 <= v < 1 << 16 else ""))
        out.append("structs:")
        for n, s in d["structs"].items():
            fields = ", ".join(f"{f['name'] or '<anon>'}@{f['offset']}[{f['size']}]"
                               for f in s["fields"])
            out.append(f"  {n} ({s['size']} bytes): {fields}")
        out.append("")
    return "\n".join(out)


def problems_text(problems: Iterable[Unsupported], what: str = "header parse error") -> str:
    probs = list(problems)
    lines = [f"{len(probs)} {what}(s):"]
    lines.extend(f"  {p.file}:{p.line}: {p.what}" for p in probs)
    return "\n".join(lines)


def check_text(result: dict[str, Any]) -> str:
    out = [f"tzemu abi check: Linux side {result['linux']['tree']} ({result['linux']['kind']}), "
           f"secure side {result['secure']['tree']} ({result['secure']['kind']})", ""]
    errors = [f for f in result["findings"] if f["severity"] == "error"]
    notes = [f for f in result["findings"] if f["severity"] != "error"]
    out.append(f"(a) concept table: {result['concepts_compared']} constants and "
               f"{result['structs_compared']} struct layouts compared, "
               f"{len(errors)} mismatch(es), {len(notes)} note(s)")
    for f in errors + notes:
        tag = "MISMATCH" if f["severity"] == "error" else "note"
        out.append(f"  {tag} [{f['concept']}] {f['detail']}")
        out.append(f"    linux:  {_loc(f['linux'])}")
        out.append(f"    secure: {_loc(f['secure'])}")
        if f.get("breaks"):
            out.append(f"    breaks: {', '.join(f['breaks'])}")
        elif f["scenarios"]:
            out.append(f"    exercised by: {', '.join(f['scenarios'])} (all passed)"
                       if result["scenarios"] else
                       f"    exercised by: {', '.join(f['scenarios'])}")
    if result["scenarios"]:
        passed = sum(1 for s in result["scenarios"] if s["passed"])
        out.append("")
        out.append(f"(b) conformance scenarios: {passed}/{len(result['scenarios'])} passed")
        for s in result["scenarios"]:
            status = "ok    " if s["passed"] else "FAILED"
            out.append(f"  {status} {s['id']:<24} {s['seconds']:.2f} s")
            if not s["passed"]:
                out.append(f"    {s['message']}")
    else:
        out.append("")
        out.append("(b) conformance scenarios: not run (--no-scenarios)")
    out.append("")
    verdict = "COMPATIBLE" if result["compatible"] else "INCOMPATIBLE"
    out.append(f"result: {verdict} (exit {result['exit_code']}) in {result['seconds']:.2f} s")
    return "\n".join(out)


def diff_text(result: dict[str, Any]) -> str:
    out = [f"tzemu abi diff {result['old']} -> {result['new']} (sides: "
           f"{', '.join(result['sides']) or 'none'})"]
    order = {"breaking": 0, "compatible": 1}
    changes = sorted(result["changes"], key=lambda c: (c["side"], order[c["classification"]],
                                                     c["name"]))
    if not changes:
        out.append("  no ABI changes")
    for c in changes:
        out.append(f"  {c['classification'].upper():<10} {c['side']:<6} {c['kind']:<14} "
                   f"{c['detail']}")
        if c["old"]:
            out.append(f"      old: {_loc(c['old'])}")
        if c["new"]:
            out.append(f"      new: {_loc(c['new'])}")
    nb = sum(1 for c in changes if c["classification"] == "breaking")
    out.append(f"result: {nb} breaking, {len(changes) - nb} compatible change(s) "
               f"(exit {result['exit_code']})")
    return "\n".join(out)
