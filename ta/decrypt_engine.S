/*
 * decrypt_ta: the crypto engine driver (MMIO frame at CRYPTO_ENGINE_VA) and VA_TO_PA.
 * Included by decrypt_ta.S; the ENG_* register offsets are defined there.
 */
/* ------------------------------------------------------------------------------------------ */
/* Crypto engine. */
engine_load_key:                        // KEY0..7 and KEY_BITS, once per command
    mov     x9, #CRYPTO_ENGINE_VA
    mov     x10, #0
engine_key_word:
    add     x11, x21, #ST_KEY
    ldr     w12, [x11, x10]
    str     w12, [x9, x10]
    add     x10, x10, #4
    cmp     x10, #32
    b.lo    engine_key_word
    ldr     w10, [x21, #ST_KEYLEN]
    lsl     w10, w10, #3
    str     w10, [x9, #ENG_KEY_BITS]
    ret

/* One decryption: x0 src PA, x1 dst PA, x2 length, w3 extra CTRL bits, IV from the state.
 * -> w0 = 0 and x1 = OUT_LEN (IV_OUT stored as the new chain), or w0 = ERR_CODE. */
engine_op:
    mov     x9, #CRYPTO_ENGINE_VA
    ldp     w10, w11, [x21, #ST_IV]
    str     w10, [x9, #ENG_IV0]
    str     w11, [x9, #ENG_IV0 + 4]
    ldp     w10, w11, [x21, #ST_IV + 8]
    str     w10, [x9, #ENG_IV0 + 8]
    str     w11, [x9, #ENG_IV0 + 12]
    str     w0, [x9, #ENG_SRC_LO]
    lsr     x10, x0, #32
    str     w10, [x9, #ENG_SRC_HI]
    str     w1, [x9, #ENG_DST_LO]
    lsr     x10, x1, #32
    str     w10, [x9, #ENG_DST_HI]
    str     w2, [x9, #ENG_LEN]
    str     wzr, [x9, #ENG_RECORD]
    orr     w10, w3, #(ENG_CTRL_START | ENG_CTRL_DECRYPT)
    str     w10, [x9, #ENG_CTRL]
    mov     w11, #ENG_POLL_MAX
engine_poll:
    ldr     w10, [x9, #ENG_STATUS]
    tst     w10, #(ENG_STATUS_DONE | ENG_STATUS_ERROR)
    b.ne    engine_finished
    subs    w11, w11, #1
    b.ne    engine_poll
    mov     w0, #0xFF                   // never finished
    ret
engine_finished:
    tbnz    w10, #1, engine_failed
    ldr     w1, [x9, #ENG_OUT_LEN]
    ldr     w10, [x9, #ENG_IV_OUT0]
    ldr     w11, [x9, #ENG_IV_OUT0 + 4]
    stp     w10, w11, [x21, #ST_IV]
    ldr     w10, [x9, #ENG_IV_OUT0 + 8]
    ldr     w11, [x9, #ENG_IV_OUT0 + 12]
    stp     w10, w11, [x21, #ST_IV + 8]
    mov     w0, #0
    ret
engine_failed:
    ldr     w0, [x9, #ENG_ERR_CODE]
    cbnz    w0, engine_failed_ret
    mov     w0, #0xFF
engine_failed_ret:
    ret

/* VA_TO_PA(x0 va) -> x1 pa, x2 physically contiguous bytes from va; a secure OS that leaves
 * x2 at 0 gets the safe assumption "up to the end of the page". Failure: log and return. */
va_to_pa:
    mov     x9, x0
    mov     x2, #0
    mov     x8, #TZEMU_SCN_VA_TO_PA
    svc     #0
    cbnz    w0, ret_va_to_pa_failed
    cbnz    x2, va_to_pa_ret
    and     x9, x9, #0xfff
    mov     x2, #0x1000
    sub     x2, x2, x9
va_to_pa_ret:
    ret

