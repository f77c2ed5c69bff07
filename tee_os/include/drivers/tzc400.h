/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu's secure-world description of the TZC-400 register frame (Arm CoreLink TZC-400 TRM),
 * used by the secure OS's platform hook to fence protected memory.
 */
#ifndef TZEMU_TEE_DRIVERS_TZC400_H
#define TZEMU_TEE_DRIVERS_TZC400_H

/* Global registers */
#define TZC_BUILD_CONFIG		0x000
#define TZC_ACTION			0x004
#define TZC_GATE_KEEPER			0x008
#define TZC_SPECULATION_CTRL		0x00C
#define TZC_INT_STATUS			0x010
#define TZC_INT_CLEAR			0x014

#define TZC_BUILD_CONFIG_NF_SHIFT	24	/* number of filters - 1 */
#define TZC_BUILD_CONFIG_AW_SHIFT	8	/* address width - 1 */
#define TZC_BUILD_CONFIG_NR_SHIFT	0	/* number of regions - 1 */
#define TZC_GATE_KEEPER_OR_SHIFT	0	/* open request, one bit per filter */
#define TZC_GATE_KEEPER_OS_SHIFT	16	/* open status, one bit per filter */
#define TZC_GATE_KEEPER_STATUS_MASK	0xF0000

/* Per-filter fail registers: FAIL_x(f) = base + 0x10 * f */
#define TZC_FAIL_ADDRESS_LOW_0		0x020
#define TZC_FAIL_ADDRESS_HIGH_0		0x024
#define TZC_FAIL_CONTROL_0		0x028
#define TZC_FAIL_ID_0			0x02C
#define TZC_FAIL_STRIDE			0x10

/* Per-region registers: region n at TZC_REGION_BASE_LOW_0 + (n << TZC_REGION_SIZE_SHIFT) */
#define TZC_REGION_BASE_LOW_0		0x100
#define TZC_REGION_SIZE_SHIFT		5
#define TZC_REGION_BASE_LOW_OFF		0x00
#define TZC_REGION_BASE_HIGH_OFF	0x04
#define TZC_REGION_TOP_LOW_OFF		0x08
#define TZC_REGION_TOP_HIGH_OFF		0x0C
#define TZC_REGION_ATTR_OFF		0x10
#define TZC_REGION_ID_ACCESS_OFF	0x14

/* REGION_ATTRIBUTES fields and the drivers' value encodings */
#define TZC_REGION_ATTR_SEC_SHIFT	30
#define TZC_REGION_S_NONE		0
#define TZC_REGION_S_RD			1
#define TZC_REGION_S_WR			2
#define TZC_REGION_S_RDWR		3
#define TZC_REGION_ATTR_F_EN_MASK	0xF
#define TZC_REGION_ACCESS_RD(id)	(1U << ((id) & 0xF))
#define TZC_REGION_ACCESS_WR(id)	(1U << (((id) & 0xF) + 16))
#define TZC_REGION_ACCESS_RDWR(id)	(TZC_REGION_ACCESS_RD(id) | TZC_REGION_ACCESS_WR(id))

/* ACTION.reaction_value */
#define TZC_ACTION_NONE			0
#define TZC_ACTION_ERR			1
#define TZC_ACTION_INT			2
#define TZC_ACTION_ERR_INT		3

/* Regions the platform uses */
#define TZC_NUM_REGIONS			9
#define TZC_REGION_SECURE_DRAM		1	/* boot firewall: secure DRAM, secure only */
#define TZC_FIRST_PROTMEM_REGION	2	/* protected ranges take regions 2..8 */

#endif /* TZEMU_TEE_DRIVERS_TZC400_H */
