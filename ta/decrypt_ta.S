/*
 * decrypt_ta: AES-128/256-CBC of GStreamer aesenc/aesdec streams (gstreamer_aes.md) at S-EL0.
 * UUID 5c2d1e77-9f3a-4b61-8e0d-2a7c4f9b1d03, flags SECURE_DATA_PATH | SINGLE_INSTANCE |
 * MULTI_SESSION (0x2C): one instance keeps the key and the CBC chain across invokes.
 *
 * Commands (types: IN = MEMREF_INPUT, OUT = MEMREF_OUTPUT, VI/VO = VALUE_INPUT/OUTPUT):
 *  0 SET_KEY  (IN key, VI {a = 128|256}): software key expansion (SubWord = `aese` with a zero
 *             round key on a word broadcast to all columns), decryption schedule = aesimc of the
 *             middle round keys; both schedules kept. Forgets the IV.
 *  1 SET_IV   (IN 16 bytes): the CBC chaining value.
 *  2 DECRYPT_RECORDS (IN ct, OUT pt, VI {a = record bytes (x16) or 0 = whole buffer,
 *             b = bit0 per-record PKCS#7 | bit1 final PKCS#7}, VO {a = bytes written}): one
 *             continuing CBC chain on the CPU (aesd/aesimc, 4 blocks per iteration).
 *  3 DECRYPT_ENGINE: same contract, data moved and decrypted by the crypto engine (MMIO frame
 *             at CRYPTO_ENGINE_VA, physical addresses from syscall 0x7000 VA_TO_PA): one engine
 *             operation per record, split where source or destination is physically
 *             discontiguous; a block cut by such a boundary is decrypted on the CPU. VA_TO_PA is
 *             called before the frame is touched, so a secure OS that gives this TA no engine
 *             makes the command fail with its error (and a LOG line) instead of a fault.
 *  4 ENCRYPT_RECORDS (IN pt, OUT ct, VI {a = record bytes or 0, b = bit0 per-record PKCS#7 |
 *             bit1 final PKCS#7}, VO {a = bytes written}): aese/aesmc, the aesenc byte format.
 * Errors: BAD_PARAMETERS (types, sizes, flags, lengths), BAD_STATE (no key or no IV),
 * ACCESS_DENIED (access checks), BAD_FORMAT (padding; LOG "decrypt: bad PKCS#7 padding"),
 * SHORT_BUFFER (VO a and the output memref size = bytes needed), GENERIC (engine failure; LOG
 * "decrypt: crypto engine error"), VA_TO_PA's own error (LOG "decrypt: VA_TO_PA failed").
 * Empty input: 0 bytes written (decrypt); ENCRYPT with flag 2 still emits one padding block.
 * The padding of every record is checked (last block decrypted on its own, CBC is random
 * access) before anything is written, so BAD_FORMAT and SHORT_BUFFER change no state.
 *
 * Registers: x19 params, x20 types/scratch, x21 RW state, x22.. x27 parameters, x28 engine?,
 * w18 rounds; v16..v30 round keys (AES-128 in v20..v30), v31 CBC chain. Syscalls preserve all
 * but x0 (0x7000 also returns x1 = PA, x2 = contiguous bytes or 0 = "to the end of the page");
 * the engine path reloads keys and chain after syscalls anyway (SIMD state need not survive).
 * Constants: TEE_* from ta/build.py; CRYPTO_ENGINE_VA, TZEMU_SCN_VA_TO_PA from ta/build.py too.
 */

    .equ    CMD_SET_KEY, 0
    .equ    CMD_SET_IV, 1
    .equ    CMD_DECRYPT, 2
    .equ    CMD_DECRYPT_ENGINE, 3
    .equ    CMD_ENCRYPT, 4
    .equ    TYPES_SET_KEY, TEE_PARAM_TYPE_MEMREF_INPUT | (TEE_PARAM_TYPE_VALUE_INPUT << 4)
    .equ    TYPES_CRYPT, 0x2165        // MEMREF_INPUT, MEMREF_OUTPUT, VALUE_INPUT, VALUE_OUTPUT

