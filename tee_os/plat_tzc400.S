// Platform hook of the secure OS: reprogram one TZC-400 region at run time
// (what OP-TEE's plat_set_protmem_range must do on a platform with a TZC-400).
//
// Runs at S-EL1 from trusted SRAM, which is not behind the TZC: while the filter gates are
// closed no DRAM transaction passes, so this code and its stack must not live in DRAM.
// Register offsets follow the TZC-400 TRM (see tee_os/include/drivers/tzc400.h).
//
//   x0 = TZC-400 frame base, x1 = region number (1..8), x2 = base, x3 = top (inclusive),
//   x4 = REGION_ATTRIBUTES value, x5 = REGION_ID_ACCESS value
//   returns x0 = 0
plat_tzc_configure_region:
    // Close every filter gate and wait until no gate reports open.
    str     wzr, [x0, #TZC_GATE_KEEPER]
tzc_wait_closed:
    ldr     w6, [x0, #TZC_GATE_KEEPER]
    tst     w6, #TZC_GATE_KEEPER_STATUS_MASK
    b.ne    tzc_wait_closed
    // x7 = address of this region's register block.
    lsl     x7, x1, #TZC_REGION_SIZE_SHIFT
    add     x7, x7, #TZC_REGION_BASE_LOW_0
    add     x7, x0, x7
    str     wzr, [x7, #TZC_REGION_ATTR_OFF]     // disabled while edited
    str     w2, [x7, #TZC_REGION_BASE_LOW_OFF]
    lsr     x8, x2, #32
    str     w8, [x7, #TZC_REGION_BASE_HIGH_OFF]
    str     w3, [x7, #TZC_REGION_TOP_LOW_OFF]
    lsr     x8, x3, #32
    str     w8, [x7, #TZC_REGION_TOP_HIGH_OFF]
    str     w5, [x7, #TZC_REGION_ID_ACCESS_OFF]
    str     w4, [x7, #TZC_REGION_ATTR_OFF]     // enable on its filters
    // Open the gate of every filter present (BUILD_CONFIG.no_of_filters + 1).
    ldr     w6, [x0, #TZC_BUILD_CONFIG]
    ubfx    w6, w6, #TZC_BUILD_CONFIG_NF_SHIFT, #2
    add     w6, w6, #1
    mov     w8, #1
    lsl     w8, w8, w6
    sub     w8, w8, #1
    str     w8, [x0, #TZC_GATE_KEEPER]
tzc_wait_open:
    ldr     w6, [x0, #TZC_GATE_KEEPER]
    lsr     w6, w6, #TZC_GATE_KEEPER_OS_SHIFT
    and     w6, w6, #0xF
    cmp     w6, w8
    b.ne    tzc_wait_open
    mov     x0, #0
    ret
plat_tzc_return:
    b       plat_tzc_return
