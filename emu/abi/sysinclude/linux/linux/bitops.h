/* tzemu stand-in: only the bit helpers of <linux/bitops.h> matter to ABI headers. */
#include <linux/bits.h>
