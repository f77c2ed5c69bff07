/*
 * echo_ta: the project's first Trusted Application, AArch64 assembly for S-EL0.
 *
 * Entered the way OP-TEE enters a TA (optee_ta_format.md §4.2):
 *   x0 = func (0 open, 1 close, 2 invoke), x1 = session id,
 *   x2 = struct utee_params* (= SP), x3 = command id.
 * struct utee_params { u64 types; u64 vals[8]; }: param n value a / memref VA at 8 + 16n,
 * value b / memref size at 16 + 16n. Outputs are written back there.
 * Leaves only through syscall 0 (RETURN); syscalls: x8 = number, args x0..x7, result in x0,
 * all other registers preserved, so x19 (params) survives them.
 * Position independent: adr only; the one absolute address is the relocated `message_ptr`.
 * Constants (TEE_SCN_*, TEE_ERROR_*, TEE_PARAM_TYPE_*, UTEE_ENTRY_FUNC_*) come from ta/build.py.
 */

__ta_entry:
    mov     x19, x2
    cmp     x0, #UTEE_ENTRY_FUNC_OPEN_SESSION
    b.eq    ret_success
    cmp     x0, #UTEE_ENTRY_FUNC_CLOSE_SESSION
    b.eq    ret_success
    cmp     x0, #UTEE_ENTRY_FUNC_INVOKE_COMMAND
    b.ne    ret_not_supported
    ldr     x20, [x19]                  // packed parameter types
    and     x20, x20, #0xffff
    cmp     x3, #0
    b.eq    cmd_inc_value
    cmp     x3, #1
    b.eq    cmd_echo
    cmp     x3, #2
    b.eq    cmd_counter
    cmp     x3, #3
    b.eq    cmd_panic
    cmp     x3, #4
    b.eq    cmd_log
    cmp     x3, #5
    b.eq    cmd_fault
    cmp     x3, #6
    b.eq    cmd_busy_loop
    cmp     x3, #7
    b.eq    cmd_check_access
    cmp     x3, #8
    b.eq    cmd_get_ree_time
    cmp     x3, #9
    b.eq    cmd_random
    cmp     x3, #10
    b.eq    cmd_check_private
    cmp     x3, #11
    b.eq    cmd_reloc
    b       ret_not_supported

