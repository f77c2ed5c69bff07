/* tzemu stand-in: <linux/ioctl.h> is the generic ioctl encoding. */
#include <uapi/asm-generic/ioctl.h>
