/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: fixed-width integer types for the secure OS and its
 * TAs (AArch64, LP64: long and pointers are 64-bit).
 */
#ifndef __TZEMU_TEE_TYPES_H
#define __TZEMU_TEE_TYPES_H

typedef signed char		int8_t;
typedef unsigned char		uint8_t;
typedef short			int16_t;
typedef unsigned short		uint16_t;
typedef int			int32_t;
typedef unsigned int		uint32_t;
typedef long			int64_t;
typedef unsigned long		uint64_t;

typedef unsigned long		uintptr_t;
typedef long			intptr_t;
typedef unsigned long		size_t;
typedef long			ssize_t;

/* Secure OS address types */
typedef uintptr_t		vaddr_t;
typedef uintptr_t		paddr_t;
typedef uintptr_t		paddr_size_t;

/* Literal suffix helpers, as <stdint.h> spells them */
#define UINT32_C(c)		c ## U
#define UINT64_C(c)		c ## UL
#define INT64_C(c)		c ## L

#define UINT32_MAX		0xffffffffU
#define UINT64_MAX		0xffffffffffffffffUL
#define INT32_MAX		0x7fffffff

typedef _Bool			bool;
#define true			1
#define false			0

#endif /* __TZEMU_TEE_TYPES_H */
