/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: how an ioctl request number is put together on arm64
 * (the "generic" encoding, also used by x86 and riscv).
 *
 *   31..30  direction (none 0, write 1, read 2, both 3)
 *   29..16  size in bytes of the argument struct
 *   15..8   type ("magic") byte
 *    7..0   command number
 */
#ifndef _UAPI_ASM_GENERIC_IOCTL_H
#define _UAPI_ASM_GENERIC_IOCTL_H

#define _IOC_NRBITS	8
#define _IOC_TYPEBITS	8
#define _IOC_SIZEBITS	14
#define _IOC_DIRBITS	2

#define _IOC_NRMASK	((1 << _IOC_NRBITS) - 1)
#define _IOC_TYPEMASK	((1 << _IOC_TYPEBITS) - 1)
#define _IOC_SIZEMASK	((1 << _IOC_SIZEBITS) - 1)
#define _IOC_DIRMASK	((1 << _IOC_DIRBITS) - 1)

#define _IOC_NRSHIFT	0
#define _IOC_TYPESHIFT	(_IOC_NRSHIFT + _IOC_NRBITS)
#define _IOC_SIZESHIFT	(_IOC_TYPESHIFT + _IOC_TYPEBITS)
#define _IOC_DIRSHIFT	(_IOC_SIZESHIFT + _IOC_SIZEBITS)

/* Direction values are unsigned so that "read" shifted to bit 31 stays positive. */
#define _IOC_NONE	0U
#define _IOC_WRITE	1U
#define _IOC_READ	2U

#define _IOC(dir, type, nr, size)			\
	(((dir)  << _IOC_DIRSHIFT)  |			\
	 ((type) << _IOC_TYPESHIFT) |			\
	 ((nr)   << _IOC_NRSHIFT)   |			\
	 ((size) << _IOC_SIZESHIFT))

#define _IOC_TYPECHECK(t)	(sizeof(t))

/* Request builders: the last argument is the argument's C type. */
#define _IO(type, nr)		_IOC(_IOC_NONE, (type), (nr), 0)
#define _IOR(type, nr, argtype)	_IOC(_IOC_READ, (type), (nr), (_IOC_TYPECHECK(argtype)))
#define _IOW(type, nr, argtype)	_IOC(_IOC_WRITE, (type), (nr), (_IOC_TYPECHECK(argtype)))
#define _IOWR(type, nr, argtype) \
	_IOC(_IOC_READ | _IOC_WRITE, (type), (nr), (_IOC_TYPECHECK(argtype)))

/* Direction bits already in place, as drivers test them against a request. */
#define IOC_IN		(_IOC_WRITE << _IOC_DIRSHIFT)
#define IOC_OUT		(_IOC_READ << _IOC_DIRSHIFT)
#define IOC_INOUT	((_IOC_WRITE | _IOC_READ) << _IOC_DIRSHIFT)

/* Field extractors for a request number. */
#define _IOC_DIR(req)	(((req) >> _IOC_DIRSHIFT) & _IOC_DIRMASK)
#define _IOC_TYPE(req)	(((req) >> _IOC_TYPESHIFT) & _IOC_TYPEMASK)
#define _IOC_NR(req)	(((req) >> _IOC_NRSHIFT) & _IOC_NRMASK)
#define _IOC_SIZE(req)	(((req) >> _IOC_SIZESHIFT) & _IOC_SIZEMASK)

#endif /* _UAPI_ASM_GENERIC_IOCTL_H */
