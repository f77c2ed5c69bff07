/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: structures exchanged between the secure OS and the
 * TA's user library at entry and in system calls (AArch64 layouts).
 */
#ifndef __TZEMU_UTEE_TYPES_H
#define __TZEMU_UTEE_TYPES_H

#include <types.h>
#include <tee_api_defines.h>

/* x0 at TA entry */
enum utee_entry_func {
	UTEE_ENTRY_FUNC_OPEN_SESSION = 0,
	UTEE_ENTRY_FUNC_CLOSE_SESSION,
	UTEE_ENTRY_FUNC_INVOKE_COMMAND,
	UTEE_ENTRY_FUNC_DUMP_MEMSTATS,
};

/* Clock selector of the GET_TIME syscall */
enum utee_time_category {
	UTEE_TIME_CAT_SYSTEM = 0,
	UTEE_TIME_CAT_TA_PERSISTENT,
	UTEE_TIME_CAT_REE,
};

/*
 * Parameters at TA entry (placed at the top of the TA stack, x2 points at
 * it): packed types, then for parameter n vals[2n] = value.a or buffer VA
 * and vals[2n + 1] = value.b or buffer size.  8 + 4 * 2 * 8 = 72 bytes.
 */
struct utee_params {
	uint64_t types;
	uint64_t vals[TEE_NUM_PARAMS * 2];
};

/* One object attribute: a/b are a value pair or a buffer and its length */
struct utee_attribute {
	uint64_t a;
	uint64_t b;
	uint32_t attribute_id;
};

/* Answer of CRYP_OBJ_GET_INFO / STORAGE_ENUM_NEXT (28 bytes) */
struct utee_object_info {
	uint32_t obj_type;
	uint32_t obj_size;
	uint32_t max_obj_size;
	uint32_t obj_usage;
	uint32_t data_size;
	uint32_t data_pos;
	uint32_t handle_flags;
};

#endif /* __TZEMU_UTEE_TYPES_H */
