/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu TA runtime: the system-call stubs.  Calling convention of the
 * secure OS (tee_os/syscalls.py): number in x8, arguments in x0..x7,
 * "svc #0", 32-bit TEE_Result in w0, every other register preserved.
 * The C prototypes (include/utee_syscalls.h) already leave the arguments
 * in x0..x7, so each stub is three instructions.
 */
#include <tee_syscall_numbers.h>

#define TZEMU_SCN_VA_TO_PA	0x7000

	.text

.macro	SYSCALL name, nr
	.global	\name
	.type	\name, %function
	.balign	4
\name:
	mov	x8, #(\nr)
	svc	#0
	ret
	.size	\name, . - \name
.endm

SYSCALL	tz_sys_return,			TEE_SCN_RETURN
SYSCALL	tz_sys_log,			TEE_SCN_LOG
SYSCALL	tz_sys_panic,			TEE_SCN_PANIC
SYSCALL	tz_sys_get_property,		TEE_SCN_GET_PROPERTY
SYSCALL	tz_sys_get_property_name_to_index, TEE_SCN_GET_PROPERTY_NAME_TO_INDEX
SYSCALL	tz_sys_open_ta_session,		TEE_SCN_OPEN_TA_SESSION
SYSCALL	tz_sys_close_ta_session,	TEE_SCN_CLOSE_TA_SESSION
SYSCALL	tz_sys_invoke_ta_command,	TEE_SCN_INVOKE_TA_COMMAND
SYSCALL	tz_sys_check_access_rights,	TEE_SCN_CHECK_ACCESS_RIGHTS
SYSCALL	tz_sys_get_cancellation_flag,	TEE_SCN_GET_CANCELLATION_FLAG
SYSCALL	tz_sys_unmask_cancellation,	TEE_SCN_UNMASK_CANCELLATION
SYSCALL	tz_sys_mask_cancellation,	TEE_SCN_MASK_CANCELLATION
SYSCALL	tz_sys_wait,			TEE_SCN_WAIT
SYSCALL	tz_sys_get_time,		TEE_SCN_GET_TIME
SYSCALL	tz_sys_set_ta_time,		TEE_SCN_SET_TA_TIME
SYSCALL	tz_sys_cryp_random_number_generate, TEE_SCN_CRYP_RANDOM_NUMBER_GENERATE
SYSCALL	tz_sys_cache_operation,		TEE_SCN_CACHE_OPERATION
SYSCALL	tz_sys_va_to_pa,		TZEMU_SCN_VA_TO_PA

/* tz_sys_raw(a0, a1, a2, a3, nr): any syscall number, four arguments */
	.global	tz_sys_raw
	.type	tz_sys_raw, %function
	.balign	4
tz_sys_raw:
	mov	x8, x4
	mov	x4, xzr
	svc	#0
	ret
	.size	tz_sys_raw, . - tz_sys_raw

	.section .note.GNU-stack, "", %progbits
