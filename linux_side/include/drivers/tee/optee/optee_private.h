/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu's normal-world copy: the driver-private values the OP-TEE driver uses when it talks
 * about results (GlobalPlatform client codes and origins) and its size limits.
 * Numbers from the OP-TEE driver (drivers/tee/optee/optee_private.h), restated here.
 */
#ifndef TZEMU_LINUX_OPTEE_PRIVATE_H
#define TZEMU_LINUX_OPTEE_PRIVATE_H

/* Results the driver reads from optee_msg_arg.ret and writes into RPC answers. */
#define TEEC_SUCCESS			0x00000000
#define TEEC_ERROR_GENERIC		0xFFFF0000
#define TEEC_ERROR_ACCESS_DENIED	0xFFFF0001
#define TEEC_ERROR_BAD_PARAMETERS	0xFFFF0006
#define TEEC_ERROR_ITEM_NOT_FOUND	0xFFFF0008
#define TEEC_ERROR_NOT_IMPLEMENTED	0xFFFF0009
#define TEEC_ERROR_NOT_SUPPORTED	0xFFFF000A
#define TEEC_ERROR_OUT_OF_MEMORY	0xFFFF000C
#define TEEC_ERROR_BUSY			0xFFFF000D
#define TEEC_ERROR_COMMUNICATION	0xFFFF000E
#define TEEC_ERROR_SHORT_BUFFER		0xFFFF0010
#define TEEC_ERROR_TARGET_DEAD		0xFFFF3024

/* Where a result came from. */
#define TEEC_ORIGIN_API			0x00000001
#define TEEC_ORIGIN_COMMS		0x00000002
#define TEEC_ORIGIN_TEE			0x00000003
#define TEEC_ORIGIN_TRUSTED_APP		0x00000004

/* Largest optee_msg_arg the driver builds, and the default notification ceiling. */
#define OPTEE_MAX_ARG_SIZE		1024
#define OPTEE_DEFAULT_MAX_NOTIF_VALUE	255

/*
 * The message-argument cache (call.c): each entry is one page of kernel
 * shared memory; a slot holds an optee_msg_arg with up to
 * MAX_ARG_PARAM_COUNT parameters followed by the RPC argument.  With
 * OPTEE_SHM_ARG_SHARED (FF-A sec cap ARG_OFFSET) several slots share a page
 * and the call names the slot by its offset.
 */
#define MAX_ARG_PARAM_COUNT		6
#define OPTEE_SHM_ARG_ALLOC_PRIV	(1 << 0)
#define OPTEE_SHM_ARG_SHARED		(1 << 1)

#endif /* TZEMU_LINUX_OPTEE_PRIVATE_H */
