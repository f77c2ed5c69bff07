/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: the user-space interface of the Linux TEE subsystem
 * (/dev/teeN and /dev/teeprivN), as of Linux v6.18.
 *
 * Every ioctl here passes one fixed-size struct.  The "buffer" ioctls
 * (OPEN_SESSION, INVOKE, SUPPL_RECV, SUPPL_SEND, OBJECT_INVOKE) pass a
 * struct tee_ioctl_buf_data that points at the real argument struct, which
 * is directly followed by num_params struct tee_ioctl_param entries.
 */
#ifndef _UAPI_TEE_H
#define _UAPI_TEE_H

#include <uapi/linux/types.h>
#include <uapi/asm-generic/ioctl.h>

#define TEE_IOC_MAGIC		0xa4	/* ioctl type byte of every TEE request */
#define TEE_IOC_BASE		0

/* Upper bound on tee_ioctl_buf_data.buf_len (v6.18; it was 1024 before). */
#define TEE_MAX_ARG_SIZE	4096

/* Capability bits reported in tee_ioctl_version_data.gen_caps */
#define TEE_GEN_CAP_GP		(1 << 0)	/* GlobalPlatform client API */
#define TEE_GEN_CAP_PRIVILEGED	(1 << 1)	/* the supplicant's device */
#define TEE_GEN_CAP_REG_MEM	(1 << 2)	/* TEE_IOC_SHM_REGISTER works */
#define TEE_GEN_CAP_MEMREF_NULL	(1 << 3)	/* NULL memrefs accepted */
#define TEE_GEN_CAP_OBJREF	(1 << 4)	/* object references (QTEE) */

/* A memref whose "c" holds this value is a NULL memref. */
#define TEE_MEMREF_NULL		((__u64)-1)
/* Null object reference (QTEE). */
#define TEE_OBJREF_NULL		((__u64)-1)

/* Which TEE driver answers: tee_ioctl_version_data.impl_id */
#define TEE_IMPL_ID_OPTEE	1
#define TEE_IMPL_ID_AMDTEE	2
#define TEE_IMPL_ID_TSTEE	3
#define TEE_IMPL_ID_QTEE	4

/* OP-TEE specific bit in tee_ioctl_version_data.impl_caps */
#define TEE_OPTEE_CAP_TZ	(1 << 0)

/* Answer of TEE_IOC_VERSION. */
struct tee_ioctl_version_data {
	__u32 impl_id;
	__u32 impl_caps;
	__u32 gen_caps;
};

/* TEE_IOC_SHM_ALLOC: size in/out, id out. */
struct tee_ioctl_shm_alloc_data {
	__u64 size;
	__u32 flags;
	__s32 id;
};

/*
 * TEE_IOC_SHM_REGISTER_FD: turn a dma-buf (from a TEE protected heap) into a
 * shm id usable in a memref.  flags must be 0 on input; on output they carry
 * the kernel's internal shm flags.
 */
struct tee_ioctl_shm_register_fd_data {
	__s64 fd;
	__u64 size;
	__u32 flags;
	__s32 id;
};

/* Pointer + length of the real argument of a "buffer" ioctl. */
struct tee_ioctl_buf_data {
	__u64 buf_ptr;
	__u64 buf_len;
};

/* Parameter types: the low byte of tee_ioctl_param.attr */
#define TEE_IOCTL_PARAM_ATTR_TYPE_NONE		0	/* unused slot */
#define TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT	1
#define TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT	2
#define TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT	3
#define TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT	5
#define TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT	6
#define TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT	7
/* user-space buffer passed by address (QTEE) */
#define TEE_IOCTL_PARAM_ATTR_TYPE_UBUF_INPUT	8
#define TEE_IOCTL_PARAM_ATTR_TYPE_UBUF_OUTPUT	9
#define TEE_IOCTL_PARAM_ATTR_TYPE_UBUF_INOUT	10
/* object reference (QTEE) */
#define TEE_IOCTL_PARAM_ATTR_TYPE_OBJREF_INPUT	11
#define TEE_IOCTL_PARAM_ATTR_TYPE_OBJREF_OUTPUT	12
#define TEE_IOCTL_PARAM_ATTR_TYPE_OBJREF_INOUT	13

#define TEE_IOCTL_PARAM_ATTR_TYPE_MASK		0xff
/* Meta parameter: carries session/client information, not payload. */
#define TEE_IOCTL_PARAM_ATTR_META		0x100
#define TEE_IOCTL_PARAM_ATTR_MASK \
	(TEE_IOCTL_PARAM_ATTR_TYPE_MASK | TEE_IOCTL_PARAM_ATTR_META)

