/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: bit helpers in the secure OS's own spelling.
 *
 * BIT() is 32-bit here (unlike Linux, where it is unsigned long); the
 * explicit BIT32/BIT64 and GENMASK_32/GENMASK_64 forms pick the width.
 */
#ifndef __TZEMU_UTIL_H
#define __TZEMU_UTIL_H

#include <types.h>

/* Typed constants */
#define U(v)		UINT32_C(v)
#define UL(v)		UINT64_C(v)

#define BIT32(nr)	(UINT32_C(1) << (nr))
#define BIT64(nr)	(UINT64_C(1) << (nr))
#define BIT(nr)		BIT32(nr)

/* Shift a value after widening it to 32 or 64 bits */
#define SHIFT_U32(v, shift)	((uint32_t)(v) << (shift))
#define SHIFT_U64(v, shift)	((uint64_t)(v) << (shift))

/* Bits h..l inclusive set */
#define GENMASK_32(h, l) \
	((~UINT32_C(0) << (l)) & (~UINT32_C(0) >> (32 - 1 - (h))))
#define GENMASK_64(h, l) \
	((~UINT64_C(0) << (l)) & (~UINT64_C(0) >> (64 - 1 - (h))))

#endif /* __TZEMU_UTIL_H */