/* RW state (offsets from `state`). */
    .equ    ST_FLAGS, 0                 // bit0 key set, bit1 IV set
    .equ    ST_ROUNDS, 4
    .equ    ST_KEYLEN, 8
    .equ    ST_IV, 16
    .equ    ST_KEY, 32
    .equ    ST_ENC, 64                  // 15 round keys
    .equ    ST_DEC, 304                 // 15 round keys

/* Crypto engine register frame (emu/devices/crypto_engine.py). */
    .equ    ENG_KEY0, 0x00
    .equ    ENG_KEY_BITS, 0x20
    .equ    ENG_IV0, 0x30
    .equ    ENG_SRC_LO, 0x40
    .equ    ENG_SRC_HI, 0x44
    .equ    ENG_DST_LO, 0x48
    .equ    ENG_DST_HI, 0x4C
    .equ    ENG_LEN, 0x50
    .equ    ENG_RECORD, 0x54
    .equ    ENG_CTRL, 0x58
    .equ    ENG_STATUS, 0x5C
    .equ    ENG_ERR_CODE, 0x60
    .equ    ENG_OUT_LEN, 0x64
    .equ    ENG_IV_OUT0, 0x70
    .equ    ENG_CTRL_START, 1
    .equ    ENG_CTRL_DECRYPT, 2
    .equ    ENG_CTRL_PER_RECORD_PADDING, 4
    .equ    ENG_STATUS_DONE, 1
    .equ    ENG_STATUS_ERROR, 2
    .equ    ENG_ERR_PADDING, 1
    .equ    ENG_MAX_LEN, 0x40000000     // pieces stay far below the 32-bit LEN register
    .equ    ENG_POLL_MAX, 0x100000

/* ------------------------------------------------------------------------------------------ */
__ta_entry:
    mov     x19, x2
    ldr     w20, [x19]
    adr     x21, state
    cmp     x0, #UTEE_ENTRY_FUNC_OPEN_SESSION
    b.eq    ret_success
    cmp     x0, #UTEE_ENTRY_FUNC_CLOSE_SESSION
    b.eq    ret_success
    cmp     x0, #UTEE_ENTRY_FUNC_INVOKE_COMMAND
    b.ne    ret_not_supported
    mov     x28, #0
    cmp     x3, #CMD_SET_KEY
    b.eq    cmd_set_key
    cmp     x3, #CMD_SET_IV
    b.eq    cmd_set_iv
    cmp     x3, #CMD_DECRYPT
    b.eq    cmd_decrypt
    cmp     x3, #CMD_DECRYPT_ENGINE
    b.eq    cmd_decrypt_engine
    cmp     x3, #CMD_ENCRYPT
    b.eq    cmd_encrypt
    b       ret_not_supported

/* ------------------------------------------------------------------------------------------ */
/* 0 SET_KEY and 1 SET_IV live in their own file. */
    .include "decrypt_keys.S"

