/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu TA runtime: one C prototype per system call the secure OS serves
 * (tee_os/syscalls.py).  Every stub in utee_syscalls.S puts its number in
 * x8, leaves the arguments in x0..x7 where the AAPCS64 put them, issues
 * "svc #0" and returns the 32-bit TEE_Result the secure OS left in w0.
 *
 * Pointer arguments are TA virtual addresses; they are passed as uint64_t
 * where a test may want to hand the secure OS an arbitrary (bad) address.
 */
#ifndef TZEMU_UTEE_SYSCALLS_H
#define TZEMU_UTEE_SYSCALLS_H

#include <types.h>
#include <tee_api_types.h>
#include <tee_syscall_numbers.h>

/* tzemu extension (no OP-TEE header defines it): physical address of a VA */
#define TZEMU_SCN_VA_TO_PA	0x7000

void tz_sys_return(TEE_Result ret) __attribute__((noreturn));
void tz_sys_panic(TEE_Result code) __attribute__((noreturn));
TEE_Result tz_sys_log(uint64_t buf, uint64_t len);
TEE_Result tz_sys_get_property(uint64_t prop_set, uint64_t index,
			       uint64_t name, uint64_t name_len,
			       uint64_t buf, uint64_t blen, uint64_t prop_type);
TEE_Result tz_sys_get_property_name_to_index(uint64_t prop_set, uint64_t name,
					     uint64_t name_len, uint64_t index);
TEE_Result tz_sys_open_ta_session(uint64_t dest, uint64_t cancel_req_to,
				  uint64_t params, uint64_t sess,
				  uint64_t ret_orig);
TEE_Result tz_sys_close_ta_session(uint64_t sess);
TEE_Result tz_sys_invoke_ta_command(uint64_t sess, uint64_t cancel_req_to,
				    uint64_t cmd_id, uint64_t params,
				    uint64_t ret_orig);
TEE_Result tz_sys_check_access_rights(uint64_t flags, uint64_t buf,
				      uint64_t len);
TEE_Result tz_sys_get_cancellation_flag(uint64_t cancel);
TEE_Result tz_sys_unmask_cancellation(uint64_t old_mask);
TEE_Result tz_sys_mask_cancellation(uint64_t old_mask);
TEE_Result tz_sys_wait(uint64_t timeout);
TEE_Result tz_sys_get_time(uint64_t cat, uint64_t time);
TEE_Result tz_sys_set_ta_time(uint64_t time);
TEE_Result tz_sys_cryp_random_number_generate(uint64_t buf, uint64_t blen);
TEE_Result tz_sys_cache_operation(uint64_t va, uint64_t len, uint64_t op);
TEE_Result tz_sys_va_to_pa(uint64_t va);

/* Any number, for probing the NOT_SUPPORTED answers */
TEE_Result tz_sys_raw(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t nr);

#endif /* TZEMU_UTEE_SYSCALLS_H */
