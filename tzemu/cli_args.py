"""The boot options every booting ``tzemu`` sub-command shares (cli, gdb_cli, trace)."""
from __future__ import annotations

import argparse


def boot_options(args: argparse.Namespace) -> dict:
    """tzemu.boot keyword arguments from the common options (``--abi`` is passed apart)."""
    opts = {"platform_file": args.platform, "seed": args.seed, "threads": args.threads,
            "ta_dirs": args.ta_dir or ()}
    if getattr(args, "protmem", None):
        opts["protmem"] = args.protmem
    if getattr(args, "use_case", None):
        opts["protmem_use_cases"] = tuple(args.use_case)
    if getattr(args, "ta_key", None):
        opts["ta_key"] = args.ta_key
    if getattr(args, "no_verify_ta", False):
        opts["verify_ta"] = False
    if getattr(args, "inject", None):
        from emu.faults import parse_inject
        try:
            opts["inject"] = parse_inject(args.inject)
        except ValueError as exc:
            raise SystemExit(f"tzemu: --inject: {exc}") from None
    return opts


def add_boot_arguments(p: argparse.ArgumentParser) -> None:
    """The options every booting sub-command takes."""
    p.add_argument("--abi", choices=["smc", "ffa"], default="smc",
                   help="smc: OP-TEE SMC ABI via an OP-TEE dispatcher at EL3; ffa: FF-A with an "
                        "SPMD at EL3 and the SPMC in the secure OS (SPMC_AT_EL=1)")
    p.add_argument("--platform", metavar="FILE", help="platform memory-map TOML (default: built in)")
    p.add_argument("--seed", type=int, default=0, help="seed for everything guest-visible (default 0)")
    p.add_argument("--threads", type=int, default=4, help="secure threads (default 4)")
    p.add_argument("--ta-dir", action="append", metavar="DIR",
                   help="directory of <uuid>.ta files served by tee-supplicant (repeatable)")
    p.add_argument("--protmem", choices=["static", "dynamic"],
                   help="protected memory: static carveouts or memory lent from CMA")
    p.add_argument("--use-case", action="append", metavar="NAME",
                   choices=["secure-video", "trusted-ui", "secure-video-record"],
                   help="protected-memory use cases to offer (repeatable; default secure-video)")
    p.add_argument("--ta-key", metavar="PEM",
                   help="RSA public key that signed .ta files are verified with (default: the "
                        "project's test key, see docs/tas.md)")
    p.add_argument("--no-verify-ta", action="store_true",
                   help="load signed .ta files without checking digest and signature (warns)")
    p.add_argument("--inject", action="append", metavar="NAME[:N]",
                   help="fault injection: make point NAME fail at its N-th hit (default 1; 'all' "
                        "for every hit); repeatable; points in docs/security.md")


def add_attach_arguments(p: argparse.ArgumentParser) -> None:
    """``--gdb PORT`` and ``--trace FILE`` for the commands that run a workload."""
    from tzemu.trace import add_trace_option
    p.add_argument("--gdb", type=int, metavar="PORT",
                   help="wait for gdb-multiarch on 127.0.0.1:PORT before running (docs/debugging.md)")
    add_trace_option(p)


def attachments(args: argparse.Namespace) -> list:
    """Callables ``platform -> closeable`` for the ``--gdb`` / ``--trace`` options given."""
    out = []
    if getattr(args, "trace", None):
        from tzemu.trace import trace_from_args
        out.append(lambda p: trace_from_args(p, args))
    if getattr(args, "gdb", None) is not None:
        from tzemu.gdb_cli import attach_gdb
        out.append(lambda p: attach_gdb(p, args.gdb))
    return out
