/*
 * A test TA for the TA persistent clock: invoke 0 = TEE_SetTAPersistentTime(param0 value
 * {a = seconds, b = millis}), invoke 1 = TEE_GetTime-style GET_TIME syscall with category
 * param0.a, writing {seconds, millis} back into param0 (VALUE_INOUT); invoke 2 = SET_TA_TIME
 * with the TEE_Time pointer taken from param0.a (a bad pointer, for the refusal test).
 * Returns the syscall's result. Entry as OP-TEE enters a TA: x0 = func, x2 = struct utee_params * (= SP), x3 = cmd.
 */
__ta_entry:
    mov     x19, x2
    cmp     x0, #UTEE_ENTRY_FUNC_INVOKE_COMMAND
    b.ne    entry_ok
    sub     sp, sp, #16                 // struct TEE_Time on the stack
    cbz     w3, set_time
    cmp     w3, #2
    b.eq    set_time_raw
    ldr     x0, [x19, #8]               // category = vals[0]
    mov     x1, sp
    str     xzr, [sp]
    mov     x8, #TEE_SCN_GET_TIME
    svc     #0
    ldr     w9, [sp]
    ldr     w10, [sp, #4]
    str     x9, [x19, #8]
    str     x10, [x19, #16]
    b       entry_exit
set_time:
    ldr     x9, [x19, #8]
    ldr     x10, [x19, #16]
    str     w9, [sp]
    str     w10, [sp, #4]
    mov     x0, sp
    mov     x8, #TEE_SCN_SET_TA_TIME
    svc     #0
    b       entry_exit
set_time_raw:
    ldr     x0, [x19, #8]               // the pointer, as given
    mov     x8, #TEE_SCN_SET_TA_TIME
    svc     #0
entry_exit:
    add     sp, sp, #16
    b       ta_exit
entry_ok:
    mov     w0, #TEE_SUCCESS
ta_exit:
    mov     x8, #TEE_SCN_RETURN
    svc     #0
hang:
    b       hang
