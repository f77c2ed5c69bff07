"""Header trees for ``tzemu abi``: what the user points at, staged into tzemu's layout.

:class:`HeaderTree` resolves tzemu's own copy, an include directory laid out like tzemu's, a
Linux kernel source tree or an optee_os tree to one include directory the loader reads (the
real trees' ABI headers are laid over tzemu's copy in a temporary directory; the headers they
include from their own tree come from the stand-ins in ``emu/abi/sysinclude``).
:func:`load_checked` loads one side with every problem located (file:line).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import AbiError, AbiSet, Unsupported, linux_abi, secure_abi

_ROOT = Path(__file__).resolve().parents[2]
SIDES = ("linux", "secure")
_OWN = {"linux": _ROOT / "linux_side" / "include", "secure": _ROOT / "tee_os" / "include"}

# --------------------------------------------------------------------------------------------
# Real trees -> tzemu's header layout
# --------------------------------------------------------------------------------------------
#: tzemu header (relative to linux_side/include) -> path in a kernel source tree.
KERNEL_MAP: dict[str, str] = {
    "uapi/linux/tee.h": "include/uapi/linux/tee.h",
    "uapi/linux/dma-heap.h": "include/uapi/linux/dma-heap.h",
    "linux/arm_ffa.h": "include/linux/arm_ffa.h",
    "drivers/tee/optee/optee_msg.h": "drivers/tee/optee/optee_msg.h",
    "drivers/tee/optee/optee_smc.h": "drivers/tee/optee/optee_smc.h",
    "drivers/tee/optee/optee_ffa.h": "drivers/tee/optee/optee_ffa.h",
    "drivers/tee/optee/optee_rpc_cmd.h": "drivers/tee/optee/optee_rpc_cmd.h",
}
#: tzemu header (relative to tee_os/include) -> candidate paths in an optee_os tree.
OPTEE_OS_MAP: dict[str, tuple[str, ...]] = {
    "optee_msg.h": ("core/include/optee_msg.h",),
    "optee_rpc_cmd.h": ("core/include/optee_rpc_cmd.h",),
    "optee_ffa.h": ("core/include/optee_ffa.h", "core/arch/arm/include/optee_ffa.h"),
    "sm/optee_smc.h": ("core/arch/arm/include/sm/optee_smc.h",),
    "ffa.h": ("core/arch/arm/include/ffa.h",),
    "teesmc_opteed.h": ("core/arch/arm/include/sm/teesmc_opteed.h",),
    "tee_api_defines.h": ("lib/libutee/include/tee_api_defines.h",),
}


class TreeError(Exception):
    """A directory or revision the user named is not a header tree (a usage error, exit 2)."""


@dataclass
class HeaderTree:
    """One side's header set: ``include`` is what ``linux_abi``/``secure_abi`` read."""

    side: str
    include: Path
    kind: str                          # "tzemu", "include", "kernel" or "optee_os"
    origin: str                        # what the user gave (for reports)
    path_map: dict[str, str] = field(default_factory=dict)   # staged file -> real file
    _tmp: Any = None
    #: non-fatal problems found by :func:`load_checked` (each with file:line)
    warnings: list[Unsupported] = field(default_factory=list)

    def load(self) -> AbiSet:
        return (linux_abi if self.side == "linux" else secure_abi)(self.include)

    def display(self, path: str) -> str:
        """A file as the user knows it (staged copies mapped back to the real tree)."""
        path = self.path_map.get(path, path)
        try:
            rel = os.path.relpath(path)
        except ValueError:
            return path
        return path if rel.startswith("..") else rel

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _stage(side: str, tree: Path, mapping: dict[str, tuple[str, ...]], kind: str) -> HeaderTree:
    """tzemu's own copy with the real tree's ABI headers laid over it."""
    tmp = tempfile.TemporaryDirectory(prefix=f"tzemu-abi-{side}-")
    inc = Path(tmp.name) / "include"
    shutil.copytree(_OWN[side], inc)
    path_map = {}
    found = 0
    for ours, candidates in mapping.items():
        for cand in candidates:
            src = tree / cand
            if src.is_file():
                shutil.copyfile(src, inc / ours)
                path_map[str((inc / ours).resolve())] = str(src.resolve())
                found += 1
                break
    if not found:
        tmp.cleanup()
        raise TreeError(f"{tree}: no ABI header of a {kind} tree found")
    # unmapped support headers keep tzemu's copy: report them under their real name
    for p in inc.rglob("*.h"):
        path_map.setdefault(str(p.resolve()), str(_OWN[side] / p.relative_to(inc)) +
                            " (tzemu support copy)")
    return HeaderTree(side, inc, kind, str(tree), path_map, tmp)


