/* SPDX-License-Identifier: Apache-2.0 */
/*
 * syscall_conformance_ta: command ids and result-array layouts, shared by
 * the TA (syscall_conformance_ta.c) and its test (tests/ta/test_c_ta.py
 * reads the #defines below).  Plain "#define NAME number" lines only.
 */
#ifndef SYSCALL_CONFORMANCE_TA_H
#define SYSCALL_CONFORMANCE_TA_H

/* Commands */
#define CMD_GET_PROPERTY	0	/* VALUE_IN set, MEMREF_IN name, MEMREF_OUT value, VALUE_OUT type/index */
#define CMD_CHECK_APPID		1	/* NONE: gpd.ta.appID == ta_head.uuid */
#define CMD_GET_TIME		2	/* VALUE_IN category, VALUE_OUT seconds/millis */
#define CMD_RANDOM		3	/* MEMREF_OUT */
#define CMD_CANCELLATION	4	/* VALUE_OUT (flag, old mask), VALUE_OUT (flag, old mask) */
#define CMD_WAIT		5	/* VALUE_IN ms, VALUE_OUT elapsed system ms */
#define CMD_CHECK_ACCESS	6	/* MEMREF_INOUT, MEMREF_OUT u32 results[ACCESS_RESULTS] */
#define CMD_CACHE_OPS		7	/* MEMREF_INOUT, MEMREF_OUT u32 results[CACHE_RESULTS] */
#define CMD_TA2TA_ECHO		8	/* VALUE_INOUT, MEMREF_IN, MEMREF_OUT, VALUE_OUT origin/session */
#define CMD_TA2PTA		9	/* MEMREF_IN, MEMREF_OUT, MEMREF_OUT u32 results[PTA_RESULTS] */
#define CMD_PANIC		10	/* any: TEE_Panic(PANIC_CODE) */
#define CMD_BAD_POINTER		11	/* VALUE_IN (BAD_*, BAD_ADDR_*), VALUE_IN address lo/hi */
#define CMD_RUNTIME_INFO	12	/* VALUE_OUT entries/open sessions, VALUE_OUT flags/data word */
#define CMD_LOG			13	/* NONE: one LOG syscall */
#define CMD_SET_TA_TIME		14	/* VALUE_IN seconds/millis: SET_TA_TIME */
#define NUM_CMDS		15

#define PANIC_CODE		0xC0FFEE01

/* CMD_CHECK_ACCESS results */
#define ACC_STACK_RW		0
#define ACC_DATA_RW		1
#define ACC_BSS_RW		2
#define ACC_RODATA_R		3
#define ACC_RODATA_W		4
#define ACC_TEXT_R		5
#define ACC_PARAM_PRIVATE	6
#define ACC_PARAM_ANY_OWNER	7
#define ACC_PARAM_SECURE	8
#define ACC_PARAM_NONSECURE	9
#define ACC_STACK_NONSECURE	10
#define ACC_NULL		11
#define ACC_BOTH_WORLDS		12
#define ACC_SIZE_ZERO		13
#define ACC_HUGE		14
#define ACC_WRAP		15
#define ACCESS_RESULTS		16

/* CMD_CACHE_OPS results */
#define CACHE_CLEAN		0
#define CACHE_FLUSH		1
#define CACHE_INVALIDATE	2
#define CACHE_BAD_OP		3
#define CACHE_PRIVATE		4
#define CACHE_UNMAPPED		5
#define CACHE_RESULTS		6

/* CMD_TA2PTA results (invoke_tests PTA, tee_os/pta.py) */
#define PTA_CMD_TRACE			0
#define PTA_CMD_COPY_NSEC_TO_SEC	3
#define PTA_CMD_READ_MODIFY_SEC		4
#define PTA_OPEN		0
#define PTA_TRACE		1
#define PTA_TRACE_ORIGIN	2
#define PTA_SHORT		3
#define PTA_SHORT_NEEDED	4
#define PTA_NONSECURE_DST	5
#define PTA_PRIVATE		6
#define PTA_UNKNOWN		7
#define PTA_CLOSE		8
#define PTA_CLOSE_AGAIN		9
#define PTA_RESULTS		10

/* CMD_BAD_POINTER: which syscall gets the address (value[0].a) */
#define BAD_RANDOM		0
#define BAD_GET_TIME_SYSTEM	1
#define BAD_GET_TIME_REE	2
#define BAD_PROPERTY_NAME	3
#define BAD_PROPERTY_VALUE_LEN	4
#define BAD_CANCELLATION_FLAG	5
#define BAD_LOG			6
#define BAD_OPEN_SESSION_UUID	7
#define BAD_INVOKE_PARAMS	8
#define BAD_UNSUPPORTED_SYSCALL	9	/* value[1].a = syscall number */
#define BAD_SET_TA_TIME		10
/* and where the address comes from (value[0].b) */
#define BAD_ADDR_GIVEN		0	/* value[1] */
#define BAD_ADDR_OWN_RODATA	1
#define BAD_ADDR_OWN_TEXT	2

#endif /* SYSCALL_CONFORMANCE_TA_H */
