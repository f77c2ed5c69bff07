"""``tzemu gdbserver [--port N] SCENARIO`` and ``tzemu symbols --out DIR``.

Wiring for tzemu/cli.py::

    from tzemu.gdb_cli import GDB_COMMANDS, add_gdb_commands, attach_gdb
    COMMANDS.update(GDB_COMMANDS)                      # before build_parser() runs
    add_gdb_commands(sub, _add_boot_arguments)          # in build_parser(), after the loop

``add_gdb_commands`` creates both sub-parsers itself, so the generic loop must skip the names
in GDB_COMMANDS. For ``--gdb PORT`` on run/svp/xtest/scenario run, call
``attach_gdb(platform, port)`` right after ``tzemu.boot``: it listens on 127.0.0.1, prints the
``target remote`` and ``add-symbol-file`` lines and returns when gdb lets execution start.
Also runnable alone: ``python -m tzemu.gdb_cli gdbserver lend-reclaim --abi ffa``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from typing import Any, Callable, Sequence

import tzemu
from emu.gdb.server import GdbKilled, GdbServer
from tzemu.cli_args import add_boot_arguments, boot_options
from tzemu.symbols import add_symbol_file_lines, write_symbols


def attach_gdb(platform: Any, port: int, *, symbols_dir: str | None = None,
               log: Callable[[str], None] | None = None) -> GdbServer:
    """Write symbol files, listen on 127.0.0.1:``port`` and wait for gdb to start execution."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    out = symbols_dir or tempfile.mkdtemp(prefix="tzemu-symbols-")
    files = write_symbols(platform, out)
    announced = [f for f in files if "/ta_" not in f[0]]     # TAs share one VA: add by hand
    server = GdbServer(platform, port, symbol_files=announced, log=log)
    log(f"tzemu: gdbserver listening on 127.0.0.1:{server.port}")
    log(f"tzemu: in gdb-multiarch: target remote :{server.port}")
    log(f"tzemu: symbols in {out} (ns_stubs and tee_os are announced to gdb; TAs load at the "
        f"same VA, add the one you debug):")
    for line in add_symbol_file_lines(files):
        log(f"  {line}")
    server.wait_for_client()
    return server


def run_scenario_with_gdb(name: str, port: int, *, symbols_dir: str | None = None,
                          log: Callable[[str], None] | None = None, **options: Any):
    """``tzemu.scenarios.run_scenario`` with a gdb stub attached before the scenario starts."""
    from tzemu.scenarios import run_scenario
    return run_scenario(name, attach=[lambda p: attach_gdb(p, port, symbols_dir=symbols_dir,
                                                           log=log)], **options)


def _boot_options(args: argparse.Namespace) -> dict:
    return {"abi": args.abi, **boot_options(args)}


def cmd_gdbserver(args: argparse.Namespace, console: Any = None) -> int:
    try:
        result = run_scenario_with_gdb(args.scenario, args.port, symbols_dir=args.symbols,
                                       **_boot_options(args))
    except GdbKilled:
        print("tzemu gdbserver: killed by gdb", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_json(), indent=1, default=str))
    else:
        for note in result.notes:
            print(f"  {note}")
        print(f"scenario {result.name}: {'passed' if result.passed else 'FAILED'} "
              f"({len(result.events)} events, {len(result.faults)} faults)")
    return 0 if result.passed else 1


def cmd_symbols(args: argparse.Namespace, console: Any = None) -> int:
    opts = _boot_options(args)
    p = tzemu.boot(**opts)
    files = write_symbols(p, args.out)
    for path, addr in files:
        print(f"{path}  .text at {addr:#x}")
    print("in gdb:")
    for line in add_symbol_file_lines(files):
        print(f"  {line}")
    return 0


GDB_COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Any], int], str]] = {
    "gdbserver": (cmd_gdbserver, "run a scenario under a gdb remote stub (worlds as threads)"),
    "symbols": (cmd_symbols, "write ELF symbol files for the NS stubs, the S-EL1 image and TAs"),
}


def add_gdb_commands(subparsers: Any, add_boot_arguments: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``gdbserver`` and ``symbols`` to the ``tzemu`` sub-command parser."""
    sp = subparsers.add_parser("gdbserver", help=GDB_COMMANDS["gdbserver"][1],
                               description=GDB_COMMANDS["gdbserver"][1])
    add_boot_arguments(sp)
    sp.add_argument("scenario", help="scenario name (see 'tzemu scenario list')")
    sp.add_argument("--port", type=int, default=1234, help="TCP port on 127.0.0.1 (default 1234; 0: any)")
    sp.add_argument("--symbols", metavar="DIR", help="write the symbol ELF files here")
    sp.add_argument("--json", action="store_true", help="print the scenario result as JSON")
    sp.set_defaults(gdb_command=cmd_gdbserver)
    sy = subparsers.add_parser("symbols", help=GDB_COMMANDS["symbols"][1],
                               description=GDB_COMMANDS["symbols"][1])
    add_boot_arguments(sy)
    sy.add_argument("--out", required=True, metavar="DIR", help="output directory")
    sy.set_defaults(gdb_command=cmd_symbols)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tzemu")
    sub = parser.add_subparsers(dest="command", required=True)
    add_gdb_commands(sub, add_boot_arguments)
    args = parser.parse_args(argv)
    try:
        return args.gdb_command(args, None)
    except tzemu.PlatformError as exc:
        print(f"tzemu {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
