// SPDX-License-Identifier: Apache-2.0
/*
 * syscall_conformance_ta: a C Trusted Application, built by ta/toolchain.py
 * with the GNU cross toolchain against the project's own runtime
 * (ta/runtime), that drives the secure OS's syscall layer one behaviour per
 * command.  tests/ta/test_c_ta.py checks every answer from the normal world.
 *
 * Commands dispatch through cmd_table, a table of function pointers in .data
 * (R_AARCH64_RELATIVE entries in .rela.dyn); TA_CreateEntryPoint and
 * CMD_RUNTIME_INFO reach the runtime's globals tz_ta_runtime and ta_head
 * through the GOT (entries in .rela.got).  A loader that skips either table
 * leaves absolute addresses unrelocated and the TA faults.
 */
#include <tee_ta_api.h>

#include "syscall_conformance_ta.h"

#define SESSION_MAGIC	0x53455353u	/* "SESS" */
#define MAX_CTX		8

#define TYPES(a, b, c, d)	TEE_PARAM_TYPES(TEE_PARAM_TYPE_##a, \
		TEE_PARAM_TYPE_##b, TEE_PARAM_TYPE_##c, TEE_PARAM_TYPE_##d)
#define PTR(p)		((uint64_t)(uintptr_t)(p))
#define RW		(TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_WRITE)

typedef TEE_Result (*cmd_fn)(uint32_t types, TEE_Param p[TEE_NUM_PARAMS]);

struct session_ctx {
	uint32_t magic;
	uint32_t invokes;
};

static struct session_ctx ctx_pool[MAX_CTX];		/* .bss */
static uint32_t data_word = 0x600DDA7Au;		/* .data */
static const char rodata_text[] = "conformance rodata";	/* .rodata */

static const TEE_UUID echo_uuid = {
	0x7a1f0c8e, 0x3d4b, 0x4c6a,
	{ 0x9e, 0x2f, 0x5b, 0x8d, 0x1c, 0x0e, 0x7f, 0x31 } };
static const TEE_UUID invoke_tests_uuid = {
	0xd96a5b40, 0xc3e5, 0x21e3,
	{ 0x87, 0x94, 0x10, 0x02, 0xa5, 0xd5, 0xc6, 0x1b } };

/* ------------------------------------------------------------------ props */

static TEE_Result cmd_get_property(uint32_t types, TEE_Param p[4])
{
	char name[128];
	uint32_t index = 0, ptype = 0, vlen;
	size_t nlen;
	TEE_Result res;

	if (types != TYPES(VALUE_INPUT, MEMREF_INPUT, MEMREF_OUTPUT, VALUE_OUTPUT))
		return TEE_ERROR_BAD_PARAMETERS;
	nlen = p[1].memref.size;
	if (nlen >= sizeof(name))
		return TEE_ERROR_BAD_PARAMETERS;
	memcpy(name, p[1].memref.buffer, nlen);
	name[nlen] = '\0';
	res = tz_sys_get_property_name_to_index(p[0].value.a, PTR(name),
						nlen + 1, PTR(&index));
	if (res != TEE_SUCCESS)
		return res;
	vlen = (uint32_t)p[2].memref.size;
	res = tz_sys_get_property(p[0].value.a, index, 0, 0,
				  PTR(p[2].memref.buffer), PTR(&vlen),
				  PTR(&ptype));
	p[2].memref.size = vlen;
	p[3].value.a = ptype;
	p[3].value.b = index;
	return res;
}