/* 0: (VALUE_INOUT): a += 1, b += 1 (32-bit values). */
cmd_inc_value:
    cmp     x20, #TEE_PARAM_TYPE_VALUE_INOUT
    b.ne    ret_bad_parameters
    ldr     w9, [x19, #8]
    add     w9, w9, #1
    str     x9, [x19, #8]
    ldr     w9, [x19, #16]
    add     w9, w9, #1
    str     x9, [x19, #16]
    b       ret_success

/* 1: (MEMREF_INPUT, MEMREF_OUTPUT): copy input to output. */
cmd_echo:
    cmp     x20, #(TEE_PARAM_TYPE_MEMREF_INPUT | (TEE_PARAM_TYPE_MEMREF_OUTPUT << 4))
    b.ne    ret_bad_parameters
    ldr     x9, [x19, #8]               // in VA
    ldr     x10, [x19, #16]             // in size
    ldr     x11, [x19, #24]             // out VA
    ldr     x12, [x19, #32]             // out size
    str     x10, [x19, #32]             // out size = in size (needed size on SHORT_BUFFER)
    cmp     x12, x10
    b.lo    ret_short_buffer
echo_copy8:
    cmp     x10, #8
    b.lo    echo_copy1
    ldr     x13, [x9], #8
    str     x13, [x11], #8
    sub     x10, x10, #8
    b       echo_copy8
echo_copy1:
    cbz     x10, ret_success
    ldrb    w13, [x9], #1
    strb    w13, [x11], #1
    sub     x10, x10, #1
    b       echo_copy1

/* 2: (VALUE_OUTPUT): counter += 1 in RW data; a = counter, b = 0. */
cmd_counter:
    cmp     x20, #TEE_PARAM_TYPE_VALUE_OUTPUT
    b.ne    ret_bad_parameters
    adr     x9, counter
    ldr     x10, [x9]
    add     x10, x10, #1
    str     x10, [x9]
    mov     w10, w10
    str     x10, [x19, #8]
    str     xzr, [x19, #16]
    b       ret_success

/* 3: any types: panic(0xDEAD); never returns. */
cmd_panic:
    mov     w0, #0xDEAD
    mov     x1, sp
    mov     x8, #TEE_SCN_PANIC
    svc     #0
panic_hang:
    b       panic_hang

/* 4: (NONE): log a fixed message. */
cmd_log:
    cbnz    x20, ret_bad_parameters
    adr     x0, log_msg
    adr     x1, log_msg_end
    sub     x1, x1, x0
    mov     x8, #TEE_SCN_LOG
    svc     #0
    b       ret_success

/* 5: any types: load from address 0 (a data abort at S-EL0). */
cmd_fault:
    mov     x9, #0
    ldr     x10, [x9]
    b       ret_generic

/* 6: (VALUE_INPUT): spin a times. */
cmd_busy_loop:
    cmp     x20, #TEE_PARAM_TYPE_VALUE_INPUT
    b.ne    ret_bad_parameters
    ldr     w9, [x19, #8]
busy_loop:
    cbz     w9, ret_success
    sub     w9, w9, #1
    b       busy_loop

/* 7: (MEMREF_INOUT, VALUE_INPUT): CHECK_ACCESS_RIGHTS(value.a, memref); return its result. */
cmd_check_access:
    cmp     x20, #(TEE_PARAM_TYPE_MEMREF_INOUT | (TEE_PARAM_TYPE_VALUE_INPUT << 4))
    b.ne    ret_bad_parameters
    ldr     w0, [x19, #24]
    ldr     x1, [x19, #8]
    ldr     x2, [x19, #16]
    mov     x8, #TEE_SCN_CHECK_ACCESS_RIGHTS
    svc     #0
    b       ta_return

/* 8: (VALUE_OUTPUT): GET_TIME(REE) into a TEE_Time on the stack; a = seconds, b = millis. */
cmd_get_ree_time:
    cmp     x20, #TEE_PARAM_TYPE_VALUE_OUTPUT
    b.ne    ret_bad_parameters
    sub     sp, sp, #16
    stp     xzr, xzr, [sp]
    mov     w0, #UTEE_TIME_CAT_REE
    mov     x1, sp
    mov     x8, #TEE_SCN_GET_TIME
    svc     #0
    ldr     w9, [sp]
    ldr     w10, [sp, #4]
    add     sp, sp, #16
    cbnz    w0, ta_return
    str     x9, [x19, #8]
    str     x10, [x19, #16]
    b       ret_success

/* 9: (MEMREF_OUTPUT): fill the buffer with random bytes; return the syscall's result. */
cmd_random:
    cmp     x20, #TEE_PARAM_TYPE_MEMREF_OUTPUT
    b.ne    ret_bad_parameters
    ldr     x0, [x19, #8]
    ldr     x1, [x19, #16]
    mov     x8, #TEE_SCN_CRYP_RANDOM_NUMBER_GENERATE
    svc     #0
    b       ta_return

/* 10: (VALUE_OUTPUT): a = CHECK_ACCESS_RIGHTS(READ|WRITE, &counter, 8): must be private. */
cmd_check_private:
    cmp     x20, #TEE_PARAM_TYPE_VALUE_OUTPUT
    b.ne    ret_bad_parameters
    mov     w0, #(TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_WRITE)
    adr     x1, counter
    mov     x2, #8
    mov     x8, #TEE_SCN_CHECK_ACCESS_RIGHTS
    svc     #0
    mov     w0, w0
    str     x0, [x19, #8]
    str     xzr, [x19, #16]
    b       ret_success

/* 11: (VALUE_OUTPUT): a = relocated pointer from message_ptr, b = adr message. */
cmd_reloc:
    cmp     x20, #TEE_PARAM_TYPE_VALUE_OUTPUT
    b.ne    ret_bad_parameters
    adr     x9, message_ptr
    ldr     x10, [x9]
    adr     x11, message
    str     x10, [x19, #8]
    str     x11, [x19, #16]
    b       ret_success

    .include "ta_runtime.S"

/* Read-only data. */
log_msg:
    .ascii  "echo_ta: hello from S-EL0\n"
log_msg_end:
message:
    .ascii  "echo_ta relocated message"
    .byte   0
__text_end:

    .balign 4096
__data_start:                           // RW segment: per-instance state
counter:
    .quad   0
message_ptr:
    .quad   message                     // R_AARCH64_RELATIVE slot (tas.toml)
