/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu TA runtime: what a C TA includes.  The GlobalPlatform types and
 * constants come from the secure world's own header copy (tee_os/include:
 * tee_api_types.h, tee_api_defines.h, utee_types.h, user_ta_header.h,
 * tee_syscall_numbers.h), passed with -I by ta/toolchain.py; this header
 * adds the entry points a TA implements and the few helpers the runtime
 * provides.  It is a minimal runtime of the project's own, not libutee.
 */
#ifndef TZEMU_TEE_TA_API_H
#define TZEMU_TEE_TA_API_H

#include <types.h>
#include <util.h>
#include <tee_api_types.h>
#include <tee_api_defines.h>
#include <utee_types.h>
#include <user_ta_header.h>
#include <utee_syscalls.h>

/* Parameter types of one entry, as the TA sees them */
#define TEE_PARAM_TYPES_NONE	0

/* The entry points a TA provides (Create/Destroy have weak defaults) */
TEE_Result TA_CreateEntryPoint(void);
void TA_DestroyEntryPoint(void);
TEE_Result TA_OpenSessionEntryPoint(uint32_t param_types,
				    TEE_Param params[TEE_NUM_PARAMS],
				    void **sess_ctx);
void TA_CloseSessionEntryPoint(void *sess_ctx);
TEE_Result TA_InvokeCommandEntryPoint(void *sess_ctx, uint32_t cmd_id,
				      uint32_t param_types,
				      TEE_Param params[TEE_NUM_PARAMS]);

/* Kill the TA: the PANIC syscall (the client sees TEE_ERROR_TARGET_DEAD) */
void TEE_Panic(TEE_Result code) __attribute__((noreturn));

/*
 * The runtime's per-instance bookkeeping.  Defined in ta_entry.c with
 * default visibility, so a TA compiled with -fPIE reaches it through the
 * GOT (a .rela.got relocation), as TAs reach libutee's globals.
 */
struct tz_ta_runtime {
	uint32_t entries;		/* TA entries so far */
	uint32_t open_sessions;		/* sessions currently open */
	uint32_t created;		/* TA_CreateEntryPoint ran */
	uint32_t session_id;		/* core's id of the session being served */
	uint32_t initialized;		/* the instance's one-time init ran */
	uint32_t memtag;		/* the core reports memory tagging (libutee's check) */
};
extern struct tz_ta_runtime tz_ta_runtime;
extern const struct ta_head ta_head;

/* Freestanding helpers (gcc may also emit calls to the mem* ones) */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* LOG syscall of a NUL-terminated string */
void tz_log(const char *msg);

#endif /* TZEMU_TEE_TA_API_H */
