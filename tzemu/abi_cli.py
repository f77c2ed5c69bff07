"""``tzemu abi dump|check|diff``: the ABI header regression a kernel or optee_os CI job runs.

Exit codes (all three actions): 0 compatible, 1 incompatible (``check``: a concept mismatch or
a failing conformance scenario; ``diff``: a breaking change), 2 usage or header parse error
(every parse problem printed as ``file:line: what``).

Wiring (in tzemu/cli.py): ``add_abi_commands(sub)`` after the other sub-commands, and in
``main`` dispatch ``args.command == "abi"`` to ``run_abi(args)`` before the COMMANDS lookup.
Standalone: ``python -m tzemu.abi_cli check ...``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from emu.abi import AbiError, Unsupported
from emu.abi import compare as C
from emu.abi import report

EXIT_OK, EXIT_INCOMPATIBLE, EXIT_USAGE = 0, 1, 2

#: (scenario, ABI, protmem): the conformance matrix ``abi check`` runs on both ABIs. FF-A has
#: no static carveouts in Linux (protected memory there is lent: OPTEE_FFA_SEC_CAP_PROTMEM),
#: so sdp-basic runs on static and dynamic pools with SMC and on the dynamic pool with FF-A.
CONFORMANCE: tuple[tuple[str, str, str | None], ...] = (
    ("probe", "smc", None), ("ta-roundtrip", "smc", None), ("lend-reclaim", "smc", "dynamic"),
    ("sdp-basic", "smc", "static"), ("sdp-basic", "smc", "dynamic"),
    ("probe", "ffa", None), ("ta-roundtrip", "ffa", None), ("lend-reclaim", "ffa", "dynamic"),
    ("sdp-basic", "ffa", "dynamic"),
)


def scenario_id(name: str, abi: str, protmem: str | None) -> str:
    return f"{name}[{abi}/{protmem}]" if name == "sdp-basic" else f"{name}[{abi}]"


# --------------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------------
def _tree_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--linux-tree", metavar="DIR",
                   help="Linux kernel source tree (include/uapi/linux/tee.h, drivers/tee/optee, "
                        "include/linux/arm_ffa.h, include/uapi/linux/dma-heap.h) or a Linux-side "
                        "include directory laid out like tzemu's linux_side/include "
                        "(default: tzemu's own copy)")
    p.add_argument("--optee-tree", metavar="DIR",
                   help="optee_os tree (core/include, core/arch/arm/include) or a secure-side "
                        "include directory laid out like tzemu's tee_os/include "
                        "(default: tzemu's own copy)")


def add_abi_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``abi`` (with ``dump``, ``check``, ``diff``) to a ``tzemu`` sub-parser set."""
    desc = ("ABI headers of each side: dump them, check the Linux and secure sides against "
            "each other (concept table + conformance scenarios), or diff two versions. "
            "Exit 0 compatible, 1 incompatible, 2 usage or header parse error.")
    p = subparsers.add_parser("abi", help="check ABI header changes (CI regression)",
                              description=desc)
    _fill_abi_parser(p)
    return p


def _fill_abi_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="abi_command", metavar="ACTION")
    sub.required = True
    d = sub.add_parser("dump", help="every ABI constant and struct layout of each side")
    _tree_args(d)
    d.add_argument("--format", choices=["json", "text"], default="json")
    d.add_argument("--side", choices=["linux", "secure", "both"], default="both")
    c = sub.add_parser("check", help="check the Linux side against the secure side")
    _tree_args(c)
    c.add_argument("--json", action="store_true", help="machine-readable report")
    c.add_argument("--no-scenarios", action="store_true",
                   help="only the concept table (no boots)")
    f = sub.add_parser("diff", help="classify the changes between two versions of a side")
    f.add_argument("old", metavar="OLD", help="include tree directory, or git:REV:PATH")
    f.add_argument("new", metavar="NEW", help="include tree directory, or git:REV:PATH")
    f.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(abi_handler=run_abi)


# --------------------------------------------------------------------------------------------
# actions
# --------------------------------------------------------------------------------------------
class _ParseFailure(Exception):
    def __init__(self, problems: list[Unsupported]):
        super().__init__(report.problems_text(problems))
        self.problems = problems