/* ------------------------------------------------------------------------------------------ */
/* Shared parameter checks of commands 2, 3 and 4. */
crypt_params:                           // -> x22 in, x23 len, x24 out, x25 out size, w26, w27
    mov     w9, #TYPES_CRYPT
    cmp     w20, w9
    b.ne    ret_bad_parameters
    ldr     w9, [x21, #ST_FLAGS]
    cmp     w9, #3
    b.ne    ret_bad_state
    ldp     x22, x23, [x19, #8]
    ldp     x24, x25, [x19, #24]
    ldr     w26, [x19, #40]
    ldr     w27, [x19, #48]
    cmp     w27, #2                     // flags 0, 1 or 2 (both bits together make no sense)
    b.hi    ret_bad_parameters
    ret

crypt_access:                           // input READ, output WRITE, both ANY_OWNER
    str     x30, [sp, #-16]!
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_READ)
    mov     x1, x22
    mov     x2, x23
    bl      check_access_rights
    cbnz    w0, crypt_access_ret
    mov     w0, #(TEE_MEMORY_ACCESS_ANY_OWNER | TEE_MEMORY_ACCESS_WRITE)
    mov     x1, x24
    mov     x2, x25
    bl      check_access_rights
crypt_access_ret:
    ldr     x30, [sp], #16
    ret

/* 2 / 3 DECRYPT_RECORDS / DECRYPT_ENGINE */
cmd_decrypt_engine:
    mov     x28, #1
cmd_decrypt:
    bl      crypt_params
    tst     x23, #15
    b.ne    ret_bad_parameters
    tst     w26, #15
    b.ne    ret_bad_parameters
    cmp     w27, #1                     // records matter only with per-record padding
    csel    x26, x26, x23, eq
    cbnz    x26, dec_rec_ok
    mov     x26, x23                    // a = 0: the whole buffer is one record
dec_rec_ok:
    bl      crypt_access
    cbnz    w0, ta_return
    adr     x9, state + ST_DEC
    bl      load_keys
    ldr     q31, [x21, #ST_IV]

    mov     x14, x23                    // pre-pass: needed = len - sum of paddings
    cbz     w27, dec_scanned
    mov     x15, x22
    mov     x16, x23
dec_scan:
    cbz     x16, dec_scanned
    cmp     x16, x26
    csel    x17, x16, x26, lo
    mov     x0, x15
    mov     x1, x17
    mov     x2, x22
    bl      last_block_pad
    cbz     w0, ret_bad_padding
    sub     x14, x14, x0
    add     x15, x15, x17
    sub     x16, x16, x17
    b       dec_scan
dec_scanned:
    cmp     x25, x14
    b.lo    ret_short_needed            // x14 = bytes needed
    add     x25, x24, x25               // x25 = end of the output buffer
    cbz     x28, dec_record
    cbz     x23, dec_record
    mov     x0, x22                     // probe: a secure OS that gives this TA no engine
    bl      va_to_pa                    // refuses VA_TO_PA, before the frame is touched
    bl      engine_load_key

dec_record:                             // x22 in, x23 bytes left, x24 out
    cbz     x23, dec_done
    cmp     x23, x26
    csel    x29, x23, x26, lo           // n = this record's length
    sub     x23, x23, x29
    cbz     x28, dec_record_keys
    adr     x9, state + ST_DEC          // the engine path made syscalls: reload keys, chain
    bl      load_keys
    ldr     q31, [x21, #ST_IV]
dec_record_keys:
    mov     x20, x29                    // out bytes of this record
    cbz     w27, dec_record_room
    mov     x0, x22
    mov     x1, x29
    mov     x2, x22
    bl      last_block_pad              // v8 = last plaintext block, v9 = its ciphertext
    cbz     w0, ret_bad_padding         // (only if the input changed since the pre-pass)
    sub     x20, x29, x0
dec_record_room:
    add     x9, x24, x20
    cmp     x9, x25
    b.hi    ret_bad_padding             // input changed since the pre-pass: never overflow
    cbnz    x28, eng_piece
    mov     x0, x22                     // CPU: whole blocks, then the unpadded last block
    mov     x1, x24
    lsr     x2, x29, #4
    cbz     w27, dec_cpu_span
    sub     x2, x2, #1
dec_cpu_span:
    bl      cbc_dec_span
    mov     x22, x0
    mov     x24, x1
    cbz     w27, dec_record
    mov     v0.16b, v8.16b
    sub     x2, x20, x29
    add     x2, x2, #16                 // 16 - p
    bl      store_partial
    mov     x24, x1
    add     x22, x22, #16
    mov     v31.16b, v9.16b
    b       dec_record

/* Engine path of one record: x29 input bytes left in it, x20 output bytes left. */
eng_piece:
    cbz     x29, dec_record
    mov     x0, x22
    bl      va_to_pa
    mov     x10, x1                     // source PA
    mov     x11, #ENG_MAX_LEN
    cmp     x2, x11
    csel    x11, x2, x11, lo            // contiguous source bytes
    mov     x12, #0
    mov     x13, #-1
    cbz     x20, eng_have_pa
    mov     x0, x24
    bl      va_to_pa
    mov     x12, x1                     // destination PA
    mov     x13, x2                     // contiguous destination bytes
eng_have_pa:
    cmp     x11, x29                    // whole rest of the record in one operation?
    b.lo    eng_split
    cmp     x13, x20
    b.lo    eng_split
    mov     x0, x10
    mov     x1, x12
    mov     x2, x29
    mov     w3, #0
    cbz     w27, eng_whole
    mov     w3, #ENG_CTRL_PER_RECORD_PADDING
eng_whole:
    bl      engine_op
    cbnz    w0, ret_engine_error
    cmp     x1, x20
    b.ne    ret_bad_padding
    add     x22, x22, x29
    add     x24, x24, x20
    b       dec_record
eng_split:                              // L = min(src run, dst run, left - last block) & ~15
    mov     x9, x29
    cbz     w27, eng_split_min
    sub     x9, x29, #16
eng_split_min:
    cmp     x11, x9
    csel    x9, x11, x9, lo
    cmp     x13, x9
    csel    x9, x13, x9, lo
    and     x9, x9, #~15
    cbz     x9, eng_cpu_block
    mov     x17, x9
    mov     x0, x10
    mov     x1, x12
    mov     x2, x9
    mov     w3, #0
    bl      engine_op
    cbnz    w0, ret_engine_error
    cmp     x1, x17
    b.ne    ret_engine_error
    add     x22, x22, x17
    add     x24, x24, x17
    sub     x29, x29, x17
    sub     x20, x20, x17
    b       eng_piece
eng_cpu_block:                          // a block split by a physical discontinuity
    adr     x9, state + ST_DEC
    bl      load_keys
    ldr     q31, [x21, #ST_IV]
    cbz     w27, eng_cpu_full
    cmp     x29, #16
    b.ne    eng_cpu_full
    mov     x0, x22                     // the padded last block: decrypt, store 16 - p bytes
    mov     x1, #16
    mov     x2, x22
    bl      last_block_pad
    cbz     w0, ret_bad_padding
    mov     x9, #16
    sub     x9, x9, x0
    cmp     x9, x20
    b.ne    ret_bad_padding
    mov     v0.16b, v8.16b
    mov     x1, x24
    mov     x2, x20
    bl      store_partial
    str     q9, [x21, #ST_IV]
    add     x22, x22, #16
    add     x24, x24, x20
    mov     x29, #0
    b       dec_record
eng_cpu_full:
    mov     x0, x22
    mov     x1, x24
    mov     x2, #1
    bl      cbc_dec_span
    str     q31, [x21, #ST_IV]
    mov     x22, x0
    mov     x24, x1
    sub     x29, x29, #16
    sub     x20, x20, #16
    b       eng_piece

dec_done:
    cbnz    x28, crypt_written          // the engine path keeps the chain in memory
    str     q31, [x21, #ST_IV]
crypt_written:                          // out size and value.a = bytes written
    ldr     x9, [x19, #24]
    sub     x9, x24, x9
    str     x9, [x19, #32]
    str     x9, [x19, #56]
    str     xzr, [x19, #64]
    b       ret_success

/* ------------------------------------------------------------------------------------------ */
/* 4 ENCRYPT_RECORDS */
cmd_encrypt:
    bl      crypt_params
    cmp     w27, #1
    csel    x26, x26, x23, eq
    cbnz    x26, enc_rec_ok
    mov     x26, x23
enc_rec_ok:
    mov     x14, x23                    // needed
    cbz     w27, enc_need_plain
    cmp     w27, #2
    b.eq    enc_need_final
    cbz     x23, enc_needed
    udiv    x9, x23, x26                // full records
    msub    x10, x9, x26, x23           // remainder
    and     x11, x26, #~15
    add     x11, x11, #16
    mul     x14, x9, x11
    cbz     x10, enc_needed
    and     x11, x10, #~15
    add     x11, x11, #16
    add     x14, x14, x11
    b       enc_needed
enc_need_plain:
    tst     x23, #15
    b.ne    ret_bad_parameters
    b       enc_needed
enc_need_final:
    and     x14, x23, #~15
    add     x14, x14, #16
enc_needed:
    bl      crypt_access
    cbnz    w0, ta_return
    cmp     x25, x14
    b.lo    ret_short_needed
    adr     x9, state + ST_ENC
    bl      load_keys
    ldr     q31, [x21, #ST_IV]
    cbnz    w27, enc_records
    mov     x0, x22                     // no padding: one span
    mov     x1, x24
    lsr     x2, x23, #4
    bl      cbc_enc_span
    mov     x24, x1
    b       enc_done
enc_records:
    cmp     w27, #2
    b.ne    enc_record
    mov     x0, x22                     // flag 2: the whole buffer is one padded record
    mov     x1, x24                     // (an empty one gives one padding block)
    lsr     x2, x23, #4
    bl      cbc_enc_span
    mov     x22, x0
    mov     x24, x1
    and     x2, x23, #15
    bl      enc_pad_block
    b       enc_done
enc_record:                             // flag 1: records of x26 bytes, each padded
    cbz     x23, enc_done
    cmp     x23, x26
    csel    x29, x23, x26, lo           // n
    sub     x23, x23, x29
    mov     x0, x22
    mov     x1, x24
    lsr     x2, x29, #4
    bl      cbc_enc_span
    mov     x22, x0
    mov     x24, x1
    and     x2, x29, #15
    bl      enc_pad_block
    b       enc_record
enc_done:
    str     q31, [x21, #ST_IV]
    b       crypt_written

/* Encrypt x2 (< 16) tail bytes from x22 + PKCS#7 into one block at x24; advances both. */
enc_pad_block:
    str     x30, [sp, #-32]!
    mov     w9, #16
    sub     w9, w9, w2
    dup     v0.16b, w9
    str     q0, [sp, #16]
    add     x10, sp, #16
enc_pad_copy:
    cbz     x2, enc_pad_copied
    ldrb    w11, [x22], #1
    strb    w11, [x10], #1
    sub     x2, x2, #1
    b       enc_pad_copy
enc_pad_copied:
    ldr     q0, [sp, #16]
    eor     v0.16b, v0.16b, v31.16b
    bl      enc_block
    mov     v31.16b, v0.16b
    str     q0, [x24], #16
    ldr     x30, [sp], #32
    ret

/* ------------------------------------------------------------------------------------------ */
/* The CPU AES path and the crypto-engine driver live in their own files. */
    .include "decrypt_aes.S"
    .include "decrypt_engine.S"

/* ------------------------------------------------------------------------------------------ */
/* LOG(x0 text, x1 end). */
log_line:
    sub     x1, x1, x0
    mov     x8, #TEE_SCN_LOG
    svc     #0
    ret

/* ------------------------------------------------------------------------------------------ */
/* Exits. */
ret_short_needed:                       // x14 = bytes needed
    str     x14, [x19, #32]
    str     x14, [x19, #56]
    str     xzr, [x19, #64]
    mov     w0, #TEE_ERROR_SHORT_BUFFER
    b       ta_return
ret_bad_padding:
    adr     x0, msg_bad_padding
    adr     x1, msg_bad_padding_end
    bl      log_line
    mov     w0, #TEE_ERROR_BAD_FORMAT
    b       ta_return
ret_engine_error:
    cmp     w0, #ENG_ERR_PADDING
    b.eq    ret_bad_padding
    adr     x0, msg_engine
    adr     x1, msg_engine_end
    bl      log_line
    mov     w0, #TEE_ERROR_GENERIC
    b       ta_return
ret_va_to_pa_failed:
    mov     w20, w0
    adr     x0, msg_va_to_pa
    adr     x1, msg_va_to_pa_end
    bl      log_line
    mov     w0, w20
    b       ta_return
    .include "ta_runtime.S"

/* Read-only data. */
msg_bad_padding:
    .ascii  "decrypt: bad PKCS#7 padding\n"
msg_bad_padding_end:
msg_engine:
    .ascii  "decrypt: crypto engine error\n"
msg_engine_end:
msg_va_to_pa:
    .ascii  "decrypt: VA_TO_PA failed\n"
msg_va_to_pa_end:
__text_end:

    .balign 4096
__data_start:                           // RW segment: the instance's key and chain
state:
    .space  544
