// NS-EL1 call stubs: the conduit the normal world uses to reach EL3.
//
// The Linux-side model puts the SMCCC arguments in x0..x7 and runs `tzemu_ns_smc`; the `smc`
// traps to the emulated EL3 monitor, which leaves the results in x0..x7 and resumes here.
// The emulator stops at the `_done` labels. Assembled at the platform's ns_stub_base.

tzemu_ns_smc:
    smc     #0
tzemu_ns_smc_done:
    b       tzemu_ns_smc_done

// Issue x9 identical SMCs: x10..x17 hold the argument template (benchmarks, soak tests).
tzemu_ns_smc_loop:
    mov     x0, x10
    mov     x1, x11
    mov     x2, x12
    mov     x3, x13
    mov     x4, x14
    mov     x5, x15
    mov     x6, x16
    mov     x7, x17
    smc     #0
    subs    x9, x9, #1
    b.ne    tzemu_ns_smc_loop
tzemu_ns_smc_loop_done:
    b       tzemu_ns_smc_loop_done

// Copy x2 bytes from [x0] to [x1] with real NS-EL1 loads and stores (ns_read / ns_write).
// Eight bytes at a time while both sides are aligned, then bytes.
tzemu_ns_copy:
    cbz     x2, tzemu_ns_copy_done
    orr     x3, x0, x1
    tst     x3, #7
    b.ne    tzemu_ns_copy_bytes
tzemu_ns_copy_words:
    cmp     x2, #8
    b.lo    tzemu_ns_copy_bytes
    ldr     x4, [x0], #8
    str     x4, [x1], #8
    sub     x2, x2, #8
    b       tzemu_ns_copy_words
tzemu_ns_copy_bytes:
    cbz     x2, tzemu_ns_copy_done
    ldrb    w4, [x0], #1
    strb    w4, [x1], #1
    sub     x2, x2, #1
    b       tzemu_ns_copy_bytes
tzemu_ns_copy_done:
    b       tzemu_ns_copy_done

// Install the kernel's translation tables (x0 = TTBR0_EL1, x1 = TTBR1_EL1) and invalidate
// the TLB. Executed from the identity-mapped stub page, so the fetch after the switch maps.
tzemu_ns_set_ttbr:
    msr     ttbr0_el1, x0
    msr     ttbr1_el1, x1
    isb
    tlbi    vmalle1
    dsb     sy
    isb
tzemu_ns_set_ttbr_done:
    b       tzemu_ns_set_ttbr_done
