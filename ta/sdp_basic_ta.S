/*
 * sdp_basic_ta: optee_test's Secure Data Path test TA (ta/sdp_basic/ta_sdp_basic.c) in AArch64
 * assembly for S-EL0. UUID 12345678-5b69-11e4-9dbb-101f74f00099, TA flags
 * SECURE_DATA_PATH | CACHE_MAINTENANCE (0xA0). Behaviour: sdp_tests.md §1.1; built as if
 * CFG_CACHE_API=y (TEE_CacheFlush issues syscall 70).
 *
 * Entered the way OP-TEE enters a TA (optee_ta_format.md §4.2):
 *   x0 = func (0 open, 1 close, 2 invoke), x1 = session id,
 *   x2 = struct utee_params* (= SP), x3 = command id.
 * struct utee_params { u64 types; u64 vals[8]; } (72 bytes): param n buffer VA / value a at
 * 8 + 16n, size / value b at 16 + 16n. Outputs are written back there.
 * Syscalls: x8 = number, args x0..x7, result in w0, every other register preserved, so the
 * callee-saved x19..x28 hold state across them. Leaves only through syscall 0 (RETURN).
 *
 * There is no libutee here: each GP call the C source makes is written out as the syscall that
 * libutee issues for it (TEE_CheckMemoryAccessRights -> 8, TEE_CacheFlush -> 70,
 * TEE_OpenTASession -> 5, TEE_InvokeTACommand -> 7, TEE_CloseTASession -> 6, EMSG -> 1).
 * libutee's own argument-annotation checks and its instance initialisation (syscalls 33, 4 and
 * the extra 8s of optee_ta_format.md §6) are not reproduced.
 *
 * Position independent: adr only, no absolute addresses (no relocations needed).
 * Constants (TEE_SCN_*, TEE_ERROR_*, TEE_PARAM_TYPE_*, TEE_MEMORY_ACCESS_*, TEE_CACHEFLUSH,
 * TEE_TIMEOUT_INFINITE, TEE_ORIGIN_*, UTEE_ENTRY_FUNC_*) come from ta/build.py.
 */

/* ta_sdp_basic.h */
    .equ    TA_SDP_BASIC_CMD_INJECT, 0
    .equ    TA_SDP_BASIC_CMD_TRANSFORM, 1
    .equ    TA_SDP_BASIC_CMD_DUMP, 2
    .equ    TA_SDP_BASIC_CMD_INVOKE_INJECT, 3
    .equ    TA_SDP_BASIC_CMD_INVOKE_TRANSFORM, 4
    .equ    TA_SDP_BASIC_CMD_INVOKE_DUMP, 5
    .equ    TA_SDP_BASIC_CMD_PTA_INJECT, 6
    .equ    TA_SDP_BASIC_CMD_PTA_TRANSFORM, 7
    .equ    TA_SDP_BASIC_CMD_PTA_DUMP, 8
/* PTA_SELF_TEST_CMD_INJECT_SDP = 3 .. DUMP_SDP = 5 = our command - 3, like INVOKE_* - 3. */

/* TEE_PARAM_TYPES(MEMREF_INPUT, MEMREF_OUTPUT, NONE, NONE) = 0x65, (MEMREF_INOUT, ...) = 0x7 */
    .equ    TYPES_IN_OUT, TEE_PARAM_TYPE_MEMREF_INPUT | (TEE_PARAM_TYPE_MEMREF_OUTPUT << 4)
    .equ    TYPES_INOUT, TEE_PARAM_TYPE_MEMREF_INOUT

/* Stack frame of cmd_invoke(): struct utee_params up; uint32_t sess, ret_orig. */
    .equ    UP_SIZE, 72
    .equ    FRAME_SESS, 80
    .equ    FRAME_RET_ORIG, 84
    .equ    INVOKE_FRAME, 96