def _warn(action: str, trees: Sequence[C.HeaderTree | None]) -> list[str]:
    """Print the trees' non-fatal problems (file:line) to stderr; returns them as text."""
    lines = [str(w) for t in trees if t is not None for w in t.warnings]
    for line in lines:
        print(f"tzemu abi {action}: warning: {line}", file=sys.stderr)
    return lines


def _load(tree: C.HeaderTree):
    abi, problems = C.load_checked(tree)
    if problems:
        raise _ParseFailure(problems)
    return abi


def cmd_dump(args: argparse.Namespace) -> int:
    sides = ("linux", "secure") if args.side == "both" else (args.side,)
    trees = {"linux": args.linux_tree, "secure": args.optee_tree}
    out: dict[str, Any] = {}
    problems: list[Unsupported] = []
    for side in sides:
        tree = C.resolve_tree(side, trees[side])
        try:
            abi, probs = C.load_checked(tree)
            problems += probs
            if abi is not None and not probs:
                out[side] = C.side_dump(abi, tree)
            _warn("dump", [tree])
        finally:
            tree.cleanup()
    if problems:
        raise _ParseFailure(problems)
    if args.format == "json":
        print(json.dumps(out, indent=1))
    else:
        print(report.dump_text(out))
    return EXIT_OK


def run_conformance(lt: C.HeaderTree, st: C.HeaderTree) -> list[dict[str, Any]]:
    """Boot Linux-from-``lt`` + secure-from-``st`` on both ABIs and run every scenario."""
    import tzemu
    from tzemu import xtest
    from tzemu.scenarios import SCENARIOS

    results = []
    for name, abi, protmem in CONFORMANCE:
        sid = scenario_id(name, abi, protmem)
        notes: list[str] = []
        error = None
        t0 = time.perf_counter()
        try:
            p = tzemu.boot(abi=abi, protmem=protmem, linux_abi_tree=str(lt.include),
                           secure_abi_tree=str(st.include))
            if name == "probe":
                info = p.info()
                notes.append(f"sec_caps: {' | '.join(info['sec_caps'])} "
                             f"({info['sec_caps_value']:#x})")
                passed = p.probe_info is not None
            elif name == "sdp-basic":
                rep = xtest.run_1014(p, heap=xtest.DEFAULT_HEAP, seed=0)
                passed = not (rep.failed_subtests or rep.failed_cases)
                notes.extend(line for line in rep.lines if "FAILED" in line or "Error" in line)
            else:
                passed = bool(SCENARIOS[name].run(p, notes))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a result
            passed, error = False, f"{type(exc).__name__}: {exc}"
        results.append({"id": sid, "scenario": name, "abi": abi, "protmem": protmem,
                        "passed": passed, "error": error, "notes": notes,
                        "seconds": round(time.perf_counter() - t0, 3)})
    return results


def check(linux_tree: str | None, optee_tree: str | None, *,
          scenarios: bool = True) -> dict[str, Any]:
    """The whole ``abi check`` as a JSON-able dict (raises _ParseFailure / TreeError)."""
    t0 = time.perf_counter()
    lt = C.resolve_tree("linux", linux_tree)
    st = None
    try:
        st = C.resolve_tree("secure", optee_tree)
        problems: list[Unsupported] = []
        lin, p1 = C.load_checked(lt)
        sec, p2 = C.load_checked(st)
        problems = p1 + p2
        warnings = [str(w) for w in lt.warnings + st.warnings]
        if problems or lin is None or sec is None:
            raise _ParseFailure(problems)
        findings = [f.to_json() for f in C.compare_sides(lin, sec, lt, st)]
        runs = run_conformance(lt, st) if scenarios else []
        failed = {r["id"]: r for r in runs if not r["passed"]}
        errors = [f for f in findings if f["severity"] == "error"]
        for f in findings:
            f["breaks"] = [s for s in f["scenarios"] if s in failed]
        for r in runs:
            causes = [f for f in errors if r["id"] in f["scenarios"]]
            if r["passed"]:
                r["message"] = "passed"
                continue
            why = r["error"] or "; ".join(r["notes"][-3:]) or "scenario reported failure"
            msg = f"{r['id']} FAILED: {why}"
            if causes:
                msg += "; header mismatch(es) it depends on: " + "; ".join(
                    f"{f['name']} (Linux {_short(f['linux'])}, secure {_short(f['secure'])})"
                    for f in causes)
            r["message"] = msg
        incompatible = bool(errors or failed)
        dirs = {}
        for side, tree, abi in (("linux", lt, lin), ("secure", st, sec)):
            dirs[side] = {"tree": tree.origin, "kind": tree.kind,
                          "headers": [tree.display(h) for h in abi.headers]}
        return {**dirs, "compatible": not incompatible, "warnings": warnings,
                "exit_code": EXIT_INCOMPATIBLE if incompatible else EXIT_OK,
                "concepts_compared": len(C.concept_pairs(lin, sec)),
                "structs_compared": len(C.STRUCT_PAIRS), "findings": findings,
                "scenarios": runs, "seconds": round(time.perf_counter() - t0, 3)}
    finally:
        lt.cleanup()
        if st is not None:
            st.cleanup()


