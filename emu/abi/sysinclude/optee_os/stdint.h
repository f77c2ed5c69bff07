/* tzemu stand-in: all of optee_os's libc/types headers map to one set of typedefs. */
#include <types.h>