/* ------------------------------------------------------------------------------------------ */
/* __ta_entry() + __utee_entry(): dispatch on the entry function.                               */
__ta_entry:
    mov     x19, x2                     // struct utee_params *up (== SP)
    ldr     w20, [x19]                  // uint32_t nParamTypes = up->types
    mov     w21, w3                     // uint32_t nCommandID
    cmp     x0, #UTEE_ENTRY_FUNC_OPEN_SESSION
    b.eq    ret_success                 // TA_OpenSessionEntryPoint(): TEE_SUCCESS
    cmp     x0, #UTEE_ENTRY_FUNC_CLOSE_SESSION
    b.eq    ret_success                 // TA_CloseSessionEntryPoint(): nothing to do
    cmp     x0, #UTEE_ENTRY_FUNC_INVOKE_COMMAND
    b.ne    ret_not_supported           // DUMP_MEMSTATS (no CFG_TA_STATS) and others

/* TA_InvokeCommandEntryPoint(): switch (nCommandID) */
    cmp     w21, #TA_SDP_BASIC_CMD_INJECT
    b.eq    cmd_inject
    cmp     w21, #TA_SDP_BASIC_CMD_TRANSFORM
    b.eq    cmd_transform
    cmp     w21, #TA_SDP_BASIC_CMD_DUMP
    b.eq    cmd_dump
    cmp     w21, #TA_SDP_BASIC_CMD_INVOKE_DUMP
    b.ls    cmd_invoke                  // 3, 4, 5 -> cmd_invoke(types, params, cmd - 3)
    cmp     w21, #TA_SDP_BASIC_CMD_PTA_DUMP
    b.ls    cmd_invoke_pta              // 6, 7, 8 -> cmd_invoke_pta(types, params, cmd - 3)
    b       ret_bad_parameters          // default: TEE_ERROR_BAD_PARAMETERS

/* ------------------------------------------------------------------------------------------ */
/* cmd_inject(): [0] MEMREF_INPUT ns, [1] MEMREF_OUTPUT sec; copy ns -> sec.                   */
cmd_inject:
    cmp     w20, #TYPES_IN_OUT
    b.ne    inject_bad_types
    ldp     x22, x23, [x19, #8]         // params[ns_idx = 0].memref.{buffer, size}
    ldp     x24, x25, [x19, #24]        // params[sec_idx = 1].memref.{buffer, size}
    cmp     x25, x23                    // if (sec.size < ns.size) return SHORT_BUFFER
    b.lo    ret_short_buffer

    // TEE_CheckMemoryAccessRights(ANY_OWNER | READ | NONSECURE, ns.buffer, ns.size)
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_READ)
    orr     w0, w0, #TEE_MEMORY_ACCESS_NONSECURE
    mov     x1, x22
    mov     x2, x23
    bl      check_access_rights
    adr     x1, msg_inject_nsec
    cbnz    w0, log_and_return

    // TEE_CheckMemoryAccessRights(ANY_OWNER | WRITE | SECURE, sec.buffer, sec.size)
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_WRITE)
    orr     w0, w0, #TEE_MEMORY_ACCESS_SECURE
    mov     x1, x24
    mov     x2, x25
    bl      check_access_rights
    adr     x1, msg_inject_sec
    cbnz    w0, log_and_return

    mov     x0, x24                     // TEE_CacheFlush(sec.buffer, sec.size)
    mov     x1, x25
    bl      cache_flush
    mov     x0, x24                     // TEE_MemMove(sec.buffer, ns.buffer, sec.size):
    mov     x1, x22                     // sec.size bytes, not ns.size (quirk #1)
    mov     x2, x25
    bl      memmove
    mov     x0, x24                     // TEE_CacheFlush(sec.buffer, sec.size)
    mov     x1, x25
    bl      cache_flush
    b       ret_success

inject_bad_types:                       // EMSG("bad parameters %x", types)
    mov     w0, w20
    adr     x1, msg_inject_bad_params
    bl      log_error
    b       ret_bad_parameters

/* ------------------------------------------------------------------------------------------ */
/* cmd_transform(): [0] MEMREF_INOUT sec; every byte b -> ~b + 1.                              */
cmd_transform:
    cmp     w20, #TYPES_INOUT
    b.ne    ret_bad_parameters
    ldp     x22, x23, [x19, #8]         // params[0].memref.{buffer, size}

    // TEE_CheckMemoryAccessRights(ANY_OWNER | READ | WRITE | SECURE, buffer, size)
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_WRITE)
    orr     w0, w0, #TEE_MEMORY_ACCESS_SECURE
    mov     x1, x22
    mov     x2, x23
    bl      check_access_rights
    adr     x1, msg_transform_sec
    cbnz    w0, log_and_return

    mov     x0, x22                     // TEE_CacheFlush(buffer, size)
    mov     x1, x23
    bl      cache_flush

    // for (; sz; sz--, p++) *p = ~(*p) + 1;  -- 16, then 8 bytes per NEG on byte lanes
    mov     x9, x22                     // p
    mov     x10, x23                    // sz