def _short(w: dict[str, Any] | None) -> str:
    if not w:
        return "undefined"
    val = f"{w['value']:#x} " if isinstance(w.get("value"), int) else ""
    return f"{w['name']} {val}at {w['file']}:{w['line']}"


def cmd_check(args: argparse.Namespace) -> int:
    result = check(args.linux_tree, args.optee_tree, scenarios=not args.no_scenarios)
    for w in result["warnings"]:
        print(f"tzemu abi check: warning: {w}", file=sys.stderr)
    print(json.dumps(result, indent=1) if args.json else report.check_text(result))
    return result["exit_code"]


def diff(old: str, new: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tzemu-abi-diff-") as work:
        od, nd = C.materialize(old, Path(work)), C.materialize(new, Path(work))
        for spec, d in ((old, od), (new, nd)):
            if not d.is_dir():
                raise C.TreeError(f"{spec}: not a directory")
        so, sn = C.detect_sides(od), C.detect_sides(nd)
        sides = [s for s in C.SIDES if s in so and s in sn]
        if not sides:
            raise C.TreeError(f"no common header set: OLD holds {so or 'no side'}, NEW holds "
                              f"{sn or 'no side'}")
        changes: list[dict[str, Any]] = []
        problems: list[Unsupported] = []
        for side in sides:
            ot, nt = C.resolve_tree(side, od), C.resolve_tree(side, nd)
            try:
                oa, p1 = C.load_checked(ot)
                na, p2 = C.load_checked(nt)
                problems += p1 + p2
                if oa is not None and na is not None and not (p1 or p2):
                    changes += [c.to_json() for c in C.diff_abi(side, oa, na, ot, nt)]
                _warn("diff", [ot, nt])
            finally:
                ot.cleanup()
                nt.cleanup()
        if problems:
            raise _ParseFailure(problems)
    breaking = any(c["classification"] == "breaking" for c in changes)
    return {"old": old, "new": new, "sides": sides, "changes": changes,
            "breaking": breaking, "exit_code": EXIT_INCOMPATIBLE if breaking else EXIT_OK}


def cmd_diff(args: argparse.Namespace) -> int:
    result = diff(args.old, args.new)
    print(json.dumps(result, indent=1) if args.json else report.diff_text(result))
    return result["exit_code"]


def run_abi(args: argparse.Namespace) -> int:
    """Dispatch ``tzemu abi ACTION``; errors become one message on stderr and exit 2."""
    fn = {"dump": cmd_dump, "check": cmd_check, "diff": cmd_diff}[args.abi_command]
    try:
        return fn(args)
    except _ParseFailure as exc:
        print(f"tzemu abi {args.abi_command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (C.TreeError, AbiError) as exc:
        print(f"tzemu abi {args.abi_command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        sys.stdout = None  # type: ignore[assignment]
        return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tzemu.abi_cli ACTION ...`` (the same as ``tzemu abi ACTION ...``)."""
    parser = argparse.ArgumentParser(prog="tzemu abi")
    _fill_abi_parser(parser)
    args = parser.parse_args(argv)
    return run_abi(args)


if __name__ == "__main__":
    sys.exit(main())
