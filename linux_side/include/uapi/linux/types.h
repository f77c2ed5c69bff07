/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: fixed-width integer types used by every user-space
 * ABI header below.  The emulated kernel is arm64, so the LP64 data model
 * applies: long and pointers are 8 bytes, long long is 8 bytes as well.
 */
#ifndef _UAPI_LINUX_TYPES_H
#define _UAPI_LINUX_TYPES_H

typedef signed char		__s8;
typedef unsigned char		__u8;
typedef signed short		__s16;
typedef unsigned short		__u16;
typedef signed int		__s32;
typedef unsigned int		__u32;
typedef signed long long	__s64;
typedef unsigned long long	__u64;

/* Little/big-endian annotated spellings carry no extra meaning for layout. */
typedef __u16 __le16;
typedef __u32 __le32;
typedef __u64 __le64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;

/*
 * A 64-bit field that keeps 8-byte alignment even where a 32-bit ABI would
 * relax it (on arm64 it changes nothing).
 */
typedef __u64 __aligned_u64 __attribute__((aligned(8)));

#endif /* _UAPI_LINUX_TYPES_H */