transform_16:
    cmp     x10, #16
    b.lo    transform_8
    ldr     q0, [x9]
    neg     v0.16b, v0.16b
    str     q0, [x9], #16
    sub     x10, x10, #16
    b       transform_16
transform_8:
    cmp     x10, #8
    b.lo    transform_1
    ldr     d0, [x9]
    neg     v0.8b, v0.8b
    str     d0, [x9], #8
    sub     x10, x10, #8
transform_1:
    cbz     x10, transform_done
    ldrb    w11, [x9]
    neg     w11, w11
    strb    w11, [x9], #1
    sub     x10, x10, #1
    b       transform_1
transform_done:

    mov     x0, x22                     // TEE_CacheFlush(buffer, size)
    mov     x1, x23
    bl      cache_flush
    b       ret_success

/* ------------------------------------------------------------------------------------------ */
/* cmd_dump(): [0] MEMREF_INPUT sec, [1] MEMREF_OUTPUT ns; copy sec -> ns.                     */
cmd_dump:
    cmp     w20, #TYPES_IN_OUT
    b.ne    ret_bad_parameters
    ldp     x22, x23, [x19, #8]         // params[sec_idx = 0].memref.{buffer, size}
    ldp     x24, x25, [x19, #24]        // params[ns_idx = 1].memref.{buffer, size}
    cmp     x25, x23                    // if (ns.size < sec.size) return SHORT_BUFFER
    b.lo    ret_short_buffer

    // TEE_CheckMemoryAccessRights(ANY_OWNER | WRITE | NONSECURE, ns.buffer, ns.size)
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_WRITE)
    orr     w0, w0, #TEE_MEMORY_ACCESS_NONSECURE
    mov     x1, x24
    mov     x2, x25
    bl      check_access_rights
    adr     x1, msg_dump_nsec
    cbnz    w0, log_and_return

    // TEE_CheckMemoryAccessRights(ANY_OWNER | READ | SECURE, sec.buffer, sec.size)
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_READ)
    orr     w0, w0, #TEE_MEMORY_ACCESS_SECURE
    mov     x1, x22
    mov     x2, x23
    bl      check_access_rights
    adr     x1, msg_dump_sec
    cbnz    w0, log_and_return

    mov     x0, x22                     // TEE_CacheFlush(sec.buffer, sec.size)
    mov     x1, x23
    bl      cache_flush
    mov     x0, x24                     // TEE_MemMove(ns.buffer, sec.buffer, sec.size)
    mov     x1, x22
    mov     x2, x23
    bl      memmove
    b       ret_success                 // no flush after the dump (quirk #2)

/* ------------------------------------------------------------------------------------------ */
/* cmd_invoke() / cmd_invoke_pta(): forward the current params to a session kept in a static.  */
cmd_invoke:                             // TA_SDP_BASIC_CMD_INVOKE_*: new instance of ourselves
    sub     w22, w21, #TA_SDP_BASIC_CMD_INVOKE_INJECT   // -> TA_SDP_BASIC_CMD_INJECT..DUMP
    adr     x23, ta_session             // static TEE_TASessionHandle sess
    adr     x24, sdp_basic_uuid         // const TEE_UUID uuid = TA_SDP_BASIC_UUID
    adr     x26, msg_invoke_open
    adr     x27, msg_invoke_invoke
    b       invoke_common
cmd_invoke_pta:                         // TA_SDP_BASIC_CMD_PTA_*: the invoke_tests pseudo-TA
    sub     w22, w21, #3                // -> PTA_SELF_TEST_CMD_INJECT_SDP (3) .. DUMP_SDP (5)
    adr     x23, pta_session            // its own static TEE_TASessionHandle sess
    adr     x24, pta_self_test_uuid     // const TEE_UUID uuid = PTA_SELF_TEST_UUID
    adr     x26, msg_invoke_pta_open
    adr     x27, msg_invoke_pta_invoke

