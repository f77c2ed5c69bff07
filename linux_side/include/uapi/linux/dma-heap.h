/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: allocating a dma-buf from /dev/dma_heap/<name>.
 * The protected heaps ("protected,secure-video", ...) use this same call.
 */
#ifndef _UAPI_LINUX_DMABUF_POOL_H
#define _UAPI_LINUX_DMABUF_POOL_H

#include <uapi/linux/types.h>
#include <uapi/asm-generic/ioctl.h>
#include <uapi/asm-generic/fcntl.h>

/* fd_flags may only hold close-on-exec and the access mode. */
#define DMA_HEAP_VALID_FD_FLAGS (O_CLOEXEC | O_ACCMODE)

/* No heap flags are defined: heap_flags must be zero. */
#define DMA_HEAP_VALID_HEAP_FLAGS (0ULL)

/*
 * len:        in, bytes wanted (non-zero; rounded up to a page by the core)
 * fd:         out, the new dma-buf fd (must be 0 on input)
 * fd_flags:   in, flags for that fd
 * heap_flags: in, must be 0
 */
struct dma_heap_allocation_data {
	__u64 len;
	__u32 fd;
	__u32 fd_flags;
	__u64 heap_flags;
};

#define DMA_HEAP_IOC_MAGIC		'H'

#define DMA_HEAP_IOCTL_ALLOC	_IOWR(DMA_HEAP_IOC_MAGIC, 0x0, \
				      struct dma_heap_allocation_data)

#endif /* _UAPI_LINUX_DMABUF_POOL_H */
