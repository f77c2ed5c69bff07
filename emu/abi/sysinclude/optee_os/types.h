/* tzemu stand-in: fixed-width integers of the AArch64 LP64 target, as <stdint.h> gives them. */
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
typedef _Bool			bool;

typedef uintptr_t		vaddr_t;
typedef uintptr_t		paddr_t;
typedef uintptr_t		paddr_size_t;

#define UINT32_C(c)		c ## U
#define UINT64_C(c)		c ## UL
#define INT64_C(c)		c ## L
#define UINT32_MAX		0xffffffffU
#define UINT64_MAX		0xffffffffffffffffUL
#define true			1
#define false			0

#endif