invoke_common:
    sub     sp, sp, #INVOKE_FRAME       // struct utee_params up; uint32_t sess, ret_orig;
    ldr     w9, [x23]
    cbnz    w9, invoke_have_session     // if (sess == TEE_HANDLE_NULL) {

    // TEE_OpenTASession(&uuid, TEE_TIMEOUT_INFINITE, 0, NULL, &sess, &ret_orig):
    // no parameters -> a zeroed utee_params (types 0)
    stp     xzr, xzr, [sp]
    stp     xzr, xzr, [sp, #16]
    stp     xzr, xzr, [sp, #32]
    stp     xzr, xzr, [sp, #48]
    str     xzr, [sp, #64]
    mov     w9, #TEE_ORIGIN_TEE
    str     wzr, [sp, #FRAME_SESS]
    str     w9, [sp, #FRAME_RET_ORIG]
    mov     x0, x24                     // dest
    mov     w1, #TEE_TIMEOUT_INFINITE   // cancel_req_to
    mov     x2, sp                      // utee_params
    add     x3, sp, #FRAME_SESS         // sess
    add     x4, sp, #FRAME_RET_ORIG     // ret_orig
    mov     x8, #TEE_SCN_OPEN_TA_SESSION
    svc     #0
    cbnz    w0, invoke_open_failed
    ldr     w9, [sp, #FRAME_SESS]
    str     w9, [x23]                   // sess = the new handle (kept for later calls)
invoke_have_session:                    // }

    // TEE_InvokeTACommand(sess, TEE_TIMEOUT_INFINITE, cmd, nParamTypes, pParams, &ret_orig):
    // __utee_from_param(): up.types = types; per param: value -> (u32 a, u32 b),
    // memref -> (buffer, size) as received, none/other -> 0
    mov     w10, w20
    str     x10, [sp]                   // up.types
    mov     x11, #0                     // n
invoke_from_param:
    lsl     w12, w11, #2
    lsr     w13, w10, w12
    and     w13, w13, #0xf              // TEE_PARAM_TYPE_GET(types, n)
    add     x14, x19, x11, lsl #4
    ldp     x15, x16, [x14, #8]         // entry vals[2n], vals[2n + 1]
    cmp     w13, #TEE_PARAM_TYPE_VALUE_INOUT
    b.ls    invoke_from_value
    cmp     w13, #TEE_PARAM_TYPE_MEMREF_INPUT
    b.lo    invoke_from_none
    cmp     w13, #TEE_PARAM_TYPE_MEMREF_INOUT
    b.ls    invoke_from_store
invoke_from_none:
    mov     x15, #0
    mov     x16, #0
    b       invoke_from_store
invoke_from_value:
    cbz     w13, invoke_from_none       // TEE_PARAM_TYPE_NONE
    mov     w15, w15                    // value.a, value.b are uint32_t
    mov     w16, w16
invoke_from_store:
    add     x17, sp, x11, lsl #4
    stp     x15, x16, [x17, #8]
    add     x11, x11, #1
    cmp     x11, #4
    b.lo    invoke_from_param

    mov     w9, #TEE_ORIGIN_TEE
    str     w9, [sp, #FRAME_RET_ORIG]
    ldr     w0, [x23]                   // sess
    mov     w1, #TEE_TIMEOUT_INFINITE   // cancel_req_to
    mov     w2, w22                     // cmd_id
    mov     x3, sp                      // utee_params
    add     x4, sp, #FRAME_RET_ORIG     // ret_orig
    mov     x8, #TEE_SCN_INVOKE_TA_COMMAND
    svc     #0
    mov     w25, w0                     // res

    mov     w10, w20                    // types (all registers but x0 survive svc anyway)
    // __utee_to_param() then the entry's update_out_param(): what the callee wrote back
    // (value outputs, memref output sizes) goes to our own caller's utee_params
    mov     x11, #0
invoke_to_param:
    lsl     w12, w11, #2
    lsr     w13, w10, w12
    and     w13, w13, #0xf
    add     x14, x19, x11, lsl #4
    add     x17, sp, x11, lsl #4
    ldp     x15, x16, [x17, #8]         // up.vals[2n], up.vals[2n + 1]
    cmp     w13, #TEE_PARAM_TYPE_VALUE_OUTPUT
    b.eq    invoke_to_value
    cmp     w13, #TEE_PARAM_TYPE_VALUE_INOUT
    b.eq    invoke_to_value
    cmp     w13, #TEE_PARAM_TYPE_MEMREF_OUTPUT
    b.eq    invoke_to_size
    cmp     w13, #TEE_PARAM_TYPE_MEMREF_INOUT
    b.ne    invoke_to_next
invoke_to_size:
    str     x16, [x14, #16]             // memref.size
    b       invoke_to_next
invoke_to_value:
    mov     w15, w15
    mov     w16, w16
    stp     x15, x16, [x14, #8]         // value.a, value.b
invoke_to_next:
    add     x11, x11, #1
    cmp     x11, #4
    b.lo    invoke_to_param

    cbz     w25, invoke_return          // if (res != TEE_SUCCESS) {
    mov     w0, w25                     //   EMSG("... FAILED %x/%d", res, ret_orig)
    mov     x1, x27
    bl      log_error
    ldr     w0, [x23]                   // cleanup_return: TEE_CloseTASession(sess)
    mov     x8, #TEE_SCN_CLOSE_TA_SESSION
    svc     #0
    str     wzr, [x23]                  //   sess = TEE_HANDLE_NULL }
    b       invoke_return

invoke_open_failed:                     // EMSG("... TEE_OpenTASession() FAILED")
    mov     w25, w0
    mov     x1, x26
    bl      log_error
    str     wzr, [x23]                  // sess stays TEE_HANDLE_NULL: TEE_CloseTASession()
                                        // of a NULL handle makes no syscall
invoke_return:
    add     sp, sp, #INVOKE_FRAME
    mov     w0, w25                     // return res
    b       ta_return

/* ------------------------------------------------------------------------------------------ */
/* Helpers (leaf unless noted). Scratch: x9..x17; x19..x28 untouched.                          */

/* check_access_rights: ta_runtime.S. */

/* TEE_CacheFlush(x0 buffer, x1 len): syscall 70 op TEE_CACHEFLUSH. A failure is logged and
 * otherwise ignored (the C source would return it; the data path does not need the cache). */
cache_flush:
    mov     w2, #TEE_CACHEFLUSH
    mov     x8, #TEE_SCN_CACHE_OPERATION
    svc     #0
    cbz     w0, cache_flush_ret
    stp     x29, x30, [sp, #-16]!       // not a leaf on this path
    adr     x1, msg_cache_flush
    bl      log_error
    ldp     x29, x30, [sp], #16
cache_flush_ret:
    ret

/* TEE_MemMove(x0 dst, x1 src, x2 n): overlap-safe; 16 bytes per ldp/stp, then bytes. */
memmove:
    sub     x9, x0, x1
    cmp     x9, x2                      // dst - src >= n (unsigned): forward copy is safe
    b.hs    memmove_fwd_16
    add     x0, x0, x2                  // dst inside (src, src + n): copy backwards
    add     x1, x1, x2
memmove_bwd_16:
    cmp     x2, #16
    b.lo    memmove_bwd_1
    ldp     x10, x11, [x1, #-16]!
    stp     x10, x11, [x0, #-16]!
    sub     x2, x2, #16
    b       memmove_bwd_16
memmove_bwd_1:
    cbz     x2, memmove_ret
    ldrb    w10, [x1, #-1]!
    strb    w10, [x0, #-1]!
    sub     x2, x2, #1
    b       memmove_bwd_1
memmove_fwd_16:
    cmp     x2, #16
    b.lo    memmove_fwd_1
    ldp     x10, x11, [x1], #16
    stp     x10, x11, [x0], #16
    sub     x2, x2, #16
    b       memmove_fwd_16
memmove_fwd_1:
    cbz     x2, memmove_ret
    ldrb    w10, [x1], #1
    strb    w10, [x0], #1
    sub     x2, x2, #1
    b       memmove_fwd_1
memmove_ret:
    ret

/* EMSG(): log "<x1: NUL-terminated text> 0x<w0 as 8 hex digits>\n" with syscall 1 (LOG);
 * returns w0 unchanged. */
    .equ    LOG_BUF, 128
    .equ    LOG_TEXT_MAX, 100
log_error:
    sub     sp, sp, #LOG_BUF
    mov     x9, sp                      // output cursor
    mov     x12, #LOG_TEXT_MAX
log_copy:
    ldrb    w10, [x1], #1
    cbz     w10, log_hex
    strb    w10, [x9], #1
    subs    x12, x12, #1
    b.ne    log_copy
log_hex:
    mov     w10, #0x20                  // " 0x"
    strb    w10, [x9], #1
    mov     w10, #0x30
    strb    w10, [x9], #1
    mov     w10, #0x78
    strb    w10, [x9], #1
    mov     w11, #28                    // nibble shift, most significant first
log_hex_digit:
    lsr     w12, w0, w11
    and     w12, w12, #0xf
    add     w13, w12, #0x30             // '0' + d
    add     w14, w12, #0x57             // 'a' + d - 10
    cmp     w12, #10
    csel    w12, w13, w14, lo
    strb    w12, [x9], #1
    subs    w11, w11, #4
    b.ge    log_hex_digit
    mov     w10, #0x0a                  // "\n"
    strb    w10, [x9], #1
    mov     w15, w0
    mov     x0, sp                      // _utee_log(buf, len)
    mov     x13, sp
    sub     x1, x9, x13
    mov     x8, #TEE_SCN_LOG
    svc     #0
    mov     w0, w15
    add     sp, sp, #LOG_BUF
    ret

/* ------------------------------------------------------------------------------------------ */
/* Exits: _utee_return(res).                                                                   */
log_and_return:                         // w0 = error, x1 = message
    bl      log_error
    b       ta_return
    .include "ta_runtime.S"

/* ------------------------------------------------------------------------------------------ */
/* Read-only data.                                                                             */
    .balign 8
sdp_basic_uuid:                         // TA_SDP_BASIC_UUID as a TEE_UUID (little-endian fields)
    .long   0x12345678
    .short  0x5b69
    .short  0x11e4
    .byte   0x9d, 0xbb, 0x10, 0x1f, 0x74, 0xf0, 0x00, 0x99
pta_self_test_uuid:                     // PTA_SELF_TEST_UUID (invoke_tests.pta)
    .long   0xd96a5b40
    .short  0xc3e5
    .short  0x21e3
    .byte   0x87, 0x94, 0x10, 0x02, 0xa5, 0xd5, 0xc6, 0x1b

msg_inject_bad_params:
    .asciz  "E/TA:  cmd_inject bad parameters"
msg_inject_nsec:
    .asciz  "E/TA:  cmd_inject TEE_CheckMemoryAccessRights(nsec) failed"
msg_inject_sec:
    .asciz  "E/TA:  cmd_inject TEE_CheckMemoryAccessRights(secure) failed"
msg_transform_sec:
    .asciz  "E/TA:  cmd_transform TEE_CheckMemoryAccessRights(secure) failed"
msg_dump_nsec:
    .asciz  "E/TA:  cmd_dump TEE_CheckMemoryAccessRights(nsec) failed"
msg_dump_sec:
    .asciz  "E/TA:  cmd_dump TEE_CheckMemoryAccessRights(secure) failed"
msg_cache_flush:
    .asciz  "E/TA:  TEE_CacheFlush() failed (ignored)"
msg_invoke_open:
    .asciz  "E/TA:  cmd_invoke SDP basic test TA: TEE_OpenTASession() FAILED"
msg_invoke_invoke:
    .asciz  "E/TA:  cmd_invoke SDP basic test TA: TEE_InvokeTACommand() FAILED"
msg_invoke_pta_open:
    .asciz  "E/TA:  cmd_invoke_pta SDP basic test TA: TEE_OpenTASession() FAILED"
msg_invoke_pta_invoke:
    .asciz  "E/TA:  cmd_invoke_pta SDP basic test TA: TEE_InvokeTACommand() FAILED"
__text_end:

    .balign 4096
__data_start:                           // RW segment: per-instance statics
ta_session:                             // cmd_invoke(): static TEE_TASessionHandle sess
    .long   0
pta_session:                            // cmd_invoke_pta(): static TEE_TASessionHandle sess
    .long   0
