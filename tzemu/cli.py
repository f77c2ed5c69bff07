"""The ``tzemu`` command line: ``info``, ``run`` and friends.

Errors are one clear line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Callable, Sequence

from rich.console import Console
from rich.table import Table

import tzemu
from emu.abi import AbiError
from emu.asm import AsmError
from emu.platform_map import PlatformConfigError
from linux_side.errors import LinuxError
from linux_side.teec import TeecError
from tzemu.abi_cli import add_abi_commands, run_abi
from tzemu.aes_stream import AesStreamError
from tzemu.cli_args import add_attach_arguments, add_boot_arguments, attachments, boot_options
from tzemu.gdb_cli import add_gdb_commands
from tzemu.trace import add_trace_commands
from tzemu.demo import run_ta_roundtrip
from tzemu.svp import SvpError


# Shared with the gdb and trace front ends (tzemu/cli_args.py).
_boot_options = boot_options
_add_boot_arguments = add_boot_arguments


@contextlib.contextmanager
def _booted(args: argparse.Namespace, opts: dict):
    """Boot, then attach what --trace / --gdb ask for; detach when the workload ends."""
    p = tzemu.boot(abi=args.abi, **opts)
    attached = []
    try:
        for attach in attachments(args):
            attached.append(attach(p))
        yield p
    finally:
        for obj in reversed(attached):
            if obj is not None:
                obj.close()


def cmd_info(args: argparse.Namespace, console: Console) -> int:
    p = tzemu.boot(abi=args.abi, **_boot_options(args))
    info = p.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    t = Table(title=f"tzemu platform {info['platform']} ({info['abi']} ABI)")
    t.add_column("field")
    t.add_column("value")
    for key in ("api_uid", "api_revision", "os_uuid", "os_revision", "threads"):
        t.add_row(key, str(info[key]))
    t.add_row("sec_caps", " | ".join(info["sec_caps"]) + f"  ({info['sec_caps_value']:#x})")
    console.print(t)
    m = Table(title="memory map")
    for col in ("name", "base", "size", "secure"):
        m.add_column(col)
    for r in info["memory_map"]:
        m.add_row(r["name"], f"{r['base']:#010x}", f"{r['size']:#x}", "yes" if r["secure"] else "no")
    console.print(m)
    return 0


def _svp_summary(console: Console, res, title: str) -> None:
    t = Table(title=title)
    t.add_column("")
    t.add_column("")
    t.add_row("frames", str(res.frames))
    t.add_row("throughput", f"{res.mb_per_s:.1f} MB/s, {res.fps:.1f} fps")
    t.add_row("display CRC32 (first, last)",
              f"{res.crcs[0]:08x} .. {res.crcs[-1]:08x}" if res.crcs else "-")
    if res.pngs:
        t.add_row("decoded frame", res.pngs[0])
    t.add_row("normal-world read of a frame buffer",
              f"FAULT ({res.ns_read_fault})" if res.ns_read_fault else "NOT denied")
    t.add_row("faults", ", ".join(res.faults) or "none")
    console.print(t)


def _play(args: argparse.Namespace, console: Console, stream: bytes, key: str, iv: str | None,
          title: str):
    from rich.progress import Progress
    from tzemu import svp
    opts = _boot_options(args)
    opts.setdefault("protmem", "dynamic" if args.abi == "ffa" else "static")
    fsize = __import__("tzemu.video", fromlist=["frame_size"]).frame_size(args.format, args.width, args.height)
    if opts["protmem"] == "dynamic":
        opts["protmem_min_size"] = max(0x100000, (fsize + 0xFFFFF) & ~0xFFFFF)
    with _booted(args, opts) as p, Progress(console=console, transient=True) as bar:
        task = bar.add_task("decrypting", total=None)
        res = svp.play(p, stream, key=key, iv=iv, serialize_iv=args.serialize_iv,
                       cipher=args.cipher, per_buffer_padding=not args.no_per_buffer_padding,
                       fmt=args.format, width=args.width, height=args.height,
                       frames=args.frames, crypto=args.crypto, output=args.output,
                       png_dir=args.png_dir, png_frames=args.png_frames,
                       progress=lambda i, n: bar.update(task, completed=i, total=n))
    _svp_summary(console, res, title)
    return 0 if res.ns_read_fault and not res.faults else 1


def cmd_svp(args: argparse.Namespace, console: Console) -> int:
    try:
        stream = open(args.input, "rb").read()
    except OSError as exc:
        raise tzemu.PlatformError(f"cannot read {args.input}: {exc.strerror}") from None
    return _play(args, console, stream, args.key, args.iv,
                 f"tzemu svp {args.input}: {args.format} {args.width}x{args.height}, {args.crypto} path")


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    """The main job: the seed's secure video playback demo with built-in defaults."""
    from tzemu import svp
    console.print(f"videotestsrc ! aesenc key={svp.SEED_KEY} iv={svp.SEED_IV} serialize-iv=true "
                  f"! (TA decrypt into protected,secure-video) ! display  "
                  f"[{args.format} {args.width}x{args.height}, {args.frames} frames]")
    stream = svp.make_test_stream(args.format, args.width, args.height, args.frames)
    args.serialize_iv, args.no_per_buffer_padding, args.cipher = True, False, "aes-128-cbc"
    args.output = None
    return _play(args, console, stream, svp.SEED_KEY, None,
                 "tzemu run: secure video playback through the emulated secure path")


