/* tzemu stand-in */
#include <linux/compiler.h>