/* gpd.ta.appID must be this TA's own ta_head.uuid (read through the GOT) */
static TEE_Result cmd_check_appid(uint32_t types, TEE_Param p[4])
{
	static const char name[] = "gpd.ta.appID";
	TEE_UUID got;
	uint32_t index, len = sizeof(got), ptype;
	TEE_Result res;

	if (types != TYPES(NONE, NONE, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	res = tz_sys_get_property_name_to_index(
		(uint64_t)(uintptr_t)TEE_PROPSET_CURRENT_TA, PTR(name),
		sizeof(name), PTR(&index));
	if (res != TEE_SUCCESS)
		return res;
	res = tz_sys_get_property((uint64_t)(uintptr_t)TEE_PROPSET_CURRENT_TA,
				  index, 0, 0, PTR(&got), PTR(&len), PTR(&ptype));
	if (res != TEE_SUCCESS)
		return res;
	if (len != sizeof(TEE_UUID) || ptype != USER_TA_PROP_TYPE_UUID ||
	    memcmp(&got, &ta_head.uuid, sizeof(got)))
		return TEE_ERROR_GENERIC;
	return TEE_SUCCESS;
}

/* ------------------------------------------------------------- time, rng */

static TEE_Result cmd_get_time(uint32_t types, TEE_Param p[4])
{
	TEE_Time t = { 0, 0 };
	TEE_Result res;

	if (types != TYPES(VALUE_INPUT, VALUE_OUTPUT, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	res = tz_sys_get_time(p[0].value.a, PTR(&t));
	p[1].value.a = t.seconds;
	p[1].value.b = t.millis;
	return res;
}

static TEE_Result cmd_set_ta_time(uint32_t types, TEE_Param p[4])
{
	TEE_Time t;

	if (types != TYPES(VALUE_INPUT, NONE, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	t.seconds = p[0].value.a;
	t.millis = p[0].value.b;
	return tz_sys_set_ta_time(PTR(&t));
}

static TEE_Result cmd_random(uint32_t types, TEE_Param p[4])
{
	if (types != TYPES(MEMREF_OUTPUT, NONE, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	return tz_sys_cryp_random_number_generate(PTR(p[0].memref.buffer),
						  p[0].memref.size);
}

/* ------------------------------------------------- cancellation and wait */

static TEE_Result cmd_cancellation(uint32_t types, TEE_Param p[4])
{
	uint32_t flag1 = 7, flag2 = 7, old_unmask = 7, old_mask = 7;
	TEE_Result res;

	if (types != TYPES(VALUE_OUTPUT, VALUE_OUTPUT, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	res = tz_sys_get_cancellation_flag(PTR(&flag1));
	if (res == TEE_SUCCESS)
		res = tz_sys_unmask_cancellation(PTR(&old_unmask));
	if (res == TEE_SUCCESS)
		res = tz_sys_get_cancellation_flag(PTR(&flag2));
	if (res == TEE_SUCCESS)
		res = tz_sys_mask_cancellation(PTR(&old_mask));
	p[0].value.a = flag1;
	p[0].value.b = old_unmask;
	p[1].value.a = flag2;
	p[1].value.b = old_mask;
	return res;
}

static uint64_t system_ms(void)
{
	TEE_Time t = { 0, 0 };

	if (tz_sys_get_time(UTEE_TIME_CAT_SYSTEM, PTR(&t)) != TEE_SUCCESS)
		TEE_Panic(TEE_ERROR_GENERIC);
	return (uint64_t)t.seconds * 1000 + t.millis;
}

static TEE_Result cmd_wait(uint32_t types, TEE_Param p[4])
{
	uint64_t before, after;
	TEE_Result res;

	if (types != TYPES(VALUE_INPUT, VALUE_OUTPUT, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	before = system_ms();
	res = tz_sys_wait(p[0].value.a);
	after = system_ms();
	p[1].value.a = (uint32_t)(after - before);
	p[1].value.b = 0;
	return res;
}

/* ------------------------------------------------------- access rights */

static TEE_Result put_results(TEE_Param *out, const uint32_t *r, size_t n)
{
	if (out->memref.size < n * sizeof(uint32_t)) {
		out->memref.size = n * sizeof(uint32_t);
		return TEE_ERROR_SHORT_BUFFER;
	}
	memcpy(out->memref.buffer, r, n * sizeof(uint32_t));
	out->memref.size = n * sizeof(uint32_t);
	return TEE_SUCCESS;
}

static TEE_Result cmd_check_access(uint32_t types, TEE_Param p[4])
{
	volatile uint32_t on_stack = 1;
	uint64_t buf = PTR(p[0].memref.buffer), len = p[0].memref.size;
	uint32_t r[ACCESS_RESULTS];

	if (types != TYPES(MEMREF_INOUT, MEMREF_OUTPUT, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	r[ACC_STACK_RW] = tz_sys_check_access_rights(RW, PTR(&on_stack), 4);
	r[ACC_DATA_RW] = tz_sys_check_access_rights(RW, PTR(&data_word), 4);
	r[ACC_BSS_RW] = tz_sys_check_access_rights(RW, PTR(ctx_pool), sizeof(ctx_pool));
	r[ACC_RODATA_R] = tz_sys_check_access_rights(TEE_MEMORY_ACCESS_READ,
						     PTR(rodata_text), sizeof(rodata_text));
	r[ACC_RODATA_W] = tz_sys_check_access_rights(RW, PTR(rodata_text),
						     sizeof(rodata_text));
	r[ACC_TEXT_R] = tz_sys_check_access_rights(TEE_MEMORY_ACCESS_READ,
						   PTR(cmd_check_access), 16);
	r[ACC_PARAM_PRIVATE] = tz_sys_check_access_rights(RW, buf, len);
	r[ACC_PARAM_ANY_OWNER] = tz_sys_check_access_rights(
		RW | TEE_MEMORY_ACCESS_ANY_OWNER, buf, len);
	r[ACC_PARAM_SECURE] = tz_sys_check_access_rights(
		TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_ANY_OWNER |
		TEE_MEMORY_ACCESS_SECURE, buf, len);
	r[ACC_PARAM_NONSECURE] = tz_sys_check_access_rights(
		TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_ANY_OWNER |
		TEE_MEMORY_ACCESS_NONSECURE, buf, len);
	r[ACC_STACK_NONSECURE] = tz_sys_check_access_rights(
		TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_NONSECURE,
		PTR(&on_stack), 4);
	r[ACC_NULL] = tz_sys_check_access_rights(TEE_MEMORY_ACCESS_READ, 0, 4);
	r[ACC_BOTH_WORLDS] = tz_sys_check_access_rights(
		TEE_MEMORY_ACCESS_READ | TEE_MEMORY_ACCESS_SECURE |
		TEE_MEMORY_ACCESS_NONSECURE, PTR(&on_stack), 4);
	r[ACC_SIZE_ZERO] = tz_sys_check_access_rights(RW, 0, 0);
	r[ACC_HUGE] = tz_sys_check_access_rights(TEE_MEMORY_ACCESS_READ,
						 PTR(rodata_text), 1ULL << 40);
	r[ACC_WRAP] = tz_sys_check_access_rights(TEE_MEMORY_ACCESS_READ,
						 PTR(rodata_text), ~0ULL);
	return put_results(&p[1], r, ACCESS_RESULTS);
}

static TEE_Result cmd_cache_ops(uint32_t types, TEE_Param p[4])
{
	uint64_t buf = PTR(p[0].memref.buffer), len = p[0].memref.size;
	uint32_t r[CACHE_RESULTS];

	if (types != TYPES(MEMREF_INOUT, MEMREF_OUTPUT, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	r[CACHE_CLEAN] = tz_sys_cache_operation(buf, len, TEE_CACHECLEAN);
	r[CACHE_FLUSH] = tz_sys_cache_operation(buf, len, TEE_CACHEFLUSH);
	r[CACHE_INVALIDATE] = tz_sys_cache_operation(buf, len, TEE_CACHEINVALIDATE);
	r[CACHE_BAD_OP] = tz_sys_cache_operation(buf, len, 7);
	r[CACHE_PRIVATE] = tz_sys_cache_operation(PTR(ctx_pool), sizeof(ctx_pool),
						  TEE_CACHECLEAN);
	r[CACHE_UNMAPPED] = tz_sys_cache_operation(0, 16, TEE_CACHECLEAN);
	return put_results(&p[1], r, CACHE_RESULTS);
}

/* ------------------------------------------------- TA-to-TA, TA-to-PTA */

static void set_memref(struct utee_params *up, int n, uint32_t type,
		       const TEE_Param *from)
{
	up->types |= (uint64_t)type << (4 * n);
	up->vals[2 * n] = PTR(from->memref.buffer);
	up->vals[2 * n + 1] = from->memref.size;
}

static TEE_Result cmd_ta2ta_echo(uint32_t types, TEE_Param p[4])
{
	struct utee_params up;
	uint32_t sess = 0, origin = 0;
	TEE_Result res;

	if (types != TYPES(VALUE_INOUT, MEMREF_INPUT, MEMREF_OUTPUT, VALUE_OUTPUT))
		return TEE_ERROR_BAD_PARAMETERS;
	memset(&up, 0, sizeof(up));
	res = tz_sys_open_ta_session(PTR(&echo_uuid), 0, PTR(&up), PTR(&sess),
				     PTR(&origin));
	p[3].value.a = origin;
	p[3].value.b = sess;
	if (res != TEE_SUCCESS)
		return res;
	/* echo command 0: VALUE_INOUT a += 1, b += 1 */
	memset(&up, 0, sizeof(up));
	up.types = TEE_PARAM_TYPE_VALUE_INOUT;
	up.vals[0] = p[0].value.a;
	up.vals[1] = p[0].value.b;
	res = tz_sys_invoke_ta_command(sess, 0, 0, PTR(&up), PTR(&origin));
	if (res == TEE_SUCCESS) {
		p[0].value.a = (uint32_t)up.vals[0];
		p[0].value.b = (uint32_t)up.vals[1];
		/* echo command 1: copy our input memref into our output memref */
		memset(&up, 0, sizeof(up));
		set_memref(&up, 0, TEE_PARAM_TYPE_MEMREF_INPUT, &p[1]);
		set_memref(&up, 1, TEE_PARAM_TYPE_MEMREF_OUTPUT, &p[2]);
		res = tz_sys_invoke_ta_command(sess, 0, 1, PTR(&up), PTR(&origin));
		p[2].memref.size = up.vals[3];
	}
	p[3].value.a = origin;
	if (tz_sys_close_ta_session(sess) != TEE_SUCCESS && res == TEE_SUCCESS)
		res = TEE_ERROR_GENERIC;
	return res;
}

static TEE_Result cmd_ta2pta(uint32_t types, TEE_Param p[4])
{
	struct utee_params up;
	uint32_t sess = 0, origin = 0, r[PTA_RESULTS];
	TEE_Param small = p[1];

	if (types != TYPES(MEMREF_INPUT, MEMREF_OUTPUT, MEMREF_OUTPUT, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	memset(&up, 0, sizeof(up));
	r[PTA_OPEN] = tz_sys_open_ta_session(PTR(&invoke_tests_uuid), 0, PTR(&up),
					     PTR(&sess), PTR(&origin));
	if (r[PTA_OPEN] != TEE_SUCCESS)
		return r[PTA_OPEN];
	memset(&up, 0, sizeof(up));
	r[PTA_TRACE] = tz_sys_invoke_ta_command(sess, 0, PTA_CMD_TRACE, PTR(&up),
						PTR(&origin));
	r[PTA_TRACE_ORIGIN] = origin;
	/* COPY_NSEC_TO_SEC with a destination one byte short: SHORT_BUFFER */
	small.memref.size = p[0].memref.size - 1;
	memset(&up, 0, sizeof(up));
	set_memref(&up, 0, TEE_PARAM_TYPE_MEMREF_INPUT, &p[0]);
	set_memref(&up, 1, TEE_PARAM_TYPE_MEMREF_OUTPUT, &small);
	r[PTA_SHORT] = tz_sys_invoke_ta_command(sess, 0, PTA_CMD_COPY_NSEC_TO_SEC,
						PTR(&up), PTR(&origin));
	r[PTA_SHORT_NEEDED] = (uint32_t)up.vals[3];
	/* same with room, but the destination is not secure: BAD_PARAMETERS */
	memset(&up, 0, sizeof(up));
	set_memref(&up, 0, TEE_PARAM_TYPE_MEMREF_INPUT, &p[0]);
	set_memref(&up, 1, TEE_PARAM_TYPE_MEMREF_OUTPUT, &p[1]);
	r[PTA_NONSECURE_DST] = tz_sys_invoke_ta_command(
		sess, 0, PTA_CMD_COPY_NSEC_TO_SEC, PTR(&up), PTR(&origin));
	/* a TA may not hand its private memory to a PTA */
	memset(&up, 0, sizeof(up));
	up.types = TEE_PARAM_TYPE_MEMREF_INOUT;
	up.vals[0] = PTR(ctx_pool);
	up.vals[1] = sizeof(ctx_pool);
	r[PTA_PRIVATE] = tz_sys_invoke_ta_command(sess, 0, PTA_CMD_READ_MODIFY_SEC,
						  PTR(&up), PTR(&origin));
	memset(&up, 0, sizeof(up));
	r[PTA_UNKNOWN] = tz_sys_invoke_ta_command(sess, 0, 0x7777, PTR(&up),
						  PTR(&origin));
	r[PTA_CLOSE] = tz_sys_close_ta_session(sess);
	r[PTA_CLOSE_AGAIN] = tz_sys_close_ta_session(sess);
	return put_results(&p[2], r, PTA_RESULTS);
}

/* ------------------------------------------------ panics and bad input */

static TEE_Result cmd_panic(uint32_t types, TEE_Param p[4])
{
	TEE_Panic(PANIC_CODE);
}

/* A valid session to the invoke_tests PTA, then utee_params at a bad address */
static TEE_Result bad_invoke_params(uint64_t addr)
{
	struct utee_params up;
	uint32_t sess = 0, origin = 0;
	TEE_Result res;

	memset(&up, 0, sizeof(up));
	res = tz_sys_open_ta_session(PTR(&invoke_tests_uuid), 0, PTR(&up),
				     PTR(&sess), PTR(&origin));
	if (res != TEE_SUCCESS)
		TEE_Panic(res);
	res = tz_sys_invoke_ta_command(sess, 0, PTA_CMD_TRACE, addr, PTR(&origin));
	tz_sys_close_ta_session(sess);
	return res;
}

static TEE_Result cmd_bad_pointer(uint32_t types, TEE_Param p[4])
{
	uint64_t addr = (uint64_t)p[1].value.b << 32 | p[1].value.a;
	uint32_t index, sess;

	if (types != TYPES(VALUE_INPUT, VALUE_INPUT, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	if (p[0].value.b == BAD_ADDR_OWN_RODATA)
		addr = PTR(rodata_text);
	else if (p[0].value.b == BAD_ADDR_OWN_TEXT)
		addr = PTR(cmd_bad_pointer);
	switch (p[0].value.a) {
	case BAD_RANDOM:
		return tz_sys_cryp_random_number_generate(addr, 16);
	case BAD_GET_TIME_SYSTEM:
		return tz_sys_get_time(UTEE_TIME_CAT_SYSTEM, addr);
	case BAD_GET_TIME_REE:
		return tz_sys_get_time(UTEE_TIME_CAT_REE, addr);
	case BAD_PROPERTY_NAME:
		return tz_sys_get_property_name_to_index(
			(uint64_t)(uintptr_t)TEE_PROPSET_TEE_IMPLEMENTATION, addr, 16,
			PTR(&index));
	case BAD_PROPERTY_VALUE_LEN:
		return tz_sys_get_property(
			(uint64_t)(uintptr_t)TEE_PROPSET_TEE_IMPLEMENTATION, 0, 0, 0,
			PTR(&index), addr, 0);
	case BAD_CANCELLATION_FLAG:
		return tz_sys_get_cancellation_flag(addr);
	case BAD_LOG:
		return tz_sys_log(addr, 32);
	case BAD_OPEN_SESSION_UUID:
		return tz_sys_open_ta_session(addr, 0, 0, PTR(&sess), 0);
	case BAD_INVOKE_PARAMS:
		return bad_invoke_params(addr);
	case BAD_SET_TA_TIME:
		return tz_sys_set_ta_time(addr);
	case BAD_UNSUPPORTED_SYSCALL:
		return tz_sys_raw(addr, 0, 0, 0, p[1].value.a);
	default:
		return TEE_ERROR_BAD_PARAMETERS;
	}
}

/* ------------------------------------------------------- runtime info */

static TEE_Result cmd_runtime_info(uint32_t types, TEE_Param p[4])
{
	if (types != TYPES(VALUE_OUTPUT, VALUE_OUTPUT, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	p[0].value.a = tz_ta_runtime.entries;		/* through the GOT */
	p[0].value.b = tz_ta_runtime.open_sessions;
	p[1].value.a = ta_head.flags;			/* through the GOT */
	p[1].value.b = data_word;
	return TEE_SUCCESS;
}

static TEE_Result cmd_log(uint32_t types, TEE_Param p[4])
{
	if (types != TYPES(NONE, NONE, NONE, NONE))
		return TEE_ERROR_BAD_PARAMETERS;
	tz_log("syscall_conformance_ta: hello from C at S-EL0\n");
	return TEE_SUCCESS;
}

/* Writable table of function pointers: .data, R_AARCH64_RELATIVE in .rela.dyn */
static cmd_fn cmd_table[NUM_CMDS] = {
	[CMD_GET_PROPERTY] = cmd_get_property,
	[CMD_CHECK_APPID] = cmd_check_appid,
	[CMD_GET_TIME] = cmd_get_time,
	[CMD_RANDOM] = cmd_random,
	[CMD_CANCELLATION] = cmd_cancellation,
	[CMD_WAIT] = cmd_wait,
	[CMD_CHECK_ACCESS] = cmd_check_access,
	[CMD_CACHE_OPS] = cmd_cache_ops,
	[CMD_TA2TA_ECHO] = cmd_ta2ta_echo,
	[CMD_TA2PTA] = cmd_ta2pta,
	[CMD_PANIC] = cmd_panic,
	[CMD_BAD_POINTER] = cmd_bad_pointer,
	[CMD_RUNTIME_INFO] = cmd_runtime_info,
	[CMD_LOG] = cmd_log,
	[CMD_SET_TA_TIME] = cmd_set_ta_time,
};

/* ------------------------------------------------------- entry points */

TEE_Result TA_CreateEntryPoint(void)
{
	/* GOT accesses on the first entry: unrelocated GOT slots fault here */
	if (ta_head.depr_entry != UINT64_MAX || tz_ta_runtime.created)
		return TEE_ERROR_BAD_STATE;
	return TEE_SUCCESS;
}

TEE_Result TA_OpenSessionEntryPoint(uint32_t types, TEE_Param p[4], void **sess_ctx)
{
	for (int n = 0; n < MAX_CTX; n++) {
		if (ctx_pool[n].magic != SESSION_MAGIC) {
			ctx_pool[n].magic = SESSION_MAGIC;
			ctx_pool[n].invokes = 0;
			*sess_ctx = &ctx_pool[n];
			return TEE_SUCCESS;
		}
	}
	return TEE_ERROR_OUT_OF_MEMORY;
}

void TA_CloseSessionEntryPoint(void *sess_ctx)
{
	struct session_ctx *ctx = sess_ctx;

	ctx->magic = 0;
}

TEE_Result TA_InvokeCommandEntryPoint(void *sess_ctx, uint32_t cmd,
				      uint32_t types, TEE_Param p[4])
{
	struct session_ctx *ctx = sess_ctx;

	if (!ctx || ctx->magic != SESSION_MAGIC)
		TEE_Panic(TEE_ERROR_BAD_STATE);
	ctx->invokes++;
	if (cmd >= NUM_CMDS || !cmd_table[cmd])
		return TEE_ERROR_NOT_SUPPORTED;
	return cmd_table[cmd](types, p);
}
