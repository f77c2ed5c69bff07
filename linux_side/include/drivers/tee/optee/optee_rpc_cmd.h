/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: commands the secure world sends back in an RPC
 * optee_msg_arg (its cmd field), with their sub-values.
 */
#ifndef __OPTEE_RPC_CMD_H
#define __OPTEE_RPC_CMD_H

#include <linux/bits.h>

#define OPTEE_RPC_CMD_LOAD_TA		0	/* supplicant */
#define OPTEE_RPC_CMD_RPMB		1	/* supplicant */
#define OPTEE_RPC_CMD_FS		2	/* supplicant */
#define OPTEE_RPC_CMD_GET_TIME		3	/* kernel */

/* kernel; p0.a = one of the two sub-commands below */
#define OPTEE_RPC_CMD_NOTIFICATION	4
#define OPTEE_RPC_NOTIFICATION_WAIT	0
#define OPTEE_RPC_NOTIFICATION_SEND	1

#define OPTEE_RPC_CMD_SUSPEND		5	/* kernel */

/* kernel; p0.a = shm type */
#define OPTEE_RPC_CMD_SHM_ALLOC		6
#define OPTEE_RPC_SHM_TYPE_APPL		0	/* memory a user-space helper can see */
#define OPTEE_RPC_SHM_TYPE_KERNEL	1	/* kernel-private memory */

#define OPTEE_RPC_CMD_SHM_FREE		7	/* kernel */

#define OPTEE_RPC_CMD_GPROF		9	/* supplicant */
#define OPTEE_RPC_CMD_SOCKET		10	/* supplicant */
#define OPTEE_RPC_CMD_FTRACE		11	/* supplicant */
#define OPTEE_RPC_CMD_SUPP_PLUGIN	12	/* supplicant */
#define OPTEE_RPC_CMD_BENCH_REG		20

/* kernel; read or write on an I2C bus */
#define OPTEE_RPC_CMD_I2C_TRANSFER	21
#define OPTEE_RPC_I2C_TRANSFER_RD	0
#define OPTEE_RPC_I2C_TRANSFER_WR	1
#define OPTEE_RPC_I2C_FLAGS_TEN_BIT	BIT(0)

/* kernel; enumerate RPMB devices */
#define OPTEE_RPC_CMD_RPMB_PROBE_RESET	22
#define OPTEE_RPC_CMD_RPMB_PROBE_NEXT	23
#define OPTEE_RPC_RPMB_EMMC		0
#define OPTEE_RPC_RPMB_UFS		1
#define OPTEE_RPC_RPMB_NVME		2
#define OPTEE_RPC_CMD_RPMB_FRAMES	24

#endif /* __OPTEE_RPC_CMD_H */