def cmd_roundtrip(args: argparse.Namespace, console: Console) -> int:
    start = time.perf_counter()
    p = tzemu.boot(abi=args.abi, **_boot_options(args))
    boot_s = time.perf_counter() - start
    summary = run_ta_roundtrip(p)
    t = Table(title="tzemu run: normal world -> EL3 -> S-EL1 -> TA at S-EL0 and back")
    t.add_column("step")
    t.add_column("result")
    for step, result in summary.steps:
        t.add_row(step, result)
    console.print(t)
    console.print(f"booted in {boot_s * 1000:.0f} ms; {p.monitor.smc_count} SMCs; "
                  f"{summary.failures} failure(s)")
    return 1 if summary.failures else 0


def cmd_tzc(args: argparse.Namespace, console: Console) -> int:
    p = tzemu.boot(abi=args.abi, **_boot_options(args))
    state = p.tzc.to_json()
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    names = {v: k for k, v in p.memory_map.nsaid.items()}

    def masters(mask: int) -> str:
        return ", ".join(names.get(i, f"nsaid{i}") for i in range(16) if mask >> i & 1) or "-"
    t = Table(title=f"TZC-400 at {p.tzc_base:#x}: action {state['action']}, "
                    f"gate keeper {state['gate_keeper']:#x}")
    for col in ("region", "base", "top", "filters", "secure", "NS read", "NS write"):
        t.add_column(col)
    for r in state["regions"]:
        if not r["enabled"]:
            continue
        sec = ("R" if r["s_rd"] else "-") + ("W" if r["s_wr"] else "-")
        t.add_row(str(r["index"]), f"{r['base']:#x}", f"{r['top']:#x}", f"{r['filters']:#x}", sec,
                  masters(r["nsaid_rd"]), masters(r["nsaid_wr"]))
    console.print(t)
    for f, fail in enumerate(state["fails"]):
        console.print(f"filter {f}: status={fail['status']} overrun={fail['overrun']} "
                      f"FAIL_ADDRESS={fail['FAIL_ADDRESS']:#x} FAIL_CONTROL={fail['FAIL_CONTROL']:#x}")
    return 0


def cmd_xtest(args: argparse.Namespace, console: Console) -> int:
    from tzemu import xtest
    if not args.sdp_basic and args.test != "1014":
        print("tzemu xtest: give --sdp-basic or the test id 1014", file=sys.stderr)
        return 2
    opts = _boot_options(args)
    opts.setdefault("protmem", "dynamic" if args.abi == "ffa" else "static")
    with _booted(args, opts) as p:
        if args.sdp_basic:
            rep = xtest.run_sdp_basic(p, size=args.size, loop=args.loops, heap=args.heap_name,
                                      rnd_offset=not args.no_offset, verbosity=1 + args.verbose,
                                      seed=args.seed)
        else:
            rep = xtest.run_1014(p, heap=args.heap_name, seed=args.seed)
    for line in rep.lines:
        print(line)
    return 1 if rep.failed_cases or rep.failed_subtests else 0


