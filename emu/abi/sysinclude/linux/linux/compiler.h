/* tzemu stand-in: the attribute shorthands kernel headers use; only packed/aligned
 * change layouts, the address-space markers expand to nothing. */
#ifndef _LINUX_COMPILER_H
#define _LINUX_COMPILER_H

#define __packed		__attribute__((packed))
#define __aligned(x)		__attribute__((aligned(x)))
#define __user
#define __kernel
#define __iomem
#define __force
#define __must_check
#define __maybe_unused		__attribute__((unused))
#define __always_inline		inline

#endif
