/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EL3's description of the TZC-400 (CoreLink TZC-400 TRM): what boot firmware needs to set up
 * the boot-time firewall before anything runs from DRAM.
 */
#ifndef TZEMU_FW_TZC400_H
#define TZEMU_FW_TZC400_H

#define TZC400_BUILD_CONFIG		0x000
#define TZC400_ACTION			0x004
#define TZC400_GATE_KEEPER		0x008
#define TZC400_REGION_BASE_LOW(n)	(0x100 + 0x20 * (n))
#define TZC400_REGION_BASE_HIGH(n)	(0x104 + 0x20 * (n))
#define TZC400_REGION_TOP_LOW(n)	(0x108 + 0x20 * (n))
#define TZC400_REGION_TOP_HIGH(n)	(0x10C + 0x20 * (n))
#define TZC400_REGION_ATTRIBUTES(n)	(0x110 + 0x20 * (n))
#define TZC400_REGION_ID_ACCESS(n)	(0x114 + 0x20 * (n))

#define TZC_REGION_ATTR_SEC_SHIFT	30
#define TZC_REGION_S_NONE		0
#define TZC_REGION_S_RDWR		3
#define TZC_REGION_ACCESS_RDWR(id)	((1U << ((id) & 0xF)) | (1U << (((id) & 0xF) + 16)))
#define TZC_ACTION_ERR			1
#define TZC_ACTION_ERR_INT		3
#define TZC_GATE_KEEPER_OS_SHIFT	16

/* Region layout of the platform (tzemu "option A": region 0 is the normal-world background). */
#define PLAT_TZC_REGION_NS_BACKGROUND	0
#define PLAT_TZC_REGION_SECURE_DRAM	1

#endif /* TZEMU_FW_TZC400_H */
