/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: the OPTEE_MSG message format as the secure OS parses
 * it.  Same wire layout as the normal world's copy: a 32-byte
 * struct optee_msg_arg header followed by num_params 32-byte parameters.
 */
#ifndef __TZEMU_OPTEE_MSG_H
#define __TZEMU_OPTEE_MSG_H

#include <types.h>
#include <util.h>

/* Parameter types (attr bits 7..0) */
#define OPTEE_MSG_ATTR_TYPE_NONE		U(0x0)
#define OPTEE_MSG_ATTR_TYPE_VALUE_INPUT		U(0x1)
#define OPTEE_MSG_ATTR_TYPE_VALUE_OUTPUT	U(0x2)
#define OPTEE_MSG_ATTR_TYPE_VALUE_INOUT		U(0x3)
#define OPTEE_MSG_ATTR_TYPE_RMEM_INPUT		U(0x5)
#define OPTEE_MSG_ATTR_TYPE_RMEM_OUTPUT		U(0x6)
#define OPTEE_MSG_ATTR_TYPE_RMEM_INOUT		U(0x7)
#define OPTEE_MSG_ATTR_TYPE_FMEM_INPUT		OPTEE_MSG_ATTR_TYPE_RMEM_INPUT
#define OPTEE_MSG_ATTR_TYPE_FMEM_OUTPUT		OPTEE_MSG_ATTR_TYPE_RMEM_OUTPUT
#define OPTEE_MSG_ATTR_TYPE_FMEM_INOUT		OPTEE_MSG_ATTR_TYPE_RMEM_INOUT
#define OPTEE_MSG_ATTR_TYPE_TMEM_INPUT		U(0x9)
#define OPTEE_MSG_ATTR_TYPE_TMEM_OUTPUT		U(0xa)
#define OPTEE_MSG_ATTR_TYPE_TMEM_INOUT		U(0xb)

#define OPTEE_MSG_ATTR_TYPE_MASK		GENMASK_32(7, 0)
#define OPTEE_MSG_ATTR_META			BIT(8)
#define OPTEE_MSG_ATTR_NONCONTIG		BIT(9)
#define OPTEE_MSG_ATTR_CACHE_SHIFT		U(16)
#define OPTEE_MSG_ATTR_CACHE_MASK		GENMASK_32(2, 0)
#define OPTEE_MSG_ATTR_CACHE_PREDEFINED		U(0)

#define OPTEE_MSG_LOGIN_PUBLIC			U(0x00000000)
#define OPTEE_MSG_LOGIN_USER			U(0x00000001)
#define OPTEE_MSG_LOGIN_GROUP			U(0x00000002)
#define OPTEE_MSG_LOGIN_APPLICATION		U(0x00000004)
#define OPTEE_MSG_LOGIN_APPLICATION_USER	U(0x00000005)
#define OPTEE_MSG_LOGIN_APPLICATION_GROUP	U(0x00000006)

#define OPTEE_MSG_NONCONTIG_PAGE_SIZE		U(4096)
#define OPTEE_MSG_FMEM_INVALID_GLOBAL_ID	0xffffffffffffffffUL

struct optee_msg_param_tmem {
	uint64_t buf_ptr;	/* physical address */
	uint64_t size;
	uint64_t shm_ref;	/* normal-world cookie */
};

struct optee_msg_param_rmem {
	uint64_t offs;
	uint64_t size;
	uint64_t shm_ref;	/* cookie of a registered shm */
};

struct optee_msg_param_fmem {
	uint32_t offs_low;	/* offset bits 31..0 */
	uint16_t offs_high;	/* offset bits 47..32 */
	uint16_t internal_offs;	/* offset inside the first page */
	uint64_t size;
	uint64_t global_id;	/* FF-A handle */
};

struct optee_msg_param_value {
	uint64_t a;
	uint64_t b;
	uint64_t c;
};

