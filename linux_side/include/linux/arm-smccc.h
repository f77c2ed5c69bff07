/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: SMC Calling Convention function identifiers.
 *
 *   bit 31      1 = fast (atomic) call, 0 = yielding ("standard") call
 *   bit 30      1 = SMC64/HVC64, 0 = SMC32/HVC32
 *   bits 29..24 owning entity number
 *   bits 15..0  function number within the owner
 */
#ifndef __LINUX_ARM_SMCCC_H
#define __LINUX_ARM_SMCCC_H

#include <linux/types.h>
#include <linux/bits.h>

/* Call types are unsigned so a fast call id stays positive once shifted. */
#define ARM_SMCCC_STD_CALL		0U
#define ARM_SMCCC_FAST_CALL		1U
#define ARM_SMCCC_TYPE_SHIFT		31

#define ARM_SMCCC_SMC_32		0
#define ARM_SMCCC_SMC_64		1
#define ARM_SMCCC_CALL_CONV_SHIFT	30

#define ARM_SMCCC_OWNER_MASK		0x3F
#define ARM_SMCCC_OWNER_SHIFT		24

#define ARM_SMCCC_FUNC_MASK		0xFFFF

/* Decoding helpers */
#define ARM_SMCCC_IS_FAST_CALL(smc_val)	\
	((smc_val) & (ARM_SMCCC_FAST_CALL << ARM_SMCCC_TYPE_SHIFT))
#define ARM_SMCCC_IS_64(smc_val) \
	((smc_val) & (ARM_SMCCC_SMC_64 << ARM_SMCCC_CALL_CONV_SHIFT))
#define ARM_SMCCC_FUNC_NUM(smc_val)	((smc_val) & ARM_SMCCC_FUNC_MASK)
#define ARM_SMCCC_OWNER_NUM(smc_val) \
	(((smc_val) >> ARM_SMCCC_OWNER_SHIFT) & ARM_SMCCC_OWNER_MASK)

/* Build a function id from its four fields. */
#define ARM_SMCCC_CALL_VAL(type, calling_convention, owner, func_num)	\
	(((type) << ARM_SMCCC_TYPE_SHIFT) |				\
	 ((calling_convention) << ARM_SMCCC_CALL_CONV_SHIFT) |		\
	 (((owner) & ARM_SMCCC_OWNER_MASK) << ARM_SMCCC_OWNER_SHIFT) |	\
	 ((func_num) & ARM_SMCCC_FUNC_MASK))

/* Owning entity numbers */
#define ARM_SMCCC_OWNER_ARCH		0
#define ARM_SMCCC_OWNER_CPU		1
#define ARM_SMCCC_OWNER_SIP		2
#define ARM_SMCCC_OWNER_OEM		3
#define ARM_SMCCC_OWNER_STANDARD	4	/* PSCI, FF-A, ... */
#define ARM_SMCCC_OWNER_STANDARD_HYP	5
#define ARM_SMCCC_OWNER_VENDOR_HYP	6
#define ARM_SMCCC_OWNER_TRUSTED_APP	48
#define ARM_SMCCC_OWNER_TRUSTED_APP_END	49
#define ARM_SMCCC_OWNER_TRUSTED_OS	50
#define ARM_SMCCC_OWNER_TRUSTED_OS_END	63

/* Arm architecture service calls (owner 0) */
#define ARM_SMCCC_VERSION_FUNC_ID					\
	ARM_SMCCC_CALL_VAL(ARM_SMCCC_FAST_CALL, ARM_SMCCC_SMC_32,	\
			   ARM_SMCCC_OWNER_ARCH, 0)
#define ARM_SMCCC_ARCH_FEATURES_FUNC_ID					\
	ARM_SMCCC_CALL_VAL(ARM_SMCCC_FAST_CALL, ARM_SMCCC_SMC_32,	\
			   ARM_SMCCC_OWNER_ARCH, 1)
#define ARM_SMCCC_ARCH_SOC_ID						\
	ARM_SMCCC_CALL_VAL(ARM_SMCCC_FAST_CALL, ARM_SMCCC_SMC_32,	\
			   ARM_SMCCC_OWNER_ARCH, 2)
#define ARM_SMCCC_ARCH_WORKAROUND_1					\
	ARM_SMCCC_CALL_VAL(ARM_SMCCC_FAST_CALL, ARM_SMCCC_SMC_32,	\
			   ARM_SMCCC_OWNER_ARCH, 0x8000)
#define ARM_SMCCC_ARCH_WORKAROUND_2					\
	ARM_SMCCC_CALL_VAL(ARM_SMCCC_FAST_CALL, ARM_SMCCC_SMC_32,	\
			   ARM_SMCCC_OWNER_ARCH, 0x7fff)
#define ARM_SMCCC_ARCH_WORKAROUND_3					\
	ARM_SMCCC_CALL_VAL(ARM_SMCCC_FAST_CALL, ARM_SMCCC_SMC_32,	\
			   ARM_SMCCC_OWNER_ARCH, 0x3fff)

/* SMCCC_VERSION answers: (major << 16) | minor */
#define ARM_SMCCC_VERSION_1_0		0x10000
#define ARM_SMCCC_VERSION_1_1		0x10001
#define ARM_SMCCC_VERSION_1_2		0x10002

/*
 * Return codes of the architecture service.  They are plain negative ints;
 * read back from a 32-bit w0 they show up as 0xFFFFFFFF, 0xFFFFFFFE, ...
 */
#define SMCCC_RET_SUCCESS		0
#define SMCCC_RET_NOT_SUPPORTED		(-1)
#define SMCCC_RET_NOT_REQUIRED		(-2)
#define SMCCC_RET_INVALID_PARAMETER	(-3)
/* Older spelling of "not required" kept for callers that use it. */
#define ARM_SMCCC_RET_NOT_REQUIRED	SMCCC_RET_NOT_REQUIRED

#endif /* __LINUX_ARM_SMCCC_H */
