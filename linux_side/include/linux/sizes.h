/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu normal world: the SZ_* size names of include/linux/sizes.h that the
 * FF-A driver uses for its RX/TX buffer sizes.
 */
#ifndef __LINUX_SIZES_H__
#define __LINUX_SIZES_H__

#define SZ_4K				0x00001000
#define SZ_16K				0x00004000
#define SZ_64K				0x00010000

#endif /* __LINUX_SIZES_H__ */
