/* tzemu stand-in: arm64 uses the generic ioctl encoding. */
#include <uapi/asm-generic/ioctl.h>
