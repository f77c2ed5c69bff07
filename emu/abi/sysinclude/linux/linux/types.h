/* tzemu stand-in: the kernel-internal short integer names and bool. */
#ifndef _LINUX_TYPES_H
#define _LINUX_TYPES_H

#include <uapi/linux/types.h>

typedef __s8	s8;
typedef __u8	u8;
typedef __s16	s16;
typedef __u16	u16;
typedef __s32	s32;
typedef __u32	u32;
typedef __s64	s64;
typedef __u64	u64;

typedef _Bool		bool;
typedef unsigned long	size_t;
typedef unsigned long	uintptr_t;
typedef u64		phys_addr_t;

#endif
