"""``tzemu trace``: trace a scenario, a user script, or any booted platform.

This is the wiring half of ``emu.trace``: it knows a :class:`~tzemu.platform.Platform`, so it
builds the symbol tables (NS stubs at their physical and kernel-virtual addresses, the secure
OS image, every TA at ``TA_LOAD_BASE``), the memory reader the decoders use, and the Linux-side
instrumentation (``ioctl``/``ioctl_return`` events around every ioctl, ``fd_close`` for every
close, so dma-heap allocations and TEE calls appear in the trace). All of it is removed when
the tracer closes.

CLI::

    tzemu trace [--insn | --blocks] [--format text|jsonl|perfetto] [--filter ...] -o FILE SCENARIO
    tzemu trace show FILE          # pretty-print a JSONL trace
    tzemu trace diff A B           # compare two traces record by record, ignoring wall time

SCENARIO is a built-in scenario name or a Python file defining ``def scenario(platform) -> bool``
(optionally ``BOOT_OPTIONS = {...}``); see docs/tracing.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from rich.console import Console
from rich.markup import escape

import tzemu
from emu.trace import FORMATS, Decoder, Symbolizer, TraceFilter, Tracer, open_writer, read_jsonl
from emu.trace.writers import summarize

SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "perfetto", ".perfetto": "perfetto",
                  ".txt": "text", ".tarmac": "text", ".log": "text"}
WORLD_STYLE = {"NS-EL1": "cyan", "EL3": "magenta", "S-EL1": "yellow", "S-EL0": "green"}


def format_for(path: str, fmt: str | None) -> str:
    """The explicit format, else one implied by the file suffix, else text."""
    return fmt or SUFFIX_FORMATS.get(Path(path).suffix.lower(), "text")


# ---- attaching to a platform --------------------------------------------------------------------

def _symbolizer(platform: Any) -> Symbolizer:
    sym = Symbolizer()
    ns = platform.ns_stubs
    sym.add("NS-EL1", ns.symbols, ns.end)
    try:
        offset = platform.kernel.phys_to_virt(ns.base) - ns.base
    except Exception:  # noqa: BLE001 - no kernel mapping (yet): physical addresses only
        offset = 0
    if offset:
        sym.add("NS-EL1", {k: v + offset for k, v in ns.symbols.items()}, ns.end + offset)
    image = platform.secure_os.image
    sym.add("S-EL1", image.symbols, image.end)
    from tee_os.ta_memory import TA_LOAD_BASE
    manager = platform.secure_os.ta_manager

    def ta(name: str) -> tuple[dict[str, int], int, int] | None:
        for img in list(manager.images.values()):
            if img.name == name:
                size = img.image_size or (max(img.symbols.values(), default=0) + 4)
                return dict(img.symbols), TA_LOAD_BASE, size
        return None
    sym.ta_loader = ta
    return sym


def _seed_ffa(platform: Any, decoder: Decoder) -> None:
    """With the FF-A ABI, RXTX_MAP and the shared argument buffers happened at boot, before
    tracing: take the TX buffer, version and live handles from the SPMC's own records."""
    spmc = getattr(getattr(platform.secure_os, "ffa", None), "spmc", None)
    if platform.options.abi != "ffa" or spmc is None:
        return
    mb = spmc.mailbox
    major, minor = spmc.caller_version
    decoder.seed_ffa((mb.tx, mb.size // 4096) if mb.mapped else None, major << 16 | minor,
                     {t.handle: list(t.constituents) for t in spmc.handles()})


def _instrument_linux(platform: Any, tracer: Tracer) -> None:
    """ioctl / ioctl_return / fd_close events from the Linux model, for as long as tracing."""
    kernel, bus = platform.kernel, platform.bus
    original_gen, original_close = kernel.ioctl_gen, kernel.close
    calls = [0]

    def ioctl_gen(fd: int, request: int, arg: bytes) -> Iterator[Any]:
        calls[0] += 1
        n, f = calls[0], kernel.files.get(fd)
        name = f.name if f is not None else None
        bus.emit("ioctl", "NS-EL1", call=n, fd=fd, file=name, request=request & 0xFFFFFFFF,
                 arg=bytes(arg) if isinstance(arg, (bytes, bytearray, memoryview)) else arg)
        try:
            result = yield from original_gen(fd, request, arg)
        except Exception as exc:
            bus.emit("ioctl_return", "NS-EL1", call=n, request=request & 0xFFFFFFFF,
                     error=getattr(exc, "errno", None) or type(exc).__name__)
            raise
        ret, out = result if isinstance(result, tuple) and len(result) == 2 else (result, b"")
        bus.emit("ioctl_return", "NS-EL1", call=n, request=request & 0xFFFFFFFF, ret=ret,
                 out=bytes(out) if isinstance(out, (bytes, bytearray)) else out)
        return result

    def close(fd: int) -> None:
        f = kernel.files.get(fd)
        bus.emit("fd_close", "NS-EL1", fd=fd, file=f.name if f is not None else None)
        return original_close(fd)

    kernel.ioctl_gen, kernel.close = ioctl_gen, close

    def undo() -> None:
        kernel.__dict__.pop("ioctl_gen", None)
        kernel.__dict__.pop("close", None)
    tracer.cleanups.append(undo)


def attach_trace(platform: Any, path: Any, fmt: str | None = None, insn: bool = False,
                 blocks: bool = False, filters: str | Sequence[str] | TraceFilter | None = None,
                 *, memory: bool = True, wall: bool = False,
                 meta: dict[str, Any] | None = None) -> Tracer:
    """Start tracing ``platform`` into ``path`` (a file name, "-" or a text stream).

    Returns the running :class:`Tracer`; call ``close()`` (or use it as a context manager) to
    detach every hook and finish the file.
    """
    fmt = format_for(path if isinstance(path, str) else "", fmt)
    flt = filters if isinstance(filters, TraceFilter) else TraceFilter.parse(filters)
    decoder = Decoder(read_phys=platform.physmem.read, lazy=True,
                      nsaid_names={v: k for k, v in platform.memory_map.nsaid.items()})
    _seed_ffa(platform, decoder)
    info = {"abi": platform.options.abi, "seed": platform.options.seed,
            "platform": platform.memory_map.name, **(meta or {})}
    tracer = Tracer(platform.bus, {str(w): v for w, v in platform.views.items()},
                    open_writer(path, fmt), decoder=decoder, symbolizer=_symbolizer(platform),
                    insn=insn, blocks=blocks, memory=memory, filters=flt, wall=wall, meta=info)
    _instrument_linux(platform, tracer)
    return tracer.start()


def trace_from_args(platform: Any, args: argparse.Namespace) -> Tracer | None:
    """For ``--trace FILE`` on run/svp/xtest: a tracer, or None when not asked for."""
    path = getattr(args, "trace", None)
    if not path:
        return None
    return attach_trace(platform, path, getattr(args, "trace_format", None),
                        meta={"command": getattr(args, "command", None)})


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    """``--trace FILE`` and ``--trace-format`` for commands that boot a platform."""
    parser.add_argument("--trace", metavar="FILE",
                        help="write an event trace (format from the suffix: .jsonl, .json = "
                             "Perfetto, else text)")
    parser.add_argument("--trace-format", choices=FORMATS, help="trace format (overrides suffix)")


# ---- scenarios ------------------------------------------------------------------------------------

def load_user_scenario(path: str) -> tuple[Callable[[Any, list[str]], bool], dict[str, Any]]:
    """A user file's ``scenario(platform)`` (or ``scenario(platform, notes)``) and its
    ``BOOT_OPTIONS``."""
    spec = importlib.util.spec_from_file_location(f"tzemu_user_scenario_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise tzemu.PlatformError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, "scenario", None)
    if not callable(fn):
        raise tzemu.PlatformError(f"{path}: defines no function scenario(platform) -> bool")
    takes_notes = len(inspect.signature(fn).parameters) >= 2
    return ((lambda p, notes: bool(fn(p, notes))) if takes_notes
            else (lambda p, notes: bool(fn(p)))), dict(getattr(module, "BOOT_OPTIONS", {}))


def trace_scenario(target: str, path: Any, fmt: str | None = None, *, insn: bool = False,
                   blocks: bool = False, filters: str | Sequence[str] | None = None,
                   memory: bool = True, wall: bool = False,
                   **options: Any) -> tuple[Any, dict[str, Any]]:
    """Run a built-in scenario or a user file under a tracer, like ``run_scenario``.

    Returns (ScenarioResult, the trace summary). The tracer attaches after boot (the scenario
    runner clears the bus after boot): the trace starts with the scenario itself.
    """
    from tzemu.scenarios import SCENARIOS, ScenarioResult, run_scenario
    tracers: list[Tracer] = []

    def attach(p: Any, name: str) -> Tracer:
        tracers.append(attach_trace(p, path, fmt, insn, blocks, filters, memory=memory,
                                    wall=wall, meta={"scenario": name}))
        return tracers[-1]
    if target in SCENARIOS:
        result = run_scenario(target, attach=[lambda p: attach(p, target)], **options)
        return result, tracers[0].summary if tracers else {}
    if not Path(target).is_file():
        raise tzemu.PlatformError(f"unknown scenario {target!r} (built in: {', '.join(SCENARIOS)}; "
                                  "or a path to a .py file defining scenario(platform))")
    run, defaults = load_user_scenario(target)
    name = Path(target).name
    p = tzemu.boot(record_events=1_000_000,
                   **{**defaults, **{k: v for k, v in options.items() if v is not None}})
    p.bus.clear()
    tracer = attach(p, name)
    notes: list[str] = []
    try:
        passed = run(p, notes)
    finally:
        summary = tracer.close()
    events = [e.to_dict() for e in p.bus.recorded]
    faults = [e for e in events if e["kind"] in ("fault", "external_abort", "dma_fault")]
    return ScenarioResult(name, passed, events, faults, notes), summary


# ---- show / diff ----------------------------------------------------------------------------------

def _records(path: str) -> tuple[str, list[Any]]:
    """(format, comparable records) of a trace file; wall times and the header are dropped."""
    text = Path(path).read_text(encoding="utf-8")
    head = text.lstrip()[:1]
    if head == "{" and '"traceEvents"' in text[:4096] and text.lstrip().startswith('{"display'):
        return "perfetto", json.loads(text)["traceEvents"]
    if head == "{":
        recs = []
        for line in text.splitlines():
            if line.strip():
                r = json.loads(line)
                r.pop("wall", None)
                if r.get("type") != "header":
                    recs.append(r)
        return "jsonl", recs
    return "text", [line for line in text.splitlines()
                    if not line.startswith(("0 clk EV trace ", "Tarmac "))]


def cmd_diff(a: str, b: str, console: Console) -> int:
    fa, ra = _records(a)
    fb, rb = _records(b)
    if fa != fb:
        print(f"tzemu trace diff: {a} is {fa}, {b} is {fb}", file=sys.stderr)
        return 2
    for i, (x, y) in enumerate(zip(ra, rb)):
        if x != y:
            console.print(f"first difference at record {i + 1}:")
            if isinstance(x, dict) and isinstance(y, dict):
                keys = [k for k in dict.fromkeys([*x, *y]) if x.get(k) != y.get(k)]
                console.print(f"  differing keys: {', '.join(keys)}")
            console.print(f"  {a}: {escape(json.dumps(x) if not isinstance(x, str) else x)}")
            console.print(f"  {b}: {escape(json.dumps(y) if not isinstance(y, str) else y)}")
            return 1
    if len(ra) != len(rb):
        longer, n = (a, len(ra)) if len(ra) > len(rb) else (b, len(rb))
        console.print(f"traces differ in length: {len(ra)} vs {len(rb)} records "
                      f"({longer} continues after record {min(len(ra), len(rb))})")
        return 1
    console.print(f"traces are identical ({len(ra)} records, wall time ignored)")
    return 0


def cmd_show(path: str, console: Console) -> int:
    for rec in read_jsonl(path):
        t = rec.get("type")
        if t == "header":
            console.print(f"[bold]{escape(json.dumps(rec))}[/bold]")
        elif t == "event":
            style = WORLD_STYLE.get(rec["world"], "white")
            kind = rec["kind"]
            kstyle = "bold red" if kind in ("fault", "external_abort", "dma_fault",
                                            "tzc_verdict") else "bold"
            console.print(f"{rec['ts']:>10} [{style}]{rec['world']:<7}[/{style}] "
                          f"#{rec['seq']:<6} [{kstyle}]{kind:<14}[/{kstyle}] "
                          f"{escape(summarize(rec))}", highlight=False, soft_wrap=True)
        elif t == "insn":
            regs = " ".join(f"{k}={v}" for k, v in rec["regs"].items())
            console.print(f"[dim]{rec['ts']:>10} {rec['world']:<7} {rec['pc']:>18} "
                          f"{rec['enc']} {escape(rec['asm']):<32} {escape(rec['sym'] or '')} "
                          f"{regs}[/dim]", highlight=False, soft_wrap=True)
        elif t == "block":
            console.print(f"[dim]{rec['ts']:>10} {rec['world']:<7} block {rec['pc']} "
                          f"n={rec['n']} {escape(rec['sym'] or '')}[/dim]", highlight=False)
        elif t == "end":
            console.print(f"[bold]end: {escape(json.dumps(rec))}[/bold]")
    return 0


# ---- the command ----------------------------------------------------------------------------------

def cmd_trace(args: argparse.Namespace, console: Console) -> int:
    target = list(args.target)
    if target[0] == "show":
        if len(target) != 2:
            print("usage: tzemu trace show FILE", file=sys.stderr)
            return 2
        return cmd_show(target[1], console)
    if target[0] == "diff":
        if len(target) != 3:
            print("usage: tzemu trace diff A B", file=sys.stderr)
            return 2
        return cmd_diff(target[1], target[2], console)
    if len(target) != 1:
        print("usage: tzemu trace [options] -o FILE SCENARIO", file=sys.stderr)
        return 2
    from tzemu.cli_args import boot_options  # the options every booting command shares
    opts = boot_options(args)
    err = Console(stderr=True)
    if (args.insn or args.blocks) and format_for(args.output, args.format) == "perfetto":
        err.print("tzemu trace: a Perfetto file holds events only; use text or jsonl for "
                  "--insn/--blocks")
    try:
        filters = TraceFilter.parse(args.filter)
    except ValueError as exc:
        raise tzemu.PlatformError(str(exc)) from None
    result, summary = trace_scenario(target[0], args.output, args.format, insn=args.insn,
                                     blocks=args.blocks, filters=filters,
                                     memory=not args.no_mem, wall=args.wall, abi=args.abi, **opts)
    for note in result.notes:
        err.print(f"  {escape(note)}")
    insns = sum(summary.get("instructions", {}).values())
    err.print(f"scenario {result.name}: {'passed' if result.passed else 'FAILED'}; "
              f"{summary.get('events', 0)} events, {insns} instructions traced into "
              f"{escape(str(args.output))} ({format_for(args.output, args.format)})")
    return 0 if result.passed else 1


def add_trace_commands(subparsers: Any, add_boot_arguments: Callable[[argparse.ArgumentParser], None]
                       ) -> argparse.ArgumentParser:
    """Register ``tzemu trace`` on the CLI's subparsers; the handler is ``args.handler``."""
    text = "trace a scenario (events, --insn or --blocks) or show / diff trace files"
    p = subparsers.add_parser("trace", help=text, description=text + ". SCENARIO is a built-in "
                              "name or a .py file defining scenario(platform) -> bool.",
                              usage="tzemu trace [options] -o FILE SCENARIO | show FILE | diff A B")
    add_boot_arguments(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--insn", action="store_true",
                      help="per-instruction trace: EL, address, symbol, encoding, disassembly, "
                           "registers written, memory accesses")
    mode.add_argument("--blocks", action="store_true", help="cheaper: one line per block")
    p.add_argument("--format", choices=FORMATS,
                   help="text (Tarmac layout), jsonl or perfetto (default: from the -o suffix)")
    p.add_argument("--filter", action="append", metavar="SPEC",
                   help="instruction filter: world=S-EL0,addr=0x100000-0x101000,sym=label "
                        "(repeatable)")
    p.add_argument("--no-mem", action="store_true", help="--insn without MR/MW memory records")
    p.add_argument("--wall", action="store_true", help="also record wall time (breaks "
                   "byte-identical traces; diff ignores it)")
    p.add_argument("-o", "--output", default="-", metavar="FILE", help="output file (- = stdout)")
    p.add_argument("target", nargs="+", metavar="SCENARIO",
                   help="scenario name or .py file; or 'show FILE'; or 'diff A B'")
    p.set_defaults(handler=cmd_trace)
    return p