/* Client login methods (GlobalPlatform numbering) */
#define TEE_IOCTL_LOGIN_PUBLIC			0
#define TEE_IOCTL_LOGIN_USER			1
#define TEE_IOCTL_LOGIN_GROUP			2
#define TEE_IOCTL_LOGIN_APPLICATION		4
#define TEE_IOCTL_LOGIN_USER_APPLICATION	5
#define TEE_IOCTL_LOGIN_GROUP_APPLICATION	6
/* Range reserved for logins issued by kernel clients */
#define TEE_IOCTL_LOGIN_REE_KERNEL_MIN		0x80000000
#define TEE_IOCTL_LOGIN_REE_KERNEL_MAX		0xBFFFFFFF
#define TEE_IOCTL_LOGIN_REE_KERNEL		0x80000000

/*
 * One parameter.  memref: a = offset into the shm, b = size, c = shm id
 * (or TEE_MEMREF_NULL); value: a, b, c are the three values.
 */
struct tee_ioctl_param {
	__u64 attr;
	__u64 a;
	__u64 b;
	__u64 c;
};

#define TEE_IOCTL_UUID_LEN		16

/* Argument of TEE_IOC_OPEN_SESSION, followed by num_params params. */
struct tee_ioctl_open_session_arg {
	__u8 uuid[TEE_IOCTL_UUID_LEN];
	__u8 clnt_uuid[TEE_IOCTL_UUID_LEN];
	__u32 clnt_login;
	__u32 cancel_id;
	__u32 session;
	__u32 ret;
	__u32 ret_origin;
	__u32 num_params;
	struct tee_ioctl_param params[];
};

/* Argument of TEE_IOC_INVOKE, followed by num_params params. */
struct tee_ioctl_invoke_arg {
	__u32 func;
	__u32 session;
	__u32 cancel_id;
	__u32 ret;
	__u32 ret_origin;
	__u32 num_params;
	struct tee_ioctl_param params[];
};

/* Argument of TEE_IOC_CANCEL. */
struct tee_ioctl_cancel_arg {
	__u32 cancel_id;
	__u32 session;
};

/* Argument of TEE_IOC_CLOSE_SESSION. */
struct tee_ioctl_close_session_arg {
	__u32 session;
};

/* Supplicant side: a request taken from the TEE (TEE_IOC_SUPPL_RECV). */
struct tee_iocl_supp_recv_arg {
	__u32 func;
	__u32 num_params;
	struct tee_ioctl_param params[];
};

/* Supplicant side: the answer to that request (TEE_IOC_SUPPL_SEND). */
struct tee_iocl_supp_send_arg {
	__u32 ret;
	__u32 num_params;
	struct tee_ioctl_param params[];
};

/* TEE_IOC_SHM_REGISTER: register user memory [addr, addr + length). */
struct tee_ioctl_shm_register_data {
	__u64 addr;
	__u64 length;
	__u32 flags;
	__s32 id;
};

/* Argument of TEE_IOC_OBJECT_INVOKE (QTEE); params start 8-aligned at 24. */
struct tee_ioctl_object_invoke_arg {
	__u64 id;
	__u32 op;
	__u32 ret;
	__u32 num_params;
	struct tee_ioctl_param params[];
};

/* The request numbers, in command-number order. */
#define TEE_IOC_VERSION		_IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 0, \
				     struct tee_ioctl_version_data)
#define TEE_IOC_SHM_ALLOC	_IOWR(TEE_IOC_MAGIC, TEE_IOC_BASE + 1, \
				      struct tee_ioctl_shm_alloc_data)
#define TEE_IOC_OPEN_SESSION	_IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 2, \
				     struct tee_ioctl_buf_data)
#define TEE_IOC_INVOKE		_IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 3, \
				     struct tee_ioctl_buf_data)
#define TEE_IOC_CANCEL		_IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 4, \
				     struct tee_ioctl_cancel_arg)
#define TEE_IOC_CLOSE_SESSION	_IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 5, \
				     struct tee_ioctl_close_session_arg)
#define TEE_IOC_SUPPL_RECV	_IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 6, \
				     struct tee_ioctl_buf_data)
#define TEE_IOC_SUPPL_SEND	_IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 7, \
				     struct tee_ioctl_buf_data)
#define TEE_IOC_SHM_REGISTER_FD	_IOWR(TEE_IOC_MAGIC, TEE_IOC_BASE + 8, \
				      struct tee_ioctl_shm_register_fd_data)
#define TEE_IOC_SHM_REGISTER	_IOWR(TEE_IOC_MAGIC, TEE_IOC_BASE + 9, \
				      struct tee_ioctl_shm_register_data)
#define TEE_IOC_OBJECT_INVOKE	_IOR(TEE_IOC_MAGIC, TEE_IOC_BASE + 10, \
				     struct tee_ioctl_buf_data)

#endif /* _UAPI_TEE_H */
