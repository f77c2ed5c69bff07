/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: function ids the secure OS uses to return to the EL3
 * dispatcher.  When the secure OS has finished a piece of work that EL3
 * started (cold boot, a CPU power event, a normal-world call, a secure
 * interrupt), it issues an SMC whose w0 is one of the ids below; EL3 then
 * knows what just completed and what registers carry.
 *
 * They are fast SMC32 ids of owner 62: 0xBE000000 | n.
 */
#ifndef __TZEMU_TEESMC_OPTEED_H
#define __TZEMU_TEESMC_OPTEED_H

#include <util.h>
#include <sm/smccc.h>

#define TEESMC_OPTEED_RV(func_num) \
	OPTEE_SMC_CALL_VAL(OPTEE_SMC_32, OPTEE_SMC_FAST_CALL, \
			   OPTEE_SMC_OWNER_TRUSTED_OS_OPTEED, (func_num))

/* Cold boot finished; x1 = address of the secure OS's vector table */
#define TEESMC_OPTEED_FUNCID_RETURN_ENTRY_DONE		U(0)
#define TEESMC_OPTEED_RETURN_ENTRY_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_ENTRY_DONE)

/* A CPU came on-line / went off-line */
#define TEESMC_OPTEED_FUNCID_RETURN_ON_DONE		U(1)
#define TEESMC_OPTEED_RETURN_ON_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_ON_DONE)
#define TEESMC_OPTEED_FUNCID_RETURN_OFF_DONE		U(2)
#define TEESMC_OPTEED_RETURN_OFF_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_OFF_DONE)

/* A CPU was suspended / resumed */
#define TEESMC_OPTEED_FUNCID_RETURN_SUSPEND_DONE	U(3)
#define TEESMC_OPTEED_RETURN_SUSPEND_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_SUSPEND_DONE)
#define TEESMC_OPTEED_FUNCID_RETURN_RESUME_DONE		U(4)
#define TEESMC_OPTEED_RETURN_RESUME_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_RESUME_DONE)

/* A normal-world SMC was handled; x1..x4 = results for the caller */
#define TEESMC_OPTEED_FUNCID_RETURN_CALL_DONE		U(5)
#define TEESMC_OPTEED_RETURN_CALL_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_CALL_DONE)

/* A secure interrupt taken while the normal world ran was handled */
#define TEESMC_OPTEED_FUNCID_RETURN_FIQ_DONE		U(6)
#define TEESMC_OPTEED_RETURN_FIQ_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_FIQ_DONE)

/* The system is about to be switched off / reset */
#define TEESMC_OPTEED_FUNCID_RETURN_SYSTEM_OFF_DONE	U(7)
#define TEESMC_OPTEED_RETURN_SYSTEM_OFF_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_SYSTEM_OFF_DONE)
#define TEESMC_OPTEED_FUNCID_RETURN_SYSTEM_RESET_DONE	U(8)
#define TEESMC_OPTEED_RETURN_SYSTEM_RESET_DONE \
	TEESMC_OPTEED_RV(TEESMC_OPTEED_FUNCID_RETURN_SYSTEM_RESET_DONE)

#endif /* __TZEMU_TEESMC_OPTEED_H */
