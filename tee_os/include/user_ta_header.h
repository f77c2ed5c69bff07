/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: what a TA image declares about itself - its flags,
 * the 32-byte ta_head found in section .ta_head, and the property table.
 */
#ifndef __TZEMU_USER_TA_HEADER_H
#define __TZEMU_USER_TA_HEADER_H

#include <types.h>
#include <util.h>
#include <tee_api_types.h>

/* Flags; the retired ones are defined as 0 */
#define TA_FLAG_USER_MODE			0
#define TA_FLAG_EXEC_DDR			0
#define TA_FLAG_SINGLE_INSTANCE			BIT32(2)
#define TA_FLAG_MULTI_SESSION			BIT32(3)
#define TA_FLAG_INSTANCE_KEEP_ALIVE		BIT32(4)
#define TA_FLAG_SECURE_DATA_PATH		BIT32(5)	/* may take SDP memrefs */
#define TA_FLAG_REMAP_SUPPORT			0
#define TA_FLAG_CACHE_MAINTENANCE		BIT32(7)
#define TA_FLAG_CONCURRENT			BIT32(8)	/* pseudo-TAs only */
#define TA_FLAG_DEVICE_ENUM			BIT32(9)
#define TA_FLAG_DEVICE_ENUM_SUPP		BIT32(10)
#define TA_FLAG_DONT_CLOSE_HANDLE_ON_CORRUPT_OBJECT	BIT32(11)
#define TA_FLAG_DEVICE_ENUM_TEE_STORAGE_PRIVATE	BIT32(12)
#define TA_FLAG_INSTANCE_KEEP_CRASHED		BIT32(13)

/* Anything outside bits 13..0 is refused by the loader */
#define TA_FLAGS_MASK				GENMASK_32(13, 0)

/* Stack the framework adds on top of the TA's own TA_STACK_SIZE */
#define TA_FRAMEWORK_STACK_SIZE			2048

/*
 * depr_entry == UINT64_MAX marks a current TA; anything else is a legacy
 * entry address.
 */
struct ta_head {
	TEE_UUID uuid;
	uint32_t stack_size;
	uint32_t flags;
	uint64_t depr_entry;
};

enum user_ta_prop_type {
	USER_TA_PROP_TYPE_BOOL,		/* bool */
	USER_TA_PROP_TYPE_U32,		/* uint32_t */
	USER_TA_PROP_TYPE_UUID,		/* TEE_UUID */
	USER_TA_PROP_TYPE_IDENTITY,	/* TEE_Identity */
	USER_TA_PROP_TYPE_STRING,	/* NUL-terminated string */
	USER_TA_PROP_TYPE_BINARY_BLOCK,	/* base64 text, decoded on read */
	USER_TA_PROP_TYPE_U64,		/* uint64_t */
	USER_TA_PROP_TYPE_INVALID,	/* end marker */
};

/* One entry of the TA's ta_props[] table (24 bytes) */
struct user_ta_property {
	const char *name;
	enum user_ta_prop_type type;
	const void *value;
};

#endif /* __TZEMU_USER_TA_HEADER_H */
