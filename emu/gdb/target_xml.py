"""The AArch64 target description served through qXfer:features:read.

Register numbers (gdb's ``p``/``P`` numbering) follow the order of :data:`REGISTERS`: the
standard aarch64 core (x0..x30, sp, pc, cpsr) and fpu (v0..v31, fpsr, fpcr) features, then
``org.tzemu.sysregs``: the EL1 exception registers of the selected world's view and two
registers modelled by the Python EL3 (``current_el``, ``scr_el3`` with NS = world).
"""
from __future__ import annotations

from dataclasses import dataclass

from unicorn import arm64_const as A


@dataclass(frozen=True)
class RegDef:
    name: str
    bits: int
    feature: str          # "core", "fpu" or "sys"
    uc: int | None = None                 # Unicorn register id
    cp: tuple[int, int, int, int, int] | None = None   # (crn, crm, op0, op1, op2) for CP_REG
    type: str | None = None


def _build() -> list[RegDef]:
    regs = [RegDef(f"x{i}", 64, "core", A.UC_ARM64_REG_X0 + i) for i in range(29)]
    regs += [RegDef("x29", 64, "core", A.UC_ARM64_REG_X29),
             RegDef("x30", 64, "core", A.UC_ARM64_REG_X30),
             RegDef("sp", 64, "core", A.UC_ARM64_REG_SP, type="data_ptr"),
             RegDef("pc", 64, "core", A.UC_ARM64_REG_PC, type="code_ptr"),
             RegDef("cpsr", 32, "core", A.UC_ARM64_REG_PSTATE, type="cpsr_flags")]
    regs += [RegDef(f"v{i}", 128, "fpu", A.UC_ARM64_REG_V0 + i, type="aarch64v") for i in range(32)]
    regs += [RegDef("fpsr", 32, "fpu", A.UC_ARM64_REG_FPSR), RegDef("fpcr", 32, "fpu", A.UC_ARM64_REG_FPCR)]
    regs += [RegDef("elr_el1", 64, "sys", A.UC_ARM64_REG_ELR_EL1, type="code_ptr"),
             RegDef("spsr_el1", 64, "sys", cp=(4, 0, 3, 0, 0)),
             RegDef("esr_el1", 64, "sys", A.UC_ARM64_REG_ESR_EL1),
             RegDef("far_el1", 64, "sys", A.UC_ARM64_REG_FAR_EL1),
             RegDef("vbar_el1", 64, "sys", A.UC_ARM64_REG_VBAR_EL1, type="code_ptr"),
             RegDef("sctlr_el1", 64, "sys", cp=(1, 0, 3, 0, 0)),
             RegDef("tcr_el1", 64, "sys", cp=(2, 0, 3, 0, 2)),
             RegDef("ttbr0_el1", 64, "sys", A.UC_ARM64_REG_TTBR0_EL1),
             RegDef("ttbr1_el1", 64, "sys", A.UC_ARM64_REG_TTBR1_EL1),
             RegDef("sp_el0", 64, "sys", A.UC_ARM64_REG_SP_EL0, type="data_ptr"),
             RegDef("sp_el1", 64, "sys", A.UC_ARM64_REG_SP_EL1, type="data_ptr"),
             RegDef("current_el", 64, "sys"),       # modelled: the EL (0/1) of the executing view
             RegDef("scr_el3", 64, "sys")]          # modelled by the Python EL3: NS bit = world
    return regs


REGISTERS: list[RegDef] = _build()
REG_INDEX = {r.name: i for i, r in enumerate(REGISTERS)}
PC_REGNUM = REG_INDEX["pc"]
SP_REGNUM = REG_INDEX["sp"]
X30_REGNUM = REG_INDEX["x30"]

_CPSR_FLAGS = """  <flags id="cpsr_flags" size="4">
    <field name="SP" start="0" end="0"/>
    <field name="EL" start="2" end="3"/>
    <field name="nRW" start="4" end="4"/>
    <field name="F" start="6" end="6"/>
    <field name="I" start="7" end="7"/>
    <field name="A" start="8" end="8"/>
    <field name="D" start="9" end="9"/>
    <field name="V" start="28" end="28"/>
    <field name="C" start="29" end="29"/>
    <field name="Z" start="30" end="30"/>
    <field name="N" start="31" end="31"/>
  </flags>
"""

_FPU_TYPES = """  <vector id="v2d" type="ieee_double" count="2"/>
  <vector id="v2u" type="uint64" count="2"/>
  <vector id="v2i" type="int64" count="2"/>
  <vector id="v4f" type="ieee_single" count="4"/>
  <vector id="v4u" type="uint32" count="4"/>
  <vector id="v4i" type="int32" count="4"/>
  <vector id="v8u" type="uint16" count="8"/>
  <vector id="v8i" type="int16" count="8"/>
  <vector id="v16u" type="uint8" count="16"/>
  <vector id="v16i" type="int8" count="16"/>
  <vector id="v1u" type="uint128" count="1"/>
  <vector id="v1i" type="int128" count="1"/>
  <union id="vnd"><field name="f" type="v2d"/><field name="u" type="v2u"/><field name="s" type="v2i"/></union>
  <union id="vns"><field name="f" type="v4f"/><field name="u" type="v4u"/><field name="s" type="v4i"/></union>
  <union id="vnh"><field name="u" type="v8u"/><field name="s" type="v8i"/></union>
  <union id="vnb"><field name="u" type="v16u"/><field name="s" type="v16i"/></union>
  <union id="vnq"><field name="u" type="v1u"/><field name="s" type="v1i"/></union>
  <union id="aarch64v"><field name="d" type="vnd"/><field name="s" type="vns"/><field name="h" type="vnh"/><field name="b" type="vnb"/><field name="q" type="vnq"/></union>
"""

FEATURE_NAMES = {"core": "org.gnu.gdb.aarch64.core", "fpu": "org.gnu.gdb.aarch64.fpu",
                 "sys": "org.tzemu.sysregs"}
FILES = {"core": "aarch64-core.xml", "fpu": "aarch64-fpu.xml", "sys": "tzemu-sysregs.xml"}


def _reg_xml(i: int, r: RegDef) -> str:
    t = f' type="{r.type}"' if r.type else (' type="int"' if r.bits != 128 else "")
    group = ' group="system"' if r.feature == "sys" else ""
    return f'  <reg name="{r.name}" bitsize="{r.bits}" regnum="{i}"{t}{group}/>\n'


def feature_xml(feature: str) -> str:
    body = ""
    if feature == "core":
        body += _CPSR_FLAGS
    elif feature == "fpu":
        body += _FPU_TYPES
    body += "".join(_reg_xml(i, r) for i, r in enumerate(REGISTERS) if r.feature == feature)
    return ('<?xml version="1.0"?>\n<!DOCTYPE feature SYSTEM "gdb-target.dtd">\n'
            f'<feature name="{FEATURE_NAMES[feature]}">\n{body}</feature>\n')


def target_xml() -> str:
    includes = "".join(f'  <xi:include href="{FILES[f]}"/>\n' for f in ("core", "fpu", "sys"))
    return ('<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n'
            '<target version="1.0" xmlns:xi="http://www.w3.org/2001/XInclude">\n'
            '  <architecture>aarch64</architecture>\n' + includes + '</target>\n')


def documents() -> dict[str, str]:
    """Every annex gdb may ask for with qXfer:features:read."""
    docs = {"target.xml": target_xml()}
    docs.update({FILES[f]: feature_xml(f) for f in FILES})
    return docs
