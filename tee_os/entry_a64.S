// S-EL1 image of the secure OS: cold-boot entry, the vector table the EL3 dispatcher enters,
// and the thin entry stubs of the SMC transport (OP-TEE's thread_optee_smc_a64.S in spirit).
//
// The core of the secure OS is Python. Each `bl gate_*` below calls into it: the emulator runs
// the core when the gate's `ret` is about to execute, with the C calling convention (arguments
// in x0..x7, results in x0..x3). Everything else here is real AArch64 code.
// Assembled at the platform's tee_os_base with constants from tee_os/include (teesmc_opteed.h).

_start:
    adr     x9, boot_stack_top
    mov     sp, x9
    bl      gate_boot_init
    adr     x1, thread_vector_table
    ldr     w0, =TEESMC_OPTEED_RETURN_ENTRY_DONE
    smc     #0
    b       el1_panic

// The entries EL3 branches to, in TF-A's struct optee_vectors order.
    .balign 8
thread_vector_table:
    b       vector_std_smc_entry
    b       vector_fast_smc_entry
    b       vector_cpu_on_entry
    b       vector_cpu_off_entry
    b       vector_cpu_resume_entry
    b       vector_cpu_suspend_entry
    b       vector_fiq_entry
    b       vector_system_off_entry
    b       vector_system_reset_entry

// Fast calls run on the temporary stack, never on a thread.
vector_fast_smc_entry:
    adr     x9, tmp_stack_top
    mov     sp, x9
    bl      gate_entry_fast
    b       return_call_done

// Yielding calls: the core allocates or resumes a trusted thread, runs it until it completes
// or needs the normal world (RPC), and returns the OPTEE_SMC register values.
vector_std_smc_entry:
    adr     x9, tmp_stack_top
    mov     sp, x9
    bl      gate_entry_std
    b       return_call_done

// x0..x3 from the core become the caller's a0..a3 (EL3 copies x1..x4 to NS x0..x3).
return_call_done:
    mov     x4, x3
    mov     x3, x2
    mov     x2, x1
    mov     x1, x0
    ldr     w0, =TEESMC_OPTEED_RETURN_CALL_DONE
    smc     #0
    b       el1_panic

vector_fiq_entry:
    ldr     w0, =TEESMC_OPTEED_RETURN_FIQ_DONE
    smc     #0
    b       el1_panic
vector_cpu_on_entry:
    ldr     w0, =TEESMC_OPTEED_RETURN_ON_DONE
    smc     #0
    b       el1_panic
vector_cpu_off_entry:
    ldr     w0, =TEESMC_OPTEED_RETURN_OFF_DONE
    smc     #0
    b       el1_panic
vector_cpu_resume_entry:
    ldr     w0, =TEESMC_OPTEED_RETURN_RESUME_DONE
    smc     #0
    b       el1_panic
vector_cpu_suspend_entry:
    ldr     w0, =TEESMC_OPTEED_RETURN_SUSPEND_DONE
    smc     #0
    b       el1_panic
vector_system_off_entry:
    ldr     w0, =TEESMC_OPTEED_RETURN_SYSTEM_OFF_DONE
    smc     #0
    b       el1_panic
vector_system_reset_entry:
    ldr     w0, =TEESMC_OPTEED_RETURN_SYSTEM_RESET_DONE
    smc     #0
    b       el1_panic

// FF-A transport (OP-TEE as S-EL1 SPMC, thread_spmc.c): the SPMD enters _start_ffa once; the
// core initialises and waits with FFA_MSG_WAIT. Every later FF-A call resumes the loop right
// after its `smc` with the request in x0..x7; the core's answer (FFA_SUCCESS, FFA_ERROR,
// FFA_MSG_SEND_DIRECT_RESP, ...) leaves with the next `smc`, which also waits for the next call.
_start_ffa:
    adr     x9, boot_stack_top
    mov     sp, x9
    bl      gate_ffa_boot
    ldr     w0, =FFA_MSG_WAIT
    mov     x1, #0
    mov     x2, #0
    mov     x3, #0
    mov     x4, #0
    mov     x5, #0
    mov     x6, #0
    mov     x7, #0
ffa_msg_loop:
    smc     #0
    adr     x9, tmp_stack_top
    mov     sp, x9
    bl      gate_ffa_msg
    b       ffa_msg_loop

el1_panic:
    b       el1_panic

// Native-call gates into the Python core: one instruction each, contiguous, so a single
// range-limited code hook serves them all.
    .balign 16
gate_area_start:
gate_boot_init:
    ret
gate_entry_fast:
    ret
gate_entry_std:
    ret
gate_ffa_boot:
    ret
gate_ffa_msg:
    ret
gate_area_end:
    nop

    .balign 16
tmp_stack:
    .space  1024
tmp_stack_top:
    .space  1024
boot_stack_top:
    nop
