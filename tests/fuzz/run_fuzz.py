"""Coverage-guided fuzzing of one target with atheris (``make fuzz``).

    python tests/fuzz/run_fuzz.py TARGET [--seconds N]

Runs libFuzzer for N seconds (FUZZ_SECONDS, default 60) on ``targets.TARGETS[TARGET]`` with
tests/fuzz/corpus/TARGET as the seed corpus (read-only: new inputs go to a temporary
directory) and writes any crashing input to tests/fuzz/corpus/TARGET/crash-<sha1>, where
tests/fuzz/test_fuzz.py replays it on every test run: each crash becomes a regression test.
Without atheris, falls back to N seconds of random inputs through the same target.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    args, rest = ap.parse_known_args()
    corpus = HERE / "corpus" / args.target
    corpus.mkdir(parents=True, exist_ok=True)
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is None:
        import targets
        fn, rng, end, n = targets.TARGETS[args.target], random.Random(0), time.time() + args.seconds, 0
        while time.time() < end:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 512)))
            try:
                fn(data)
            except Exception:
                (corpus / f"crash-{hashlib.sha1(data).hexdigest()}").write_bytes(data)
                raise
            n += 1
        print(f"{args.target}: {n} random inputs, no finding (atheris not installed)")
        return 0
    # Instrument only the code that reads the guest's bytes (instrumenting every import,
    # lief and unicorn included, takes minutes).
    with atheris.instrument_imports(include=["tee_os", "linux_side", "tzemu.aes_stream"]):
        import tee_os.msg, tee_os.entry_std, tee_os.msg_protmem  # noqa: F401
        import tee_os.spmc.descriptors, tee_os.spmc.memory, tee_os.spmc.spmc  # noqa: F401
        import tee_os.ta_loader, tzemu.aes_stream  # noqa: F401
        import linux_side.kernel, linux_side.tee.tee_core, linux_side.dma_heap  # noqa: F401
    import targets
    fn = targets.TARGETS[args.target]
    work = tempfile.mkdtemp(prefix=f"fuzz-{args.target}-")
    argv = [sys.argv[0], *rest, f"-max_total_time={args.seconds}", "-rss_limit_mb=4096",
            f"-artifact_prefix={corpus}/", "-max_len=4096", work, str(corpus)]
    atheris.Setup(argv, fn)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
