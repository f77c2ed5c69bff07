/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu EL3 firmware: SMC Calling Convention fields and the architecture
 * service ids, as the EL3 runtime dispatches them.
 *
 *   bit 31      call type (1 fast, 0 yielding)
 *   bit 30      calling convention (1 SMC64, 0 SMC32)
 *   bits 29..24 owning entity number (OEN)
 *   bit 16      SVE live-state hint (SMCCC 1.3)
 *   bits 15..0  function number
 */
#ifndef __TZEMU_SMCCC_H
#define __TZEMU_SMCCC_H

#include <utils_def.h>

/* Version this firmware reports: 1.5 */
#define SMCCC_VERSION_MAJOR_SHIFT	U(16)
#define SMCCC_VERSION_MAJOR_MASK	U(0x7FFF)
#define SMCCC_VERSION_MINOR_SHIFT	U(0)
#define SMCCC_VERSION_MINOR_MASK	U(0xFFFF)
#define MAKE_SMCCC_VERSION(_major, _minor)				\
	((((_major) & SMCCC_VERSION_MAJOR_MASK) <<			\
	  SMCCC_VERSION_MAJOR_SHIFT) |					\
	 (((_minor) & SMCCC_VERSION_MINOR_MASK) <<			\
	  SMCCC_VERSION_MINOR_SHIFT))
#define SMCCC_MAJOR_VERSION		U(1)
#define SMCCC_MINOR_VERSION		U(5)
#define SMCCC_VERSION_1_2		U(0x10002)

/* Architecture service (OEN 0) */
#define SMCCC_VERSION			U(0x80000000)
#define SMCCC_ARCH_FEATURES		U(0x80000001)
#define SMCCC_ARCH_SOC_ID		U(0x80000002)
#define SMCCC_ARCH_WORKAROUND_1		U(0x80008000)
#define SMCCC_ARCH_WORKAROUND_2		U(0x80007FFF)
#define SMCCC_ARCH_WORKAROUND_3		U(0x80003FFF)

/* Function-id field positions */
#define FUNCID_TYPE_SHIFT		U(31)
#define FUNCID_TYPE_MASK		U(0x1)
#define FUNCID_TYPE_WIDTH		U(1)

#define FUNCID_CC_SHIFT			U(30)
#define FUNCID_CC_MASK			U(0x1)
#define FUNCID_CC_WIDTH			U(1)

#define FUNCID_OEN_SHIFT		U(24)
#define FUNCID_OEN_MASK			U(0x3f)
#define FUNCID_OEN_WIDTH		U(6)

#define FUNCID_SVE_HINT_SHIFT		U(16)
#define FUNCID_SVE_HINT_MASK		U(1)

#define FUNCID_NUM_SHIFT		U(0)
#define FUNCID_NUM_MASK			U(0xffff)
#define FUNCID_NUM_WIDTH		U(16)

#define GET_SMC_TYPE(id)	(((id) >> FUNCID_TYPE_SHIFT) & FUNCID_TYPE_MASK)
#define GET_SMC_CC(id)		(((id) >> FUNCID_CC_SHIFT) & FUNCID_CC_MASK)
#define GET_SMC_OEN(id)		(((id) >> FUNCID_OEN_SHIFT) & FUNCID_OEN_MASK)
#define GET_SMC_NUM(id)		(((id) >> FUNCID_NUM_SHIFT) & FUNCID_NUM_MASK)

#define SMC_64				U(1)
#define SMC_32				U(0)
#define SMC_TYPE_FAST			UL(1)
#define SMC_TYPE_YIELD			UL(0)

/*
 * Results.  SMC_UNK is what an unknown function id returns; it is kept as
 * the 32-bit w0 pattern (-1 read as unsigned).  The others are internal.
 */
#define SMC_OK				ULL(0)
#define SMC_UNK				U(0xFFFFFFFF)
#define SMC_PREEMPTED			-2
#define SMC_DENIED			-3
#define SMC_INVALID_PARAM		-4

/* Architecture-service answers */
#define SMC_ARCH_CALL_SUCCESS		0
#define SMC_ARCH_CALL_NOT_SUPPORTED	-1
#define SMC_ARCH_CALL_NOT_REQUIRED	-2
#define SMC_ARCH_CALL_INVAL_PARAM	-3

/* Owning entity number ranges */
#define OEN_ARM_START			U(0)
#define OEN_ARM_END			U(0)
#define OEN_CPU_START			U(1)
#define OEN_CPU_END			U(1)
#define OEN_SIP_START			U(2)
#define OEN_SIP_END			U(2)
#define OEN_OEM_START			U(3)
#define OEN_OEM_END			U(3)
#define OEN_STD_START			U(4)	/* PSCI, FF-A, ... */
#define OEN_STD_END			U(4)
#define OEN_STD_HYP_START		U(5)
#define OEN_STD_HYP_END			U(5)
#define OEN_VEN_HYP_START		U(6)
#define OEN_VEN_HYP_END			U(6)
#define OEN_VEN_EL3_START		U(7)
#define OEN_VEN_EL3_END			U(7)
#define OEN_TAP_START			U(48)	/* Trusted Applications */
#define OEN_TAP_END			U(49)
#define OEN_TOS_START			U(50)	/* Trusted OS */
#define OEN_TOS_END			U(63)
#define OEN_LIMIT			U(64)

#endif /* __TZEMU_SMCCC_H */
