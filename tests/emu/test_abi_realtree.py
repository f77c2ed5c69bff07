"""``tzemu abi`` on trees laid out like real kernel / optee_os checkouts.

The real ABI headers include headers internal to their tree (<linux/types.h>, <linux/bitops.h>,
<linux/ioctl.h>, <compiler.h>, <types_ext.h>...) that staging does not copy; the loader's
stand-in "system include" directories (emu/abi/sysinclude) supply them. The trees below are
small headers written for these tests in the style of the real ones, not copies of them.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emu.abi import SYSINCLUDE, AbiError, load_headers, system_include_dirs
from emu.abi import compare as C
from tzemu import abi_cli


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


KERNEL_TREE = {
    "include/uapi/linux/tee.h": """
#ifndef T_TEE_H
#define T_TEE_H
#include <linux/ioctl.h>
#include <linux/types.h>
#define TEE_IOC_MAGIC 0xa4
#define TEE_IOC_BASE 0
struct tee_ioctl_version_data { __u32 impl_id; __u32 impl_caps; __u32 gen_caps; };
#define TEE_IOC_VERSION _IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 0, struct tee_ioctl_version_data)
#endif
""",
    "include/uapi/linux/dma-heap.h": """
#include <linux/ioctl.h>
#include <linux/types.h>
#define DMA_HEAP_VALID_FD_FLAGS (O_CLOEXEC | O_ACCMODE)
struct dma_heap_allocation_data { __u64 len; __u32 fd; __u32 fd_flags; __u64 heap_flags; };
#define DMA_HEAP_IOC_MAGIC 'H'
#define DMA_HEAP_IOCTL_ALLOC _IOWR(DMA_HEAP_IOC_MAGIC, 0x0, struct dma_heap_allocation_data)
""",
    "drivers/tee/optee/optee_msg.h": """
#include <linux/bitops.h>
#include <linux/types.h>
#define OPTEE_MSG_ATTR_TYPE_MASK GENMASK(7, 0)
#define OPTEE_MSG_ATTR_META BIT(8)
#define OPTEE_MSG_CMD_OPEN_SESSION 0
struct optee_msg_param_value { u64 a; u64 b; u64 c; };
struct optee_msg_arg { u32 cmd; u32 func; u32 num_params; u32 pad;
                       struct optee_msg_param_value params[]; };
""",
    "drivers/tee/optee/optee_smc.h": """
#include <linux/arm-smccc.h>
#include <linux/bitops.h>
#define OPTEE_SMC_SEC_CAP_DYNAMIC_SHM BIT(2)
#define OPTEE_SMC_RETURN_RPC_PREFIX 0xFFFF0000
#define OPTEE_SMC_DEAD_MACRO (NOT_DEFINED_ANYWHERE | 1)
static inline bool __is_rpc(u32 ret)
{
	return (ret & OPTEE_SMC_RETURN_RPC_PREFIX) == OPTEE_SMC_RETURN_RPC_PREFIX;
}
""",
    "drivers/tee/optee/optee_ffa.h": """
#include <linux/arm_ffa.h>
#include <linux/bitfield.h>
#define OPTEE_FFA_YIELDING_CALL(id) ((id) | BIT(31))
#define OPTEE_FFA_YIELDING_CALL_WITH_ARG OPTEE_FFA_YIELDING_CALL(0)
#define OPTEE_FFA_FIELD FIELD_PREP(GENMASK(15, 8), 0x12)
""",
}

OPTEE_TREE = {
    "core/include/optee_msg.h": """
#include <compiler.h>
#include <types_ext.h>
#define OPTEE_MSG_ATTR_TYPE_MASK 0xff
#define OPTEE_MSG_CMD_OPEN_SESSION 0
struct optee_msg_arg { uint32_t cmd; uint32_t func; uint32_t num_params; uint32_t pad; }
	__aligned(8);
""",
    "core/arch/arm/include/sm/optee_smc.h": """
