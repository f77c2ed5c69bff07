/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: single-bit and bit-range helpers.
 *
 * BIT() yields an unsigned long (64-bit on arm64); the _ULL forms always
 * yield unsigned long long.  GENMASK(h, l) sets bits h..l inclusive.
 */
#ifndef _LINUX_BITS_H
#define _LINUX_BITS_H

#define BITS_PER_LONG		64
#define BITS_PER_LONG_LONG	64

#define BIT(nr)			(1UL << (nr))
#define BIT_ULL(nr)		(1ULL << (nr))

/* All-ones shifted up to bit l, intersected with all-ones shifted down to bit h. */
#define GENMASK(h, l) \
	((~0UL << (l)) & (~0UL >> (BITS_PER_LONG - 1 - (h))))
#define GENMASK_ULL(h, l) \
	((~0ULL << (l)) & (~0ULL >> (BITS_PER_LONG_LONG - 1 - (h))))

#endif /* _LINUX_BITS_H */
