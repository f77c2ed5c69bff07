// SPDX-License-Identifier: Apache-2.0
/*
 * tzemu TA runtime: the 32-byte ta_head the loader finds through the
 * dynamic symbol "ta_head" (section .ta_head).  ta/toolchain.py passes the
 * manifest entry's values: TA_UUID_INIT (a TEE_UUID initializer),
 * TA_STACK_SIZE and TA_FLAGS.
 */
#include <tee_ta_api.h>

#if !defined(TA_UUID_INIT) || !defined(TA_STACK_SIZE) || !defined(TA_FLAGS)
#error "build with -DTA_UUID_INIT=... -DTA_STACK_SIZE=... -DTA_FLAGS=..."
#endif

__attribute__((section(".ta_head"), used, visibility("default")))
const struct ta_head ta_head = {
	.uuid = TA_UUID_INIT,
	.stack_size = TA_STACK_SIZE,
	.flags = TA_FLAGS,
	.depr_entry = UINT64_MAX,
};