#define OPTEE_SMC_SEC_CAP_DYNAMIC_SHM (1 << 2)
#define OPTEE_SMC_RETURN_RPC_PREFIX 0xFFFF0000
""",
}


@pytest.fixture
def trees(tmp_path):
    return write(tmp_path / "linux", KERNEL_TREE), write(tmp_path / "optee_os", OPTEE_TREE)


def load(side, path):
    t = C.resolve_tree(side, path)
    try:
        abi, probs = C.load_checked(t)
        return t, abi, probs
    finally:
        t.cleanup()


def test_kernel_like_tree_loads_with_stand_in_headers(trees):
    t, abi, probs = load("linux", trees[0])
    assert t.kind == "kernel" and probs == []
    c = abi.constants
    assert c["TEE_IOC_VERSION"] == (2 << 30) | (12 << 16) | (0xa4 << 8)
    assert c["DMA_HEAP_IOCTL_ALLOC"] == 0xc0184800
    assert c["DMA_HEAP_VALID_FD_FLAGS"] == 0o2000003
    assert c["OPTEE_MSG_ATTR_TYPE_MASK"] == 0xff and c["OPTEE_MSG_ATTR_META"] == 0x100
    assert c["OPTEE_FFA_YIELDING_CALL_WITH_ARG"] == 1 << 31
    assert c["OPTEE_FFA_FIELD"] == 0x1200
    assert abi.struct("optee_msg_arg").size == 16
    # a macro naming an identifier no header defines: located warning, not a failure
    assert [(Path(w.file).name, w.line) for w in t.warnings] == [("optee_smc.h", 6)]
    assert "OPTEE_SMC_DEAD_MACRO" in t.warnings[0].what


def test_optee_os_like_tree_loads_with_stand_in_headers(trees):
    t, abi, probs = load("secure", trees[1])
    assert t.kind == "optee_os" and probs == []
    assert abi.struct("optee_msg_arg").size == 16
    assert abi.constants["OPTEE_SMC_SEC_CAP_DYNAMIC_SHM"] == 4


def test_cli_dump_and_check_on_real_like_trees(trees, capsys):
    lin, sec = map(str, trees)
    assert abi_cli.main(["dump", "--linux-tree", lin, "--optee-tree", sec]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["linux"]["constants"]["OPTEE_MSG_ATTR_META"] == 0x100
    assert "warning:" in err and "optee_smc.h:6" in err
    rc = abi_cli.main(["check", "--no-scenarios", "--json", "--linux-tree", lin,
                       "--optee-tree", sec])
    out, _ = capsys.readouterr()
    res = json.loads(out)
    assert rc in (0, 1) and res["warnings"]
    # the trailing flexible array (params[]) is not a layout difference
    assert not [f for f in res["findings"] if f["name"] == "struct optee_msg_arg"]


def test_include_nobody_provides_is_reported_with_file_and_line(trees, capsys):
    h = trees[0] / "drivers/tee/optee/optee_msg.h"
    h.write_text("#include <linux/slab.h>\n" + h.read_text())
    assert abi_cli.main(["dump", "--linux-tree", str(trees[0])]) == 2
    err = capsys.readouterr().err
    assert f"{h.resolve()}:1: include file 'linux/slab.h' not found" in err


# one test per stand-in header family --------------------------------------------------------
def standalone(tmp_path, side, text):
    (tmp_path / "t.h").write_text(text)
    return load_headers(tmp_path, ["t.h"], extra_include_dirs=system_include_dirs(side))


def test_stand_in_linux_types(tmp_path):
    abi = standalone(tmp_path, "linux", "#include <linux/types.h>\n"
                     "struct s { __u8 a; u64 b; bool c; __le16 d; s32 e; };\n")
    assert [(f.name, f.offset, f.size) for f in abi.struct("s").fields] == [
        ("a", 0, 1), ("b", 8, 8), ("c", 16, 1), ("d", 18, 2), ("e", 20, 4)]


def test_stand_in_linux_ioctl(tmp_path):
    abi = standalone(tmp_path, "linux", "#include <linux/ioctl.h>\n"
                     "struct a { unsigned int x[6]; };\n#define R _IOR('T', 3, struct a)\n"
                     "#define W _IOW(1, 2, int)\n#define N _IO(1, 2)\n")
    c = abi.constants
    assert c["R"] == (2 << 30) | (24 << 16) | (ord("T") << 8) | 3
    assert c["W"] == (1 << 30) | (4 << 16) | 0x102 and c["N"] == 0x102


def test_stand_in_linux_bits_bitops_bitfield(tmp_path):
    abi = standalone(tmp_path, "linux", "#include <linux/bitops.h>\n#include <linux/bitfield.h>\n"
                     "#define A BIT(63)\n#define B GENMASK(11, 4)\n#define C GENMASK_ULL(63, 62)\n"
                     "#define D FIELD_PREP(GENMASK(11, 4), 0x5a)\n"
                     "#define E FIELD_GET(GENMASK(11, 4), 0x5a0)\n")
    c = abi.constants
    assert (c["A"], c["B"], c["C"], c["D"], c["E"]) == (1 << 63, 0xff0, 3 << 62, 0x5a0, 0x5a)


def test_stand_in_linux_compiler_device_module_uuid(tmp_path):
    abi = standalone(tmp_path, "linux", "#include <linux/compiler.h>\n#include <linux/device.h>\n"
                     "#include <linux/module.h>\n#include <linux/uuid.h>\n"
                     "struct p { u8 a; u32 b; } __packed;\n"
                     "struct d { struct device *dev; uuid_t id; void __user *up; };\n")
    assert abi.struct("p").size == 5
    assert [(f.name, f.offset) for f in abi.struct("d").fields] == [
        ("dev", 0), ("id", 8), ("up", 24)]


def test_stand_in_optee_types_and_compiler(tmp_path):
    abi = standalone(tmp_path, "optee_os", "#include <compiler.h>\n#include <types_ext.h>\n"
                     "#include <stdint.h>\n#include <stddef.h>\n#include <stdbool.h>\n"
                     "struct a { uint32_t x; } __aligned(8);\n"
                     "struct b { uint8_t y; uint64_t z; paddr_t p; bool q; } __packed;\n")
    assert abi.struct("a").size == 8 and abi.struct("b").size == 18


def test_stand_in_optee_util(tmp_path):
    abi = standalone(tmp_path, "optee_os", "#include <util.h>\n#define A BIT(31)\n"
                     "#define B GENMASK_32(7, 4)\n#define C SHIFT_U64(1, 40)\n"
                     "#define D BIT64(33)\n")
    c = abi.constants
    assert (c["A"], c["B"], c["C"], c["D"]) == (1 << 31, 0xf0, 1 << 40, 1 << 33)


def test_tree_headers_win_over_stand_ins(tmp_path):
    write(tmp_path, {"linux/bits.h": "#define BIT(n) (2UL << (n))\n"})
    abi = standalone(tmp_path, "linux", "#include <linux/bitops.h>\n#define A BIT(0)\n")
    assert abi.constants["A"] == 2


def test_unsupported_in_a_stand_in_consumer_is_still_located(tmp_path):
    with pytest.raises(AbiError) as e:
        standalone(tmp_path, "linux", "#include <linux/types.h>\nstruct s { u32 a; unknown_t b; };\n")
    assert e.value.problems and e.value.problems[0].line == 2


# concept table ------------------------------------------------------------------------------
def test_rename_twins_stay_within_a_concept_family():
    assert C._rename_twin("OPTEE_MSG_ATTR_TYPE_FMEM_INOUT", 7,
                          ["OPTEE_MSG_RPC_CMD_SHM_FREE"]) is None
    assert C._rename_twin("OPTEE_MSG_CMD_LEND_RSTMEM", 8,
                          ["OPTEE_MSG_CMD_LEND_PROTMEM"]) == "OPTEE_MSG_CMD_LEND_PROTMEM"
    assert C._rename_twin("OPTEE_MSG_RSTMEM_SECURE_VIDEO_PLAY", 1,
                          ["OPTEE_MSG_PROTMEM_SECURE_VIDEO_PLAY"]) == \
        "OPTEE_MSG_PROTMEM_SECURE_VIDEO_PLAY"
    assert C._rename_twin("FFA_FN64_MEM_LEND", 0xc4000072,
                          ["FFA_MEM_LEND_64"]) == "FFA_MEM_LEND_64"
