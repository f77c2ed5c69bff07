/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu EL3 firmware: typed-constant and bit helpers (AArch64, LP64).
 */
#ifndef __TZEMU_UTILS_DEF_H
#define __TZEMU_UTILS_DEF_H

/* Give a literal an unsigned int / unsigned long / unsigned long long type */
#define U(_x)		(_x##U)
#define UL(_x)		(_x##UL)
#define ULL(_x)		(_x##ULL)
#define L(_x)		(_x##L)
#define LL(_x)		(_x##LL)

#define BIT_32(nr)	(U(1) << (nr))
#define BIT_64(nr)	(ULL(1) << (nr))
#define BIT(nr)		BIT_64(nr)

/* Bits h..l inclusive */
#define GENMASK_32(h, l) \
	((~U(0) << (l)) & (~U(0) >> (32 - 1 - (h))))
#define GENMASK_64(h, l) \
	((~ULL(0) << (l)) & (~ULL(0) >> (64 - 1 - (h))))
#define GENMASK(h, l)	GENMASK_64(h, l)

#endif /* __TZEMU_UTILS_DEF_H */
