/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: GlobalPlatform constants seen by TAs - result codes,
 * origins, logins, parameter types and their packing, memory access flags,
 * property-set pseudo-handles and cache operations.
 */
#ifndef __TZEMU_TEE_API_DEFINES_H
#define __TZEMU_TEE_API_DEFINES_H

#include <types.h>
#include <tee_api_types.h>

/* Result codes (shared numbering with the client API's TEEC_*) */
#define TEE_SUCCESS				0x00000000
#define TEE_ERROR_CORRUPT_OBJECT		0xF0100001
#define TEE_ERROR_CORRUPT_OBJECT_2		0xF0100002
#define TEE_ERROR_STORAGE_NOT_AVAILABLE		0xF0100003
#define TEE_ERROR_STORAGE_NOT_AVAILABLE_2	0xF0100004
#define TEE_ERROR_UNSUPPORTED_VERSION		0xF0100005
#define TEE_ERROR_CIPHERTEXT_INVALID		0xF0100006
#define TEE_ERROR_GENERIC			0xFFFF0000
#define TEE_ERROR_ACCESS_DENIED			0xFFFF0001
#define TEE_ERROR_CANCEL			0xFFFF0002
#define TEE_ERROR_ACCESS_CONFLICT		0xFFFF0003
#define TEE_ERROR_EXCESS_DATA			0xFFFF0004
#define TEE_ERROR_BAD_FORMAT			0xFFFF0005
#define TEE_ERROR_BAD_PARAMETERS		0xFFFF0006
#define TEE_ERROR_BAD_STATE			0xFFFF0007
#define TEE_ERROR_ITEM_NOT_FOUND		0xFFFF0008
#define TEE_ERROR_NOT_IMPLEMENTED		0xFFFF0009
#define TEE_ERROR_NOT_SUPPORTED			0xFFFF000A
#define TEE_ERROR_NO_DATA			0xFFFF000B
#define TEE_ERROR_OUT_OF_MEMORY			0xFFFF000C
#define TEE_ERROR_BUSY				0xFFFF000D
#define TEE_ERROR_COMMUNICATION			0xFFFF000E
#define TEE_ERROR_SECURITY			0xFFFF000F
#define TEE_ERROR_SHORT_BUFFER			0xFFFF0010
#define TEE_ERROR_EXTERNAL_CANCEL		0xFFFF0011
#define TEE_ERROR_TIMEOUT			0xFFFF3001
#define TEE_ERROR_OVERFLOW			0xFFFF300F
#define TEE_ERROR_TARGET_DEAD			0xFFFF3024
#define TEE_ERROR_STORAGE_NO_SPACE		0xFFFF3041
#define TEE_ERROR_MAC_INVALID			0xFFFF3071
#define TEE_ERROR_SIGNATURE_INVALID		0xFFFF3072
#define TEE_ERROR_TIME_NOT_SET			0xFFFF5000
#define TEE_ERROR_TIME_NEEDS_RESET		0xFFFF5001

/* Where an error came from */
#define TEE_ORIGIN_API				0x00000001
#define TEE_ORIGIN_COMMS			0x00000002
#define TEE_ORIGIN_TEE				0x00000003
#define TEE_ORIGIN_TRUSTED_APP			0x00000004

/* Login methods of a client */
#define TEE_LOGIN_PUBLIC			0x00000000
#define TEE_LOGIN_USER				0x00000001
#define TEE_LOGIN_GROUP				0x00000002
#define TEE_LOGIN_APPLICATION			0x00000004
#define TEE_LOGIN_APPLICATION_USER		0x00000005
#define TEE_LOGIN_APPLICATION_GROUP		0x00000006
#define TEE_LOGIN_TRUSTED_APP			0xF0000000	/* TA to TA */

/* Parameter types, four bits each */
#define TEE_PARAM_TYPE_NONE			0
#define TEE_PARAM_TYPE_VALUE_INPUT		1
#define TEE_PARAM_TYPE_VALUE_OUTPUT		2
#define TEE_PARAM_TYPE_VALUE_INOUT		3
#define TEE_PARAM_TYPE_MEMREF_INPUT		5
#define TEE_PARAM_TYPE_MEMREF_OUTPUT		6
#define TEE_PARAM_TYPE_MEMREF_INOUT		7

#define TEE_NUM_PARAMS				4

/* Pack four parameter types into one word (param i in bits 4i+3..4i) */
#define TEE_PARAM_TYPES(t0, t1, t2, t3) \
	((t0) | ((t1) << 4) | ((t2) << 8) | ((t3) << 12))
/* Type of parameter i from a packed word */
#define TEE_PARAM_TYPE_GET(t, i)	((((uint32_t)(t)) >> ((i) * 4)) & 0xF)

/* TEE_CheckMemoryAccessRights() flags; the last two are OP-TEE extensions */
#define TEE_MEMORY_ACCESS_READ			0x00000001
#define TEE_MEMORY_ACCESS_WRITE			0x00000002
#define TEE_MEMORY_ACCESS_ANY_OWNER		0x00000004
#define TEE_MEMORY_ACCESS_NONSECURE		0x10000000
#define TEE_MEMORY_ACCESS_SECURE		0x20000000

#define TEE_HANDLE_NULL				0
#define TEE_TIMEOUT_INFINITE			0xFFFFFFFF

/* Property-set pseudo-handles */
#define TEE_PROPSET_TEE_IMPLEMENTATION	((TEE_PropSetHandle)0xFFFFFFFD)
#define TEE_PROPSET_CURRENT_CLIENT	((TEE_PropSetHandle)0xFFFFFFFE)
#define TEE_PROPSET_CURRENT_TA		((TEE_PropSetHandle)0xFFFFFFFF)

/* Operations of the cache-maintenance syscall */
enum utee_cache_operation {
	TEE_CACHECLEAN = 0,
	TEE_CACHEFLUSH,
	TEE_CACHEINVALIDATE,
};

#endif /* __TZEMU_TEE_API_DEFINES_H */
