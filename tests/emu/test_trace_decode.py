"""Decoders: every name comes from the header loader; descriptors and messages decode from bytes."""
from __future__ import annotations

import pytest

from emu.abi import firmware_abi, linux_abi, secure_abi
from emu.trace.decode import (Decoder, bit_names, decode_mem_descriptor, decode_msg_arg,
                              mem_flags, names)


def test_function_ids_and_codes_are_named_from_the_headers() -> None:
    n, lc, fc, sc = names(), linux_abi().c, firmware_abi().c, secure_abi().c
    assert n.fid[lc.OPTEE_SMC_CALL_WITH_ARG] == "OPTEE_SMC_CALL_WITH_ARG"
    assert n.fid[lc.OPTEE_SMC_GET_PROTMEM_CONFIG] == "OPTEE_SMC_GET_PROTMEM_CONFIG"
    assert n.fid[lc.FFA_MEM_LEND] == "FFA_MEM_LEND"
    assert n.fid[fc.FFA_MEM_LEND_SMC64].startswith("FFA_MEM_LEND")
    assert n.fid[fc.TEESMC_OPTEED_RETURN_CALL_DONE] == "TEESMC_OPTEED_RETURN_CALL_DONE"
    assert n.ffa_err[lc.FFA_RET_DENIED & 0xFFFFFFFF] == "FFA_RET_DENIED"
    assert n.smc_ret[lc.OPTEE_SMC_RETURN_ENOTAVAIL] == "OPTEE_SMC_RETURN_ENOTAVAIL"
    assert n.msg_cmd[lc.OPTEE_MSG_CMD_LEND_PROTMEM] == "OPTEE_MSG_CMD_LEND_PROTMEM"
    assert n.syscall[sc.TEE_SCN_LOG] == "TEE_SCN_LOG"
    caps = lc.OPTEE_SMC_SEC_CAP_DYNAMIC_SHM | lc.OPTEE_SMC_SEC_CAP_DYNAMIC_PROTMEM | 1 << 40
    assert bit_names(caps, n.sec_caps) == ["DYNAMIC_SHM", "DYNAMIC_PROTMEM", "bit40"]
    # no literal guesses: every name in the tables is a header constant with that value
    every = {**linux_abi().constants, **secure_abi().constants, **firmware_abi().constants}
    assert all(every[name] == value for value, name in n.fid.items())


def _descriptor(version: tuple[int, int], pa: int, pages: int, tag: int, receiver: int,
                perm: int) -> bytes:
    """A send descriptor built from the secure side's header layouts (FF-A spec §3)."""
    sec = secure_abi()
    emad = sec.struct("ffa_mem_access")
    comp, rng = sec.struct("ffa_mem_region"), sec.struct("ffa_address_range")
    if version >= (1, 1):
        hdr = sec.struct("ffa_mem_transaction_1_1")
        off = hdr.size
        head = hdr.pack({"sender_id": 0, "tag": tag, "mem_access_size": emad.size,
                         "mem_access_count": 1, "mem_access_offs": off})
    else:
        hdr = sec.struct("ffa_mem_transaction_1_0")
        off = hdr.offset_of("mem_access_array")
        head = hdr.pack({"sender_id": 0, "tag": tag, "mem_access_count": 1})[:off]
    composite = off + emad.size
    body = emad.pack({"access_perm": {"endpoint_id": receiver, "perm": perm},
                      "region_offs": composite})
    return head + body + comp.pack({"total_page_count": pages, "address_range_count": 1})[:16] \
        + rng.pack({"address": pa, "page_count": pages})


@pytest.mark.parametrize("version", [(1, 0), (1, 1)])
def test_mem_descriptor_decodes_sender_receivers_and_constituents(version) -> None:
    s = secure_abi().c
    raw = _descriptor(version, 0x5000_0000, 256, 1, 0x8001, s.FFA_DATA_ACCESS_RW)
    d = decode_mem_descriptor(raw)
    assert d["version"] == ("1.0" if version == (1, 0) else "1.1+")
    assert d["sender"] == "0x0" and d["tag"] == 1 and d["handle"] == "0x0"
    assert d["receivers"] == [{"endpoint": "0x8001", "perm": "RW", "perm_raw": "0x2", "flags": "0x0"}]
    assert d["constituents"] == [{"address": "0x50000000", "pages": 256}]
    assert d["total_pages"] == 256
    assert mem_flags(s.FFA_MEMORY_REGION_FLAG_CLEAR | s.FFA_MEMORY_REGION_TRANSACTION_TYPE_LEND) \
        == ["FLAG_CLEAR", "TRANSACTION_TYPE_LEND"]


