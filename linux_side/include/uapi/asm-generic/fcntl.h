/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: the open(2) flag bits the DMA-heap uAPI checks.
 * Values are octal, as the generic fcntl ABI writes them.
 */
#ifndef _UAPI_ASM_GENERIC_FCNTL_H
#define _UAPI_ASM_GENERIC_FCNTL_H

#define O_ACCMODE	00000003	/* the two access-mode bits */
#define O_RDONLY	00000000
#define O_WRONLY	00000001
#define O_RDWR		00000002
#define O_DSYNC		00010000	/* synchronous data writes */
#define __O_SYNC	04000000
#define O_SYNC		(__O_SYNC | O_DSYNC)	/* synchronous writes (xtest opens heaps with it) */
#define O_CLOEXEC	02000000	/* close the fd on execve() */

#endif /* _UAPI_ASM_GENERIC_FCNTL_H */
