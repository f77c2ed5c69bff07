/*
 * decrypt_ta: commands 0 SET_KEY (FIPS-197 key expansion into the encryption and the
 * equivalent-inverse-cipher decryption schedules) and 1 SET_IV. Included by decrypt_ta.S,
 * whose header gives the entry convention, the RW state layout and the register use.
 */
/* ------------------------------------------------------------------------------------------ */
/* 0 SET_KEY: FIPS-197 key expansion; words are little-endian, so RotWord = ror #8.             */
cmd_set_key:
    cmp     w20, #TYPES_SET_KEY
    b.ne    ret_bad_parameters
    ldp     x22, x23, [x19, #8]         // key buffer, size
    ldr     w24, [x19, #24]             // value.a = key bits
    cmp     x23, #16
    b.eq    sk_size_ok
    cmp     x23, #32
    b.ne    ret_bad_parameters
sk_size_ok:
    lsl     w9, w23, #3
    cmp     w24, w9
    b.ne    ret_bad_parameters
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_READ)
    mov     x1, x22
    mov     x2, x23
    bl      check_access_rights
    cbnz    w0, ta_return

    str     wzr, [x21, #ST_FLAGS]       // no key, no IV while the schedule is rebuilt
    stp     xzr, xzr, [x21, #ST_IV]
    stp     xzr, xzr, [x21, #ST_KEY]
    stp     xzr, xzr, [x21, #ST_KEY + 16]
    ldp     x9, x10, [x22]
    stp     x9, x10, [x21, #ST_KEY]
    cmp     x23, #32
    b.ne    sk_copied
    ldp     x9, x10, [x22, #16]
    stp     x9, x10, [x21, #ST_KEY + 16]
sk_copied:
    lsr     w10, w23, #2                // Nk = 4 or 8
    add     w18, w10, #6                // Nr = Nk + 6
    str     w18, [x21, #ST_ROUNDS]
    str     w23, [x21, #ST_KEYLEN]
    add     x9, x21, #ST_ENC
    ldp     x11, x12, [x21, #ST_KEY]    // w[0..Nk-1] = key
    stp     x11, x12, [x9]
    ldp     x11, x12, [x21, #ST_KEY + 16]
    stp     x11, x12, [x9, #16]
    add     w11, w18, #1
    lsl     w11, w11, #2                // total words 4 (Nr + 1)
    mov     w12, w10                    // i
    sub     w17, w10, #1                // Nk - 1 (i mod Nk mask)
    mov     w13, #1                     // rcon
    movi    v5.2d, #0                   // the zero round key of the SubWord trick
sk_loop:
    cmp     w12, w11
    b.hs    sk_expanded
    add     x15, x9, x12, lsl #2        // &w[i]
    ldur    w14, [x15, #-4]             // temp = w[i - 1]
    and     w16, w12, w17
    cbz     w16, sk_rot_sub
    cmp     w10, #8
    b.ne    sk_xor
    cmp     w16, #4
    b.ne    sk_xor
    dup     v0.4s, w14                  // Nk = 8, i mod 8 = 4: temp = SubWord(temp)
    aese    v0.16b, v5.16b
    umov    w14, v0.s[0]
    b       sk_xor
sk_rot_sub:                             // temp = SubWord(RotWord(temp)) ^ rcon
    dup     v0.4s, w14                  // equal columns: ShiftRows is the identity
    aese    v0.16b, v5.16b
    umov    w14, v0.s[0]
    ror     w14, w14, #8
    eor     w14, w14, w13
    lsl     w13, w13, #1                // rcon = xtime(rcon)
    mov     w16, #0x11b
    eor     w16, w13, w16
    tst     w13, #0x100
    csel    w13, w16, w13, ne
sk_xor:
    sub     x16, x15, x10, lsl #2
    ldr     w16, [x16]                  // w[i - Nk]
    eor     w14, w14, w16
    str     w14, [x15]
    add     w12, w12, #1
    b       sk_loop
sk_expanded:                            // dec[0] = enc[Nr], dec[i] = imc(enc[Nr - i]), dec[Nr] = enc[0]
    add     x10, x21, #ST_DEC
    add     x12, x9, x18, lsl #4
    ldr     q0, [x12]
    str     q0, [x10], #16
    sub     w13, w18, #1
sk_imc:
    sub     x12, x12, #16
    ldr     q0, [x12]
    aesimc  v0.16b, v0.16b
    str     q0, [x10], #16
    subs    w13, w13, #1
    b.ne    sk_imc
    ldr     q0, [x9]
    str     q0, [x10]
    mov     w9, #1
    str     w9, [x21, #ST_FLAGS]        // key set, no IV yet
    b       ret_success

/* 1 SET_IV */
cmd_set_iv:
    cmp     w20, #TEE_PARAM_TYPE_MEMREF_INPUT
    b.ne    ret_bad_parameters
    ldp     x22, x23, [x19, #8]
    cmp     x23, #16
    b.ne    ret_bad_parameters
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_READ)
    mov     x1, x22
    mov     x2, x23
    bl      check_access_rights
    cbnz    w0, ta_return
    ldp     x9, x10, [x22]
    stp     x9, x10, [x21, #ST_IV]
    ldr     w9, [x21, #ST_FLAGS]
    orr     w9, w9, #2
    str     w9, [x21, #ST_FLAGS]
    b       ret_success