def test_decoder_follows_an_ffa_lend_from_rxtx_map_to_the_handle() -> None:
    """RXTX_MAP registers the TX buffer; MEM_LEND's descriptor is read from it when the call
    is seen; the return names the handle and a later reclaim and direct request use it."""
    lc, sc = linux_abi().c, secure_abi().c
    memory = bytearray(0x10000)
    tx = 0x2000
    desc = _descriptor((1, 1), 0x5000_0000, 256, 1, 0x8001, sc.FFA_DATA_ACCESS_RW)
    memory[tx:tx + len(desc)] = desc
    dec = Decoder(read_phys=lambda pa, size: bytes(memory[pa:pa + size]))
    rx = dec.decode("smc", "NS-EL1", {"fid": lc.FFA_FN64_RXTX_MAP,
                                      "args": [lc.FFA_FN64_RXTX_MAP, tx, 0x3000, 1]})
    assert rx["name"] == names().fid[lc.FFA_FN64_RXTX_MAP] and rx["args"]["tx"] == hex(tx)
    dec.decode("smc_return", "NS-EL1", {"fid": lc.FFA_FN64_RXTX_MAP, "result": [lc.FFA_SUCCESS]})
    assert dec.tx == (tx, 1)
    call = dec.decode("smc", "NS-EL1", {"fid": lc.FFA_FN64_MEM_LEND,
                                        "args": [lc.FFA_FN64_MEM_LEND, len(desc), len(desc), 0, 0]})
    assert call["args"]["buffer"] == "TX"
    assert call["descriptor"]["constituents"] == [{"address": "0x50000000", "pages": 256}]
    handle = 0x1000_0000_0001
    lo, hi = handle & 0xFFFFFFFF, handle >> 32
    ret = dec.decode("smc_return", "NS-EL1", {"fid": lc.FFA_FN64_MEM_LEND,
                                              "result": [lc.FFA_SUCCESS, 0, lo, hi]})
    assert ret["call"] == call["call"] and ret["status"] == "FFA_SUCCESS"
    assert ret["handle"] == hex(handle) and ret["descriptor"]["handle"] == hex(handle)
    err = dec.decode("smc", "NS-EL1", {"fid": lc.FFA_MEM_RECLAIM,
                                       "args": [lc.FFA_MEM_RECLAIM, lo, hi, 0]})
    assert err["args"]["handle"] == hex(handle)
    bad = dec.decode("smc_return", "NS-EL1", {"fid": lc.FFA_MEM_RECLAIM,
                                              "result": [lc.FFA_ERROR, 0, lc.FFA_RET_DENIED & 0xFFFFFFFF]})
    assert bad["status"] == "FFA_ERROR" and bad["error"] == "FFA_RET_DENIED"


def test_optee_msg_arg_decodes_command_and_parameters() -> None:
    lin = linux_abi()
    c = lin.c
    arg, param = lin.struct("optee_msg_arg"), lin.struct("optee_msg_param")
    raw = arg.pack({"cmd": c.OPTEE_MSG_CMD_LEND_PROTMEM, "num_params": 2}) + \
        param.pack({"attr": c.OPTEE_MSG_ATTR_TYPE_VALUE_INPUT, "u": {"value": {"a": 1, "b": 2, "c": 3}}}) + \
        param.pack({"attr": c.OPTEE_MSG_ATTR_TYPE_TMEM_INPUT,
                    "u": {"tmem": {"buf_ptr": 0x5000_0000, "size": 0x100000, "shm_ref": 7}}})
    mem = bytes(0x100) + raw
    d = decode_msg_arg(lambda pa, size: mem[pa:pa + size], 0x100)
    assert d["cmd"] == "OPTEE_MSG_CMD_LEND_PROTMEM" and d["num_params"] == 2
    assert d["params"][0] == {"type": "VALUE_INPUT", "a": "0x1", "b": "0x2", "c": "0x3"}
    assert d["params"][1] == {"type": "TMEM_INPUT", "buf_ptr": "0x50000000", "size": 0x100000,
                              "shm_ref": "0x7"}


