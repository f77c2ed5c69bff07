/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tzemu secure world: what a memory object is used for.  NS_SHM is both
 * plain shared memory and the target when protection is lifted again.
 */
#ifndef __TZEMU_MOBJ_USE_CASE_H
#define __TZEMU_MOBJ_USE_CASE_H

enum mobj_use_case {
	MOBJ_USE_CASE_NS_SHM = 0,
	MOBJ_USE_CASE_SEC_VIDEO_PLAY = 1,
	/* spelled without the second T in the secure OS sources */
	MOBJ_USE_CASE_TRUSED_UI = 2,
};

/* Correctly spelled alias of the trusted-UI use case */
#define MOBJ_USE_CASE_TRUSTED_UI	MOBJ_USE_CASE_TRUSED_UI

#endif /* __TZEMU_MOBJ_USE_CASE_H */
