/* tzemu stand-in: the bit helpers optee_os ABI headers use (BIT is 32-bit there). */
#ifndef __TZEMU_UTIL_H
#define __TZEMU_UTIL_H

#include <types.h>

#define U(v)			UINT32_C(v)
#define UL(v)			UINT64_C(v)
#define BIT32(nr)		(UINT32_C(1) << (nr))
#define BIT64(nr)		(UINT64_C(1) << (nr))
#define BIT(nr)			BIT32(nr)
#define SHIFT_U32(v, shift)	((uint32_t)(v) << (shift))
#define SHIFT_U64(v, shift)	((uint64_t)(v) << (shift))
#define GENMASK_32(h, l) \
	((UINT32_C(0xffffffff) << (l)) & (UINT32_C(0xffffffff) >> (31 - (h))))
#define GENMASK_64(h, l) \
	((UINT64_C(0xffffffffffffffff) << (l)) & (UINT64_C(0xffffffffffffffff) >> (63 - (h))))

#endif