def test_smc_call_and_return_decode_against_each_other() -> None:
    c = linux_abi().c
    dec = Decoder()
    fid = c.OPTEE_SMC_EXCHANGE_CAPABILITIES
    call = dec.decode("smc", "NS-EL1", {"fid": fid,
                                        "args": [fid, c.OPTEE_SMC_NSEC_CAP_UNIPROCESSOR]})
    assert call["args"]["nsec_caps"] == ["UNIPROCESSOR"] and call["type"] == "fast"
    caps = c.OPTEE_SMC_SEC_CAP_DYNAMIC_SHM | c.OPTEE_SMC_SEC_CAP_RPC_ARG
    ret = dec.decode("smc_return", "NS-EL1", {"fid": fid,
                                              "result": [c.OPTEE_SMC_RETURN_OK, caps, 0, 4]})
    assert ret["call"] == call["call"] and ret["status"] == "OPTEE_SMC_RETURN_OK"
    assert ret["sec_caps"] == ["DYNAMIC_SHM", "RPC_ARG"]
    regd = c.OPTEE_SMC_CALL_WITH_REGD_ARG
    dec.decode("smc", "NS-EL1", {"fid": regd, "args": [regd, 0, 8, 0]})
    rpc = dec.decode("smc_return", "NS-EL1", {"fid": regd,
                                              "result": [c.OPTEE_SMC_RETURN_RPC_CMD, 0, 0, 3]})
    assert rpc["status"] == "RPC" and rpc["rpc"] == "OPTEE_SMC_RPC_FUNC_CMD"
    assert dec.decode("smc", "NS-EL1", {"fid": 0x8200_1234, "args": []})["name"] == "0x82001234"


def test_tzc_programming_accumulates_regions_and_names_masters() -> None:
    s = secure_abi()
    c = s.c
    dec = Decoder(nsaid_names={3: "display", 4: "codec"})
    r = c.TZC_REGION_BASE_LOW_0 + (2 << c.TZC_REGION_SIZE_SHIFT)
    dec.decode("tzc_program", "S-EL1", {"offset": r + c.TZC_REGION_BASE_LOW_OFF, "value": 0x5000_0000})
    top = dec.decode("tzc_program", "S-EL1", {"offset": r + c.TZC_REGION_TOP_LOW_OFF, "value": 0x500F_FFFF})
    assert (top["region"], top["base"], top["top"]) == (2, "0x50000000", "0x500fffff")
    access = s.call_macro("TZC_REGION_ACCESS_RDWR", 4) | s.call_macro("TZC_REGION_ACCESS_RD", 3)
    ids = dec.decode("tzc_program", "S-EL1", {"offset": r + c.TZC_REGION_ID_ACCESS_OFF, "value": access})
    assert ids["nsaid_read"] == ["display", "codec"] and ids["nsaid_write"] == ["codec"]
    value = c.TZC_REGION_S_RDWR << c.TZC_REGION_ATTR_SEC_SHIFT | 1
    attr = dec.decode("tzc_program", "S-EL1", {"offset": r + c.TZC_REGION_ATTR_OFF, "value": value})
    assert attr["secure"] == "S_RDWR" and attr["filters"] == [0]
    assert dec.decode("tzc_program", "S-EL1", {"offset": c.TZC_ACTION, "value": c.TZC_ACTION_ERR})["action"] \
        == "TZC_ACTION_ERR"


def test_decoding_never_raises() -> None:
    dec = Decoder(read_phys=lambda pa, size: (_ for _ in ()).throw(ValueError("unmapped")))
    c = linux_abi().c
    fid = c.OPTEE_SMC_CALL_WITH_ARG
    d = dec.decode("smc", "NS-EL1", {"fid": fid, "args": [fid, 0, 0x1000]})
    assert "decode_error" in d
    assert dec.decode("unknown_kind", "S-EL1", {"x": 1}) == {}
