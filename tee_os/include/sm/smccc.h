/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: SMC Calling Convention fields as the secure OS
 * decodes the function id in w0.
 *
 *   bit 31      fast call (set) or yielding call (clear)
 *   bit 30      SMC64 (set) or SMC32 (clear)
 *   bits 29..24 owning entity number
 *   bits 15..0  function number
 */
#ifndef __TZEMU_SM_SMCCC_H
#define __TZEMU_SM_SMCCC_H

#include <util.h>

/* Field values already in position */
#define OPTEE_SMC_32			U(0)
#define OPTEE_SMC_64			U(0x40000000)
#define OPTEE_SMC_FAST_CALL		U(0x80000000)
#define OPTEE_SMC_STD_CALL		U(0)

#define OPTEE_SMC_OWNER_MASK		U(0x3F)
#define OPTEE_SMC_OWNER_SHIFT		U(24)
#define OPTEE_SMC_FUNC_MASK		U(0xFFFF)

#define OPTEE_SMC_IS_FAST_CALL(smc_val)	((smc_val) & OPTEE_SMC_FAST_CALL)
#define OPTEE_SMC_IS_64(smc_val)	((smc_val) & OPTEE_SMC_64)
#define OPTEE_SMC_FUNC_NUM(smc_val)	((smc_val) & OPTEE_SMC_FUNC_MASK)
#define OPTEE_SMC_OWNER_NUM(smc_val) \
	(((smc_val) >> OPTEE_SMC_OWNER_SHIFT) & OPTEE_SMC_OWNER_MASK)

/* Compose an id; type and calling_convention are the in-position values above */
#define OPTEE_SMC_CALL_VAL(type, calling_convention, owner, func_num)	\
	((type) | (calling_convention) |				\
	 (((owner) & OPTEE_SMC_OWNER_MASK) << OPTEE_SMC_OWNER_SHIFT) |	\
	 ((func_num) & OPTEE_SMC_FUNC_MASK))

/* Owning entity numbers */
#define OPTEE_SMC_OWNER_ARCH		U(0)
#define OPTEE_SMC_OWNER_CPU		U(1)
#define OPTEE_SMC_OWNER_SIP		U(2)
#define OPTEE_SMC_OWNER_OEM		U(3)
#define OPTEE_SMC_OWNER_STANDARD	U(4)
#define OPTEE_SMC_OWNER_TRUSTED_APP	U(48)
#define OPTEE_SMC_OWNER_TRUSTED_OS	U(50)
/* The secure OS talks to the EL3 dispatcher under this owner */
#define OPTEE_SMC_OWNER_TRUSTED_OS_OPTEED U(62)
#define OPTEE_SMC_OWNER_TRUSTED_OS_API	U(63)

/* Arm architecture calls the secure OS may issue or answer */
#define ARM_SMCCC_VERSION		U(0x80000000)
#define ARM_SMCCC_ARCH_FEATURES		U(0x80000001)
#define ARM_SMCCC_ARCH_SOC_ID		U(0x80000002)
#define ARM_SMCCC_ARCH_WORKAROUND_1	U(0x80008000)
#define ARM_SMCCC_ARCH_WORKAROUND_2	U(0x80007FFF)

#define SMCCC_V_1_0			U(0x10000)
#define SMCCC_V_1_1			U(0x10001)
#define SMCCC_V_1_2			U(0x10002)

/* Architecture-service return codes (negative ints) */
#define ARM_SMCCC_RET_SUCCESS			0
#define ARM_SMCCC_RET_NOT_SUPPORTED		(-1)
#define ARM_SMCCC_RET_NOT_REQUIRED		(-2)
#define ARM_SMCCC_RET_INVALID_PARAMETER		(-3)

#endif /* __TZEMU_SM_SMCCC_H */
