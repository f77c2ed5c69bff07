/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: GlobalPlatform TEE Internal API data types that cross
 * the TA <-> secure OS boundary.
 */
#ifndef __TZEMU_TEE_API_TYPES_H
#define __TZEMU_TEE_API_TYPES_H

#include <types.h>

typedef uint32_t TEE_Result;

/* 16 bytes; the first three fields are stored little-endian in memory */
typedef struct {
	uint32_t timeLow;
	uint16_t timeMid;
	uint16_t timeHiAndVersion;
	uint8_t clockSeqAndNode[8];
} TEE_UUID;

typedef struct {
	uint32_t seconds;
	uint32_t millis;
} TEE_Time;

/* Who is calling: login method plus the caller's UUID (20 bytes) */
typedef struct {
	uint32_t login;
	TEE_UUID uuid;
} TEE_Identity;

/* One TA entry-point parameter (16 bytes on AArch64) */
typedef union {
	struct {
		void *buffer;
		size_t size;
	} memref;
	struct {
		uint32_t a;
		uint32_t b;
	} value;
} TEE_Param;

/* Opaque handles; the TEE_PROPSET_* pseudo-handles are cast to this */
typedef struct __TEE_PropSetHandle *TEE_PropSetHandle;
typedef struct __TEE_TASessionHandle *TEE_TASessionHandle;

#endif /* __TZEMU_TEE_API_TYPES_H */