def cmd_scenario(args: argparse.Namespace, console: Console) -> int:
    from tzemu.scenarios import SCENARIOS, run_scenario
    if args.action == "list" or not args.name:
        for s in SCENARIOS.values():
            extra = f" (default {', '.join(f'--{k} {v}' for k, v in s.defaults.items())})" if s.defaults else ""
            print(f"{s.name:14} {s.description}{extra}")
        return 0
    opts = _boot_options(args)
    result = run_scenario(args.name, abi=args.abi, attach=attachments(args), **opts)
    if args.json:
        print(json.dumps(result.to_json(), indent=1, default=str))
    else:
        for note in result.notes:
            console.print(f"  {note}")
        console.print(f"scenario {result.name}: {'passed' if result.passed else 'FAILED'} "
                      f"({len(result.events)} events, {len(result.faults)} faults)")
    return 0 if result.passed else 1


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Console], int], str]] = {
    "info": (cmd_info, "boot the platform and print what the normal world probed"),
    "run": (cmd_run, "the main job: secure video playback demo (colour bars, aesenc, TA "
                     "decrypt into protected buffers, display, a faulting NS read)"),
    "svp": (cmd_svp, "play an aesenc stream through the secure video path"),
    "roundtrip": (cmd_roundtrip, "boot and run a TA round trip through every world"),
    "tzc": (cmd_tzc, "boot the platform and show the TZC-400 regions and fail state"),
    "xtest": (cmd_xtest, "optee_test's secure data path tests: --sdp-basic and 1014"),
    "scenario": (cmd_scenario, "list or run a built-in scenario (sdp-basic, lend-reclaim, ...)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tzemu", description=(
        "Instruction-level emulator of the Arm secure-world stack behind Linux protected "
        "DMA-buf heaps (OP-TEE SMC ABI, EL3 monitor, S-EL1 secure OS, S-EL0 TAs)."))
    parser.add_argument("--version", action="version", version=f"tzemu {tzemu.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_fn, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        _add_boot_arguments(sp)
        if name in ("run", "svp", "xtest", "scenario"):
            add_attach_arguments(sp)
        if name in ("info", "tzc"):
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "xtest":
            sp.add_argument("test", nargs="?", help="regression test id (1014)")
            sp.add_argument("--sdp-basic", action="store_true", help="run xtest --sdp-basic")
            sp.add_argument("-s", dest="size", type=int, default=5000, help="buffer size (5000)")
            sp.add_argument("-n", dest="loops", type=int, default=1000, help="iterations (1000)")
            sp.add_argument("--heap-name", default="/dev/dma_heap/protected,secure-video")
            sp.add_argument("--no-offset", action="store_true", help="no random-offset shrink")
            sp.add_argument("-v", dest="verbose", action="count", default=0, help="more output")
        if name in ("svp", "run"):
            sp.add_argument("--format", default="NV12", choices=["NV12", "I420", "RGBA", "RGB16"])
            sp.add_argument("--width", type=int, default=320 if name == "run" else None,
                            required=name == "svp")
            sp.add_argument("--height", type=int, default=240 if name == "run" else None,
                            required=name == "svp")
            sp.add_argument("--frames", type=int, default=30 if name == "run" else None)
            sp.add_argument("--crypto", choices=["cpu", "engine"], default="cpu",
                            help="decrypt on the TA's CPU (crypto extension) or with the engine")
            sp.add_argument("--png-dir", default="tzemu-out" if name == "run" else None,
                            help="write decoded frames as PNG files here")
            sp.add_argument("--png-frames", type=int, default=1 if name == "run" else None)
        if name == "svp":
            sp.add_argument("--input", required=True, help="aesenc stream file")
            sp.add_argument("--key", required=True, help="hex key (aesenc's key property)")
            sp.add_argument("--iv", help="hex IV (ignored with --serialize-iv)")
            sp.add_argument("--serialize-iv", action="store_true")
            sp.add_argument("--no-per-buffer-padding", action="store_true")
            sp.add_argument("--cipher", choices=["aes-128-cbc", "aes-256-cbc"], default="aes-128-cbc")
            sp.add_argument("--output", help="write what the display scanned out (raw frames)")
        if name == "scenario":
            sp.add_argument("action", choices=["list", "run"])
            sp.add_argument("name", nargs="?", help="scenario name (see 'tzemu scenario list')")
            sp.add_argument("--json", action="store_true", help="print the result as JSON")
    add_abi_commands(sub)
    add_gdb_commands(sub, add_boot_arguments)
    add_trace_commands(sub, add_boot_arguments)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if args.command == "abi":
        return run_abi(args)
    console = Console()
    fn = (getattr(args, "gdb_command", None) or getattr(args, "handler", None)
          or COMMANDS[args.command][0])
    try:
        return fn(args, console)
    except (tzemu.PlatformError, PlatformConfigError, AbiError, AsmError, LinuxError, TeecError,
            tzemu.ProtectionFault, tzemu.GuestFault, SvpError, AesStreamError, ValueError) as exc:
        print(f"tzemu {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tzemu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # output piped into head & co.
        sys.stdout = None  # type: ignore[assignment]
        return 0


if __name__ == "__main__":
    sys.exit(main())