def resolve_tree(side: str, tree: str | Path | None) -> HeaderTree:
    """Interpret ``--linux-tree`` / ``--optee-tree`` (None: tzemu's own copy)."""
    if tree is None:
        return HeaderTree(side, _OWN[side], "tzemu", str(_OWN[side]))
    t = Path(tree)
    if not t.is_dir():
        raise TreeError(f"{tree}: not a directory")
    if side == "linux":
        if (t / "linux_side" / "include").is_dir():
            return HeaderTree(side, t / "linux_side" / "include", "include", str(tree))
        if (t / "uapi" / "linux" / "tee.h").is_file():
            return HeaderTree(side, t, "include", str(tree))
        if (t / "include" / "uapi" / "linux" / "tee.h").is_file():
            return _stage(side, t, {k: (v,) for k, v in KERNEL_MAP.items()}, "kernel")
        raise TreeError(f"{tree}: neither a kernel source tree (include/uapi/linux/tee.h) nor "
                        f"a Linux-side include directory (uapi/linux/tee.h)")
    if (t / "tee_os" / "include").is_dir():
        return HeaderTree(side, t / "tee_os" / "include", "include", str(tree))
    if (t / "optee_msg.h").is_file() and (t / "sm" / "optee_smc.h").is_file():
        return HeaderTree(side, t, "include", str(tree))
    if (t / "core" / "include" / "optee_msg.h").is_file():
        return _stage(side, t, OPTEE_OS_MAP, "optee_os")
    raise TreeError(f"{tree}: neither an optee_os tree (core/include/optee_msg.h) nor a "
                    f"secure-side include directory (optee_msg.h, sm/optee_smc.h)")


def detect_sides(tree: str | Path) -> list[str]:
    """Which sides a directory holds (a tzemu checkout holds both)."""
    found = []
    for side in SIDES:
        try:
            resolve_tree(side, tree).cleanup()
            found.append(side)
        except TreeError:
            pass
    return found


def materialize(spec: str, workdir: Path) -> Path:
    """``git:REV:PATH`` -> a directory holding PATH at REV (via ``git archive``); else ``spec``."""
    if not spec.startswith("git:"):
        return Path(spec)
    try:
        _, rev, path = spec.split(":", 2)
    except ValueError:
        raise TreeError(f"{spec}: expected git:REV:PATH") from None
    path = path.strip("/") or "."
    out = workdir / f"rev-{len(list(workdir.iterdir()))}"
    out.mkdir()
    archive = out / "tree.tar"
    cmd = ["git", "archive", "--format=tar", f"--output={archive}", rev, "--", path]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        raise TreeError(f"{spec}: cannot run git: {e}") from None
    if proc.returncode:
        raise TreeError(f"{spec}: git archive failed: {proc.stderr.strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    archive.unlink()
    return out / path


# --------------------------------------------------------------------------------------------
# Loading with every problem located
# --------------------------------------------------------------------------------------------
#: Families whose object-like macros must evaluate to integers: one that does not is a
#: broken definition (reported with file:line), not something to skip silently.
ABI_FAMILIES = ("OPTEE_", "FFA_", "TEE_", "TEEC_", "DMA_HEAP_", "ARM_SMCCC_", "SMCCC_")


def load_checked(tree: HeaderTree) -> tuple[AbiSet | None, list[Unsupported]]:
    """Load a side; returns (abi, problems). ``abi`` is None when loading failed outright."""
    try:
        abi = tree.load()
    except AbiError as e:
        probs = e.problems or [Unsupported(tree.origin, 0, str(e))]
        return None, [Unsupported(tree.display(p.file), p.line, p.what) for p in probs]
    problems = []
    for name, why in abi.skipped.items():
        if name.startswith(ABI_FAMILIES) and "expands to nothing" not in why \
                and "string literal" not in why:
            file, line = abi.locations.get(name, ("?", 0))
            u = Unsupported(tree.display(file), line, f"{name} is not an integer constant: {why}")
            # A macro naming an identifier that no header of the set defines cannot be used
            # by any program built against these headers either (upstream kernels have shipped
            # such dead macros): a warning, still located, never silently dropped.
            (tree.warnings if _UNDEFINED in why else problems).append(u)
    return abi, problems


_UNDEFINED = "is not a known constant"


def side_dump(abi: AbiSet, tree: HeaderTree | None = None) -> dict[str, Any]:
    """``{"constants", "structs", "headers"}`` of one side (the ``abi dump`` JSON)."""
    show = tree.display if tree else (lambda p: p)
    return {
        "constants": {n: abi.constants[n] for n in sorted(abi.constants)},
        "structs": {n: {"size": s.size,
                        "fields": [{"name": f.name, "offset": f.offset, "size": f.size}
                                   for f in s.fields]}
                    for n, s in sorted(abi.structs.items())},
        "headers": [show(h) for h in abi.headers],
    }
