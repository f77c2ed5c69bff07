/*
 * pinpad_ta: the trusted-UI TA. It renders a PIN pad (a 3x4 grid of keys) into a memref that
 * is normally a protected,trusted-ui dma-buf, so the pixels only ever exist in protected
 * memory and reach the screen through the display controller, never through the normal world.
 *
 * Command 0 RENDER: (MEMREF_OUTPUT frame, VALUE_INPUT {a = width, b = height},
 *                    VALUE_INPUT {a = highlighted key 0..11, or 12 for none}, NONE)
 *   RGBA, 4 bytes per pixel, stride = width * 4. The frame must hold width*height*4 bytes,
 *   else TEE_ERROR_SHORT_BUFFER with the needed size in the memref size. The access check asks
 *   for ANY_OWNER|WRITE|SECURE: the TA refuses to draw a PIN pad into normal memory.
 * Entered as OP-TEE enters a TA: x0 func, x1 session, x2 utee_params (= SP), x3 command.
 */

__ta_entry:
    mov     x19, x2
    cmp     x0, #UTEE_ENTRY_FUNC_OPEN_SESSION
    b.eq    ret_success
    cmp     x0, #UTEE_ENTRY_FUNC_CLOSE_SESSION
    b.eq    ret_success
    cmp     x0, #UTEE_ENTRY_FUNC_INVOKE_COMMAND
    b.ne    ret_not_supported
    cbnz    x3, ret_bad_parameters
    ldr     x20, [x19]
    and     x20, x20, #0xffff
    movz    x9, #0x0116             // (MEMREF_OUTPUT, VALUE_INPUT, VALUE_INPUT, NONE)
    cmp     x20, x9
    b.ne    ret_bad_parameters
    ldr     x21, [x19, #8]          // frame VA
    ldr     x22, [x19, #16]         // frame size
    ldr     w23, [x19, #24]         // width
    ldr     w24, [x19, #32]         // height
    ldr     w25, [x19, #40]         // highlighted key
    cbz     w23, ret_bad_parameters
    cbz     w24, ret_bad_parameters
    mul     x26, x23, x24
    lsl     x26, x26, #2            // bytes needed
    cmp     x22, x26
    b.lo    short_buffer
    // TEE_CheckMemoryAccessRights(ANY_OWNER|WRITE|SECURE, frame, needed)
    ldr     w0, =TEE_MEMORY_ACCESS_SECURE
    orr     w0, w0, #TEE_MEMORY_ACCESS_ANY_OWNER
    orr     w0, w0, #TEE_MEMORY_ACCESS_WRITE
    mov     x1, x21
    mov     x2, x26
    mov     x8, #TEE_SCN_CHECK_ACCESS_RIGHTS
    svc     #0
    cbnz    w0, ta_return
    // Cell geometry: 3 columns, 4 rows; x27 = cell width, x28 = cell height.
    mov     x9, #3
    udiv    x27, x23, x9
    mov     x9, #4
    udiv    x28, x24, x9
    mov     x10, #0                 // y
row_loop:
    cmp     x10, x24
    b.hs    done
    udiv    x12, x10, x28           // key row
    msub    x13, x12, x28, x10      // y within the cell
    mov     x11, #0                 // x
col_loop:
    cmp     x11, x23
    b.hs    next_row
    udiv    x14, x11, x27           // key column
    msub    x15, x14, x27, x11      // x within the cell
    ldr     w16, =0xff202020        // background: dark grey (A,B,G,R in memory order R,G,B,A)
    cmp     x14, #3
    b.hs    put_pixel
    cmp     x12, #4
    b.hs    put_pixel
    cmp     x15, #4                 // 4-pixel gap around every key
    b.lo    put_pixel
    cmp     x13, #4
    b.lo    put_pixel
    sub     x9, x27, #4
    cmp     x15, x9
    b.hs    put_pixel
    sub     x9, x28, #4
    cmp     x13, x9
    b.hs    put_pixel
    mov     x9, #3
    madd    x17, x12, x9, x14       // key index 0..11
    ldr     w16, =0xffd0d0d0        // key face: light grey
    cmp     x17, x25
    b.ne    put_pixel
    ldr     w16, =0xff40c040        // the highlighted key: green
put_pixel:
    mul     x9, x10, x23
    add     x9, x9, x11
    str     w16, [x21, x9, lsl #2]
    add     x11, x11, #1
    b       col_loop
next_row:
    add     x10, x10, #1
    b       row_loop
done:
    str     x26, [x19, #16]
    b       ret_success

short_buffer:
    str     x26, [x19, #16]
    ldr     w0, =TEE_ERROR_SHORT_BUFFER
    b       ta_return
    .include "ta_runtime.S"
