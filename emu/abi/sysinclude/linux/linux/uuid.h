/* tzemu stand-in: a UUID is 16 bytes, byte aligned. */
#ifndef _LINUX_UUID_H
#define _LINUX_UUID_H
#include <linux/types.h>
#define UUID_SIZE	16
typedef struct {
	__u8 b[UUID_SIZE];
} uuid_t;
#endif
