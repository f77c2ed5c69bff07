"""emu.abi.compare: golden numbers, the concept table and the old/new classification."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from emu.abi import compare as C

ROOT = Path(__file__).resolve().parents[2]
LINUX_INC = ROOT / "linux_side" / "include"
SECURE_INC = ROOT / "tee_os" / "include"
V6_SED = ROOT / "tests" / "data" / "abi" / "v6_restricted.sed"


def copy_side(tmp_path: Path, side: str) -> Path:
    dst = tmp_path / side
    shutil.copytree(LINUX_INC if side == "linux" else SECURE_INC, dst)
    return dst


def edit(path: Path, old: str, new: str, regex: bool = False) -> None:
    text = path.read_text()
    out = re.sub(old, new, text, count=1, flags=re.M) if regex else text.replace(old, new, 1)
    assert out != text, f"mutation {old!r} did not apply to {path}"
    path.write_text(out)


def apply_v6_sed(root: Path) -> None:
    """The same substitutions as tests/data/abi/v6_restricted.sed (used in docs/ci.md)."""
    rules = []
    for line in V6_SED.read_text().splitlines():
        if line.startswith("s/"):
            _, pat, rep, _ = line.split("/")
            pat = pat.replace(r"\(", "(").replace(r"\)", ")").replace(r"\{0,1\}", "?")
            rep = re.sub(r"\\(\d)", r"\\g<\1>", rep)
            rules.append((re.compile(pat), rep))
    for h in root.rglob("*.h"):
        text = h.read_text()
        for pat, rep in rules:
            text = pat.sub(rep, text)
        h.write_text(text)


def load(side: str, tree) -> tuple:
    t = C.resolve_tree(side, tree)
    abi, problems = C.load_checked(t)
    return t, abi, problems


# ----- golden: the project's headers dump exactly the fact-sheet numbers --------------------
LINUX_GOLDEN = {
    "TEE_IOC_VERSION": 0x800CA400, "TEE_IOC_SHM_ALLOC": 0xC010A401,
    "TEE_IOC_OPEN_SESSION": 0x8010A402, "TEE_IOC_INVOKE": 0x8010A403,
    "TEE_IOC_CANCEL": 0x8008A404, "TEE_IOC_CLOSE_SESSION": 0x8004A405,
    "TEE_IOC_SUPPL_RECV": 0x8010A406, "TEE_IOC_SUPPL_SEND": 0x8010A407,
    "TEE_IOC_SHM_REGISTER_FD": 0xC018A408, "TEE_IOC_SHM_REGISTER": 0xC018A409,
    "TEE_IOC_OBJECT_INVOKE": 0x8010A40A, "DMA_HEAP_IOCTL_ALLOC": 0xC0184800,
    "OPTEE_SMC_CALLS_UID": 0xBF00FF01, "OPTEE_MSG_CMD_LEND_PROTMEM": 8,
    "OPTEE_MSG_CMD_RECLAIM_PROTMEM": 9, "OPTEE_MSG_CMD_GET_PROTMEM_CONFIG": 10,
    "OPTEE_MSG_CMD_ASSIGN_PROTMEM": 11, "OPTEE_SMC_SEC_CAP_PROTMEM": 1 << 8,
    "OPTEE_SMC_SEC_CAP_DYNAMIC_PROTMEM": 1 << 9, "OPTEE_FFA_SEC_CAP_PROTMEM": 1 << 3,
    "OPTEE_MSG_PROTMEM_SECURE_VIDEO_PLAY": 1, "OPTEE_MSG_PROTMEM_SECURE_VIDEO_RECORD": 3,
}
SECURE_GOLDEN = {k: LINUX_GOLDEN[k] for k in (
    "OPTEE_SMC_CALLS_UID", "OPTEE_MSG_CMD_LEND_PROTMEM", "OPTEE_MSG_CMD_RECLAIM_PROTMEM",
    "OPTEE_MSG_CMD_GET_PROTMEM_CONFIG", "OPTEE_MSG_CMD_ASSIGN_PROTMEM",
    "OPTEE_SMC_SEC_CAP_PROTMEM", "OPTEE_SMC_SEC_CAP_DYNAMIC_PROTMEM",
    "OPTEE_FFA_SEC_CAP_PROTMEM")}
STRUCT_GOLDEN = {  # name: (size, [(field, offset, size), ...] prefix)
    "optee_msg_arg": (32, [("cmd", 0, 4), ("func", 4, 4), ("session", 8, 4),
                           ("cancel_id", 12, 4), ("pad", 16, 4), ("ret", 20, 4),
                           ("ret_origin", 24, 4), ("num_params", 28, 4), ("params", 32, 0)]),
    "optee_msg_param": (32, [("attr", 0, 8), ("u", 8, 24)]),
}
LINUX_STRUCTS = {
    "tee_ioctl_shm_register_fd_data": (24, [("fd", 0, 8), ("size", 8, 8), ("flags", 16, 4),
                                            ("id", 20, 4)]),
    "tee_ioctl_param": (32, [("attr", 0, 8), ("a", 8, 8), ("b", 16, 8), ("c", 24, 8)]),
    "dma_heap_allocation_data": (24, None), "tee_ioctl_version_data": (12, None),
    "tee_ioctl_open_session_arg": (56, None), "tee_ioctl_invoke_arg": (24, None),
}


def test_golden_dump_of_the_projects_headers():
    lt, lin, p1 = load("linux", None)
    st, sec, p2 = load("secure", None)
    assert p1 == p2 == []
    dl, ds = C.side_dump(lin, lt), C.side_dump(sec, st)
    assert set(dl) == {"constants", "structs", "headers"}
    for k, v in LINUX_GOLDEN.items():
        assert dl["constants"][k] == v, k
    for k, v in SECURE_GOLDEN.items():
        assert ds["constants"][k] == v, k
    for dump, table in ((dl, {**STRUCT_GOLDEN, **LINUX_STRUCTS}), (ds, STRUCT_GOLDEN)):
        for name, (size, fields) in table.items():
            s = dump["structs"][name]
            assert s["size"] == size, name
            if fields:
                got = [(f["name"], f["offset"], f["size"]) for f in s["fields"]]
                assert got == fields, name
    assert any(h.endswith("uapi/linux/tee.h") for h in dl["headers"])


def test_concept_table_agrees_on_the_projects_headers():
    lt, lin, _ = load("linux", None)
    st, sec, _ = load("secure", None)
    assert C.compare_sides(lin, sec, lt, st) == []
    pairs = {(ln, sn) for _, ln, sn in C.concept_pairs(lin, sec)}
    assert ("OPTEE_MSG_CMD_LEND_PROTMEM", "OPTEE_MSG_CMD_LEND_PROTMEM") in pairs
    assert ("FFA_MEM_LEND", "FFA_MEM_LEND_32") in pairs               # explicit pair
    assert ("TEEC_ERROR_BAD_PARAMETERS", "TEE_ERROR_BAD_PARAMETERS") in pairs  # pair rule
    assert ("OPTEE_SMC_RETURN_ETHREAD_LIMIT",) * 2 in pairs


def test_a_struct_missing_on_the_secure_side_is_reported_on_that_side(tmp_path):
    """Both worlds name it optee_msg_param_fmem: the note must name the side that lacks it."""
    sec = copy_side(tmp_path, "secure")
    msg = sec / "optee_msg.h"
    msg.write_text(msg.read_text().replace("optee_msg_param_fmem", "optee_msg_param_fmem_v2"))
    lt, lin, _ = load("linux", None)
    st, s, probs = load("secure", sec)
    notes = [f for f in C.compare_sides(lin, s, lt, st) if f.name == "struct optee_msg_param_fmem"]
    assert [f.detail for f in notes] == [
        "struct optee_msg_param_fmem is not defined on the secure side"], notes


def test_a_linux_ffa_v1_0_descriptor_is_a_version_note_not_a_mismatch(tmp_path):
    """A kernel still sending the 32-byte FF-A v1.0 transaction descriptor matches the SPMC's
    ffa_mem_transaction_1_0: version skew that FFA_VERSION negotiation handles."""
    lin = copy_side(tmp_path, "linux")
    edit(lin / "linux/arm_ffa.h",
         r"\tu32 ep_mem_size;.*\n\tu32 ep_count;.*\n\tu32 ep_mem_offset;.*\n\tu32 reserved\[3\];\n",
         "\tu32 reserved;\n\tu32 ep_count;\n\tstruct ffa_mem_region_attributes ep_mem_access[];\n",
         regex=True)
    lt, l, probs = load("linux", lin)
    st, sec, _ = load("secure", None)
    assert l.structs["ffa_mem_region"].size == 32
    (f,) = [f for f in C.compare_sides(l, sec, lt, st) if "ffa_mem_region" in f.name]
    assert f.severity == "note" and "FF-A v1.0" in f.detail, f
    # A layout matching neither version is still an error (tag narrowed: everything after moves).
    edit(lin / "linux/arm_ffa.h", r"^\tu64 tag;", "\tu32 tag;", regex=True)
    lt, l, _ = load("linux", lin)
    (f,) = [f for f in C.compare_sides(l, sec, lt, st) if "ffa_mem_region" in f.name]
    assert f.severity == "error"


def test_renumbered_command_on_the_secure_side_is_a_located_mismatch(tmp_path):
    sec = copy_side(tmp_path, "secure")
    edit(sec / "optee_msg.h", r"^(#define OPTEE_MSG_CMD_LEND_PROTMEM\s+)U\(8\)", r"\1U(42)",
         regex=True)
    lt, lin, _ = load("linux", None)
    st, s, probs = load("secure", sec)
    assert probs == []
    (f,) = C.compare_sides(lin, s, lt, st)
    assert f.severity == "error" and f.name == "OPTEE_MSG_CMD_LEND_PROTMEM"
    assert f.linux["file"].endswith("drivers/tee/optee/optee_msg.h") and f.linux["line"] > 0
    assert f.secure["file"] == str(sec / "optee_msg.h") and f.secure["line"] > 0
    assert (f.linux["value"], f.secure["value"]) == (8, 42)
    assert "lend-reclaim[smc]" in f.scenarios


def _diff(side: str, old, new) -> list[C.Change]:
    ot, oa, p1 = load(side, old)
    nt, na, p2 = load(side, new)
    assert p1 == p2 == []
    return C.diff_abi(side, oa, na, ot, nt)


def test_diff_identical_is_empty():
    assert _diff("linux", None, None) == []


def test_swapped_struct_fields_are_breaking(tmp_path):
    lin = copy_side(tmp_path, "linux")
    edit(lin / "uapi/linux/tee.h", "\t__u64 a;\n\t__u64 b;\n", "\t__u64 b;\n\t__u64 a;\n")
    changes = _diff("linux", None, lin)
    (c,) = [c for c in changes if c.kind == "struct-changed"]
    assert c.classification == "breaking" and c.name == "struct tee_ioctl_param"
    assert "'a'" in c.detail and "'b'" in c.detail


def test_swapped_optee_msg_param_fields_are_breaking(tmp_path):
    sec = copy_side(tmp_path, "secure")
    text = (sec / "optee_msg.h").read_text()
    m = re.search(r"struct optee_msg_param \{\n(\s+\S.*attr;\n)(\s+union \{)", text)
    assert m, "optee_msg_param layout not as expected"
    body_end = text.index("} u;\n", m.end()) + len("} u;\n")
    union = text[m.start(2):body_end]
    new = text[:m.start(1)] + union + m.group(1) + text[body_end:]
    (sec / "optee_msg.h").write_text(new)
    changes = _diff("secure", None, sec)
    broken = {c.name for c in changes if c.classification == "breaking"}
    assert "struct optee_msg_param" in broken


def test_capability_bit_change_is_reported_and_a_new_bit_is_compatible(tmp_path):
    lin = copy_side(tmp_path, "linux")
    smc = lin / "drivers/tee/optee/optee_smc.h"
    edit(smc, r"^(#define OPTEE_SMC_SEC_CAP_RPC_ARG\s+)BIT\(6\)", r"\1BIT(12)", regex=True)
    edit(smc, r"^(#define OPTEE_SMC_SEC_CAP_DYNAMIC_PROTMEM.*\n)",
         r"\1#define OPTEE_SMC_SEC_CAP_NEW_FEATURE\tBIT(10)\n", regex=True)
    by_name = {c.name: c for c in _diff("linux", None, lin)}
    moved = by_name["OPTEE_SMC_SEC_CAP_RPC_ARG"]
    assert moved.kind == "renumbered" and moved.classification == "breaking"
    assert "capability bit" in moved.detail and moved.new["line"] > 0
    new = by_name["OPTEE_SMC_SEC_CAP_NEW_FEATURE"]
    assert new.kind == "added" and new.classification == "compatible"


def test_new_command_reusing_a_number_is_breaking(tmp_path):
    lin = copy_side(tmp_path, "linux")
    edit(lin / "drivers/tee/optee/optee_msg.h",
         r"^(#define OPTEE_MSG_CMD_LEND_PROTMEM\s+8\n)", r"\1#define OPTEE_MSG_CMD_FROB\t8\n",
         regex=True)
    (c,) = _diff("linux", None, lin)
    assert c.name == "OPTEE_MSG_CMD_FROB" and c.classification == "breaking"


def test_struct_grown_at_the_end_is_noted(tmp_path):
    lin = copy_side(tmp_path, "linux")
    edit(lin / "uapi/linux/tee.h", "\t__u64 c;\n};", "\t__u64 c;\n\t__u64 d;\n};")
    changes = [c for c in _diff("linux", None, lin) if c.name == "struct tee_ioctl_param"]
    assert [c.kind for c in changes] == ["struct-grown"]
    assert "32 -> 40" in changes[0].detail


def test_v6_restricted_names_are_compatible_renames(tmp_path):
    lin = copy_side(tmp_path, "linux")
    apply_v6_sed(lin)
    changes = _diff("linux", lin, None)
    assert changes and all(c.kind == "renamed" for c in changes), changes
    names = {c.name for c in changes}
    assert "OPTEE_MSG_CMD_LEND_RSTMEM -> OPTEE_MSG_CMD_LEND_PROTMEM" in names
    assert "OPTEE_SMC_SEC_CAP_SDP -> OPTEE_SMC_SEC_CAP_PROTMEM" in names
    assert "OPTEE_FFA_RELEASE_RSTMEM -> OPTEE_FFA_RELEASE_PROTMEM" in names


def test_broken_macro_is_a_located_parse_problem(tmp_path):
    lin = copy_side(tmp_path, "linux")
    msg = lin / "drivers/tee/optee/optee_msg.h"
    edit(msg, r"^(#define OPTEE_MSG_CMD_LEND_PROTMEM\s+)8$", r"\1(8 +", regex=True)
    line = next(i for i, t in enumerate(msg.read_text().splitlines(), 1)
                if "OPTEE_MSG_CMD_LEND_PROTMEM" in t)
    _, _, problems = load("linux", lin)
    assert [(p.file, p.line) for p in problems] == [(str(msg), line)]


def test_tree_resolution(tmp_path):
    with pytest.raises(C.TreeError):
        C.resolve_tree("linux", tmp_path)
    # a kernel source tree is staged into tzemu's layout and reported with its own paths
    k = tmp_path / "linux"
    for ours, theirs in C.KERNEL_MAP.items():
        (k / theirs).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LINUX_INC / ours, k / theirs)
    edit(k / "drivers/tee/optee/optee_msg.h", r"^(#define OPTEE_MSG_CMD_LEND_PROTMEM\s+)8$",
         r"\g<1>9", regex=True)
    t = C.resolve_tree("linux", k)
    try:
        assert t.kind == "kernel"
        abi, probs = C.load_checked(t)
        assert probs == [] and abi.constants["OPTEE_MSG_CMD_LEND_PROTMEM"] == 9
        file, _ = abi.locations["OPTEE_MSG_CMD_LEND_PROTMEM"]
        assert t.display(file) == str((k / "drivers/tee/optee/optee_msg.h").resolve())
    finally:
        t.cleanup()
    assert C.detect_sides(ROOT) == ["linux", "secure"]
    assert C.detect_sides(SECURE_INC) == ["secure"]
