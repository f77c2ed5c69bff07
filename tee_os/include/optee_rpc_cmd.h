/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: the services the secure OS may ask of the normal
 * world, written into the cmd field of the RPC optee_msg_arg.
 */
#ifndef __TZEMU_OPTEE_RPC_CMD_H
#define __TZEMU_OPTEE_RPC_CMD_H

#include <util.h>

#define OPTEE_RPC_CMD_LOAD_TA		U(0)
#define OPTEE_RPC_CMD_RPMB		U(1)
#define OPTEE_RPC_CMD_FS		U(2)
#define OPTEE_RPC_CMD_GET_TIME		U(3)
#define OPTEE_RPC_CMD_NOTIFICATION	U(4)
#define OPTEE_RPC_NOTIFICATION_WAIT	U(0)
#define OPTEE_RPC_NOTIFICATION_SEND	U(1)
#define OPTEE_RPC_CMD_SUSPEND		U(5)
#define OPTEE_RPC_CMD_SHM_ALLOC		U(6)
#define OPTEE_RPC_SHM_TYPE_APPL		U(0)
#define OPTEE_RPC_SHM_TYPE_KERNEL	U(1)
#define OPTEE_RPC_CMD_SHM_FREE		U(7)
#define OPTEE_RPC_CMD_GPROF		U(9)
#define OPTEE_RPC_CMD_SOCKET		U(10)
#define OPTEE_RPC_CMD_FTRACE		U(11)
#define OPTEE_RPC_CMD_SUPP_PLUGIN	U(12)
#define OPTEE_RPC_CMD_BENCH_REG		U(20)
#define OPTEE_RPC_CMD_I2C_TRANSFER	U(21)
#define OPTEE_RPC_I2C_TRANSFER_RD	U(0)
#define OPTEE_RPC_I2C_TRANSFER_WR	U(1)
#define OPTEE_RPC_I2C_FLAGS_TEN_BIT	BIT(0)
#define OPTEE_RPC_CMD_RPMB_PROBE_RESET	U(22)
#define OPTEE_RPC_CMD_RPMB_PROBE_NEXT	U(23)
#define OPTEE_RPC_RPMB_EMMC		U(0)
#define OPTEE_RPC_RPMB_UFS		U(1)
#define OPTEE_RPC_RPMB_NVME		U(2)
#define OPTEE_RPC_CMD_RPMB_FRAMES	U(24)

#endif /* __TZEMU_OPTEE_RPC_CMD_H */
