/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: OP-TEE's services behind FF-A direct requests.
 *
 * The service id travels in w3 of FFA_MSG_SEND_DIRECT_REQ (32-bit); w4..w7
 * carry arguments.  Blocking services use the plain number, yielding ones
 * the number with bit 31 set.
 */
#ifndef __OPTEE_FFA_H
#define __OPTEE_FFA_H

#include <linux/arm_ffa.h>
#include <linux/bits.h>

#define OPTEE_FFA_BLOCKING_CALL(id)	(id)
#define OPTEE_FFA_YIELDING_CALL_BIT	31
#define OPTEE_FFA_YIELDING_CALL(id)	((id) | BIT(OPTEE_FFA_YIELDING_CALL_BIT))

/* Protocol version answered by GET_API_VERSION (w3 = major, w4 = minor) */
#define OPTEE_FFA_VERSION_MAJOR		1
#define OPTEE_FFA_VERSION_MINOR		0

#define OPTEE_FFA_GET_API_VERSION	OPTEE_FFA_BLOCKING_CALL(0)
/* w3 = major, w4 = minor, w5 = build id */
#define OPTEE_FFA_GET_OS_VERSION	OPTEE_FFA_BLOCKING_CALL(1)
/* w3 = 0, w4[7:0] = RPC param count, w5 = caps, w6 = max notification value */
#define OPTEE_FFA_EXCHANGE_CAPABILITIES	OPTEE_FFA_BLOCKING_CALL(2)

/* Capability bits in w5 of EXCHANGE_CAPABILITIES */
#define OPTEE_FFA_SEC_CAP_ARG_OFFSET	BIT(0)	/* arg may sit at an offset (w6) */
#define OPTEE_FFA_SEC_CAP_ASYNC_NOTIF	BIT(1)
#define OPTEE_FFA_SEC_CAP_RPMB_PROBE	BIT(2)
#define OPTEE_FFA_SEC_CAP_PROTMEM	BIT(3)	/* lent protected memory */

/* w4/w5 = low/high half of the FF-A handle */
#define OPTEE_FFA_UNREGISTER_SHM	OPTEE_FFA_BLOCKING_CALL(3)

/* w4 = bottom-half notification value, below the limit */
#define OPTEE_FFA_ENABLE_ASYNC_NOTIF	OPTEE_FFA_BLOCKING_CALL(5)
#define OPTEE_FFA_MAX_ASYNC_NOTIF_VALUE	64

/* w4/w5 = handle of lent protected memory that the secure side lets go */
#define OPTEE_FFA_RELEASE_PROTMEM	OPTEE_FFA_BLOCKING_CALL(8)

/*
 * w4/w5 = handle of the shm holding the optee_msg_arg, w6 = its offset.
 * Reply: w3 = 0 and w4 = one of the RETURN_* values below, or w3 = error.
 */
#define OPTEE_FFA_YIELDING_CALL_WITH_ARG	OPTEE_FFA_YIELDING_CALL(0)
/* w7 = the resume information from the previous reply */
#define OPTEE_FFA_YIELDING_CALL_RESUME		OPTEE_FFA_YIELDING_CALL(1)

#define OPTEE_FFA_YIELDING_CALL_RETURN_DONE		0
#define OPTEE_FFA_YIELDING_CALL_RETURN_RPC_CMD		1
#define OPTEE_FFA_YIELDING_CALL_RETURN_INTERRUPT	2

#endif /* __OPTEE_FFA_H */
