/*
 * decrypt_ta: AES-128/256 on the CPU (crypto extension), CBC spans, PKCS#7 checks.
 * Included by decrypt_ta.S; register conventions are described there.
 */
/* ------------------------------------------------------------------------------------------ */
/* AES helpers. Scratch x9..x17 and v0..v9; keys v16..v30 and w18 = rounds stay.             */

/* Load a schedule at x9 into v16..v30 (AES-128: v20..v30); w18 = rounds. */
load_keys:
    ldr     w18, [x21, #ST_ROUNDS]
    cmp     w18, #10
    b.eq    load_keys_128
    ld1     {v16.16b, v17.16b, v18.16b, v19.16b}, [x9], #64
load_keys_128:
    ld1     {v20.16b, v21.16b, v22.16b, v23.16b}, [x9], #64
    ld1     {v24.16b, v25.16b, v26.16b, v27.16b}, [x9], #64
    ld1     {v28.16b, v29.16b, v30.16b}, [x9]
    ret

/* v0 = AES-decrypt(v0) with the equivalent inverse cipher. */
dec_block:
    cmp     w18, #10
    b.eq    dec_block_128
    aesd    v0.16b, v16.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v17.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v18.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v19.16b
    aesimc  v0.16b, v0.16b
dec_block_128:
    aesd    v0.16b, v20.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v21.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v22.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v23.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v24.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v25.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v26.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v27.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v28.16b
    aesimc  v0.16b, v0.16b
    aesd    v0.16b, v29.16b
    eor     v0.16b, v0.16b, v30.16b
    ret

/* v0 = AES-encrypt(v0). */
enc_block:
    cmp     w18, #10
    b.eq    enc_block_128
    aese    v0.16b, v16.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v17.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v18.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v19.16b
    aesmc   v0.16b, v0.16b
enc_block_128:
    aese    v0.16b, v20.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v21.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v22.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v23.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v24.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v25.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v26.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v27.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v28.16b
    aesmc   v0.16b, v0.16b
    aese    v0.16b, v29.16b
    eor     v0.16b, v0.16b, v30.16b
    ret

/* CBC-encrypt x2 blocks x0 -> x1 (both advance), chain v31. */
cbc_enc_span:
    str     x30, [sp, #-16]!
cbc_enc_loop:
    cbz     x2, cbc_enc_done
    ldr     q0, [x0], #16
    eor     v0.16b, v0.16b, v31.16b
    bl      enc_block
    mov     v31.16b, v0.16b
    str     q0, [x1], #16
    sub     x2, x2, #1
    b       cbc_enc_loop
cbc_enc_done:
    ldr     x30, [sp], #16
    ret

/* CBC-decrypt x2 blocks x0 -> x1 (both advance), chain v31: 4 independent blocks per
 * iteration (the hot loop: no calls, no syscalls, keys stay in v16..v30). */
cbc_dec_span:
    str     x30, [sp, #-16]!
cbc_dec4:
    cmp     x2, #4
    b.lo    cbc_dec1
    ld1     {v0.16b, v1.16b, v2.16b, v3.16b}, [x0], #64
    mov     v4.16b, v0.16b
    mov     v5.16b, v1.16b
    mov     v6.16b, v2.16b
    mov     v7.16b, v3.16b
    cmp     w18, #10
    b.eq    cbc_dec4_128
    aesd    v0.16b, v16.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v16.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v16.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v16.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v17.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v17.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v17.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v17.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v18.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v18.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v18.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v18.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v19.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v19.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v19.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v19.16b
    aesimc  v3.16b, v3.16b
cbc_dec4_128:
    aesd    v0.16b, v20.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v20.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v20.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v20.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v21.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v21.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v21.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v21.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v22.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v22.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v22.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v22.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v23.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v23.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v23.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v23.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v24.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v24.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v24.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v24.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v25.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v25.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v25.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v25.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v26.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v26.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v26.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v26.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v27.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v27.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v27.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v27.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v28.16b
    aesimc  v0.16b, v0.16b
    aesd    v1.16b, v28.16b
    aesimc  v1.16b, v1.16b
    aesd    v2.16b, v28.16b
    aesimc  v2.16b, v2.16b
    aesd    v3.16b, v28.16b
    aesimc  v3.16b, v3.16b
    aesd    v0.16b, v29.16b
    aesd    v1.16b, v29.16b
    aesd    v2.16b, v29.16b
    aesd    v3.16b, v29.16b
    eor     v0.16b, v0.16b, v30.16b
    eor     v1.16b, v1.16b, v30.16b
    eor     v2.16b, v2.16b, v30.16b
    eor     v3.16b, v3.16b, v30.16b
    eor     v0.16b, v0.16b, v31.16b
    eor     v1.16b, v1.16b, v4.16b
    eor     v2.16b, v2.16b, v5.16b
    eor     v3.16b, v3.16b, v6.16b
    mov     v31.16b, v7.16b
    st1     {v0.16b, v1.16b, v2.16b, v3.16b}, [x1], #64
    sub     x2, x2, #4
    b       cbc_dec4
cbc_dec1:
    cbz     x2, cbc_dec_done
    ldr     q0, [x0], #16
    mov     v4.16b, v0.16b
    bl      dec_block
    eor     v0.16b, v0.16b, v31.16b
    mov     v31.16b, v4.16b
    str     q0, [x1], #16
    sub     x2, x2, #1
    b       cbc_dec1
cbc_dec_done:
    ldr     x30, [sp], #16
    ret

/* Last block of the record [x0, x0 + x1): v9 = ciphertext, v8 = plaintext (previous
 * ciphertext block from memory, or v31 when the block is at x2, the chain's start);
 * w0 = its PKCS#7 length p (1..16), 0 when the padding is invalid. */
last_block_pad:
    str     x30, [sp, #-32]!            // [sp + 16, sp + 32): the plaintext for the check
    add     x9, x0, x1
    sub     x9, x9, #16
    ldr     q0, [x9]
    mov     v9.16b, v0.16b
    mov     v1.16b, v31.16b
    cmp     x9, x2
    b.eq    lbp_prev
    ldur    q1, [x9, #-16]
lbp_prev:
    mov     v2.16b, v1.16b
    bl      dec_block
    eor     v0.16b, v0.16b, v2.16b
    mov     v8.16b, v0.16b
    umov    w0, v0.b[15]
    sub     w9, w0, #1
    cmp     w9, #15
    b.hi    lbp_bad
    str     q0, [sp, #16]
    mov     x9, #32
    sub     x9, x9, x0                  // first padding byte
    add     x10, sp, #0
lbp_check:
    ldrb    w11, [x10, x9]
    cmp     w11, w0
    b.ne    lbp_bad
    add     x9, x9, #1
    cmp     x9, #32
    b.lo    lbp_check
    ldr     x30, [sp], #32
    ret
lbp_bad:
    mov     w0, #0
    ldr     x30, [sp], #32
    ret

/* Store the first x2 (<= 16) bytes of v0 at x1 (advances x1). */
store_partial:
    sub     sp, sp, #16
    str     q0, [sp]
    mov     x9, sp
store_partial_loop:
    cbz     x2, store_partial_done
    ldrb    w10, [x9], #1
    strb    w10, [x1], #1
    sub     x2, x2, #1
    b       store_partial_loop
store_partial_done:
    add     sp, sp, #16
    ret

