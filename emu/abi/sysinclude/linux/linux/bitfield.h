/* tzemu stand-in: place/extract a value in the bit field a contiguous mask selects. */
#ifndef _LINUX_BITFIELD_H
#define _LINUX_BITFIELD_H

#include <linux/bits.h>

#define FIELD_PREP(mask, val)	(((val) << __builtin_ctzll(mask)) & (mask))
#define FIELD_GET(mask, reg)	(((reg) & (mask)) >> __builtin_ctzll(mask))
#define FIELD_MAX(mask)		((mask) >> __builtin_ctzll(mask))

#endif
