/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: constants of the in-kernel TEE core that a driver
 * (the OP-TEE driver) and the protected-heap code share.
 */
#ifndef __TEE_CORE_H
#define __TEE_CORE_H

#include <linux/types.h>
#include <linux/bits.h>
#include <uapi/linux/tee.h>

/* struct tee_shm.flags */
#define TEE_SHM_DYNAMIC		BIT(0)	/* known to the secure world by registration */
#define TEE_SHM_USER_MAPPED	BIT(1)	/* backed by user-space pages */
#define TEE_SHM_POOL		BIT(2)	/* carved from a shm pool */
#define TEE_SHM_PRIV		BIT(3)	/* used by the driver itself */
#define TEE_SHM_DMA_BUF		BIT(4)	/* wraps a registered dma-buf */
#define TEE_SHM_DMA_MEM		BIT(5)	/* pages from dma_alloc_pages() */

/* struct tee_device.flags */
#define TEE_DEVICE_FLAG_REGISTERED	0x1

#define TEE_MAX_DEV_NAME_LEN		32

/* struct tee_desc.flags: the device is the supplicant's privileged one */
#define TEE_DESC_PRIVILEGED		0x1

/*
 * Protected DMA heaps a TEE driver may register.  The numbers double as the
 * OP-TEE protected-memory use case handed to the secure world.
 */
enum tee_dma_heap_id {
	TEE_DMA_HEAP_SECURE_VIDEO_PLAY = 1,	/* "protected,secure-video" */
	TEE_DMA_HEAP_TRUSTED_UI,		/* "protected,trusted-ui" */
	TEE_DMA_HEAP_SECURE_VIDEO_RECORD,	/* "protected,secure-video-record" */
};

#endif /* __TEE_CORE_H */