struct optee_msg_param {
	uint64_t attr;
	union {
		struct optee_msg_param_tmem tmem;
		struct optee_msg_param_rmem rmem;
		struct optee_msg_param_fmem fmem;
		struct optee_msg_param_value value;
		uint8_t octets[24];
	} u;
};

struct optee_msg_arg {
	uint32_t cmd;
	uint32_t func;
	uint32_t session;
	uint32_t cancel_id;
	uint32_t pad;
	uint32_t ret;
	uint32_t ret_origin;
	uint32_t num_params;
	struct optee_msg_param params[];
};

#define OPTEE_MSG_GET_ARG_SIZE(num_params)			\
	(sizeof(struct optee_msg_arg) +				\
	 sizeof(struct optee_msg_param) * (num_params))

/* Identification answers (UUIDs as four big-endian words) */
#define OPTEE_MSG_UID_0			U(0x384fb3e0)
#define OPTEE_MSG_UID_1			U(0xe7f811e3)
#define OPTEE_MSG_UID_2			U(0xaf630002)
#define OPTEE_MSG_UID_3			U(0xa5d5c51b)
#define OPTEE_MSG_FUNCID_CALLS_UID	U(0xFF01)

#define OPTEE_MSG_REVISION_MAJOR	U(2)
#define OPTEE_MSG_REVISION_MINOR	U(0)
#define OPTEE_MSG_FUNCID_CALLS_REVISION	U(0xFF03)

#define OPTEE_MSG_OS_OPTEE_UUID_0	U(0x486178e0)
#define OPTEE_MSG_OS_OPTEE_UUID_1	U(0xe7f811e3)
#define OPTEE_MSG_OS_OPTEE_UUID_2	U(0xbc5e0002)
#define OPTEE_MSG_OS_OPTEE_UUID_3	U(0xa5d5c51b)
#define OPTEE_MSG_FUNCID_GET_OS_UUID	U(0x0000)

#define OPTEE_MSG_FUNCID_GET_OS_REVISION	U(0x0001)

#define OPTEE_MSG_IMAGE_LOAD_UUID_0	U(0xa3fbeab1)
#define OPTEE_MSG_IMAGE_LOAD_UUID_1	U(0x1246315d)
#define OPTEE_MSG_IMAGE_LOAD_UUID_2	U(0xc7c406b9)
#define OPTEE_MSG_IMAGE_LOAD_UUID_3	U(0xc03cbea4)

#define OPTEE_MSG_FUNCID_CALL_WITH_ARG	U(0x0004)

/* Commands */
#define OPTEE_MSG_CMD_OPEN_SESSION	U(0)
#define OPTEE_MSG_CMD_INVOKE_COMMAND	U(1)
#define OPTEE_MSG_CMD_CLOSE_SESSION	U(2)
#define OPTEE_MSG_CMD_CANCEL		U(3)
#define OPTEE_MSG_CMD_REGISTER_SHM	U(4)
#define OPTEE_MSG_CMD_UNREGISTER_SHM	U(5)
#define OPTEE_MSG_CMD_DO_BOTTOM_HALF	U(6)
#define OPTEE_MSG_CMD_STOP_ASYNC_NOTIF	U(7)
/* 8 and 9: SMC builds only; 11: FF-A builds only */
#define OPTEE_MSG_CMD_LEND_PROTMEM	U(8)
#define OPTEE_MSG_CMD_RECLAIM_PROTMEM	U(9)
#define OPTEE_MSG_CMD_GET_PROTMEM_CONFIG	U(10)
#define OPTEE_MSG_CMD_ASSIGN_PROTMEM	U(11)

/* Protected-memory use cases */
#define OPTEE_MSG_PROTMEM_RESERVED		U(0)
#define OPTEE_MSG_PROTMEM_SECURE_VIDEO_PLAY	U(1)
#define OPTEE_MSG_PROTMEM_TRUSTED_UI		U(2)
#define OPTEE_MSG_PROTMEM_SECURE_VIDEO_RECORD	U(3)

#endif /* __TZEMU_OPTEE_MSG_H */
