/* tzemu stand-in: kernel device-model objects.  ABI headers only point to them, but the
 * driver structures of <linux/arm_ffa.h> (struct ffa_device, struct ffa_driver) embed a
 * struct device / struct device_driver by value, so the two need a body to be complete.
 * Their real contents depend on the kernel configuration and are no part of any ABI: the
 * bodies are empty (GNU C, size 0), so the layout of a structure embedding one is a
 * placeholder, not the kernel's.  struct bus_type stays opaque. */
#ifndef _LINUX_DEVICE_H
#define _LINUX_DEVICE_H

/* What the kernel's <linux/device.h> brings in through its own includes and
 * <linux/arm_ffa.h> uses without including it: FIELD_PREP/FIELD_GET (and BIT/GENMASK)
 * for the version and handle encodings, SZ_4K for FFA_PAGE_SIZE. */
#include <linux/bitfield.h>
#include <linux/sizes.h>

struct device {
};
struct device_driver {
};
struct bus_type;
#endif
