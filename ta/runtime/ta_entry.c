// SPDX-License-Identifier: Apache-2.0
/*
 * tzemu TA runtime: the TA's ELF entry point.
 *
 * The secure OS enters a TA (tee_os/user_ta.py) with x0 = entry function
 * (UTEE_ENTRY_FUNC_*), x1 = session id, x2 = struct utee_params * (also the
 * SP) and x3 = command id.  __ta_entry turns utee_params into TEE_Param[4],
 * calls the TA's entry point, writes the outputs back into utee_params and
 * leaves through the RETURN syscall; it never returns.
 */
#include <tee_ta_api.h>

#define MAX_SESSIONS	16

struct tz_ta_runtime tz_ta_runtime;

static struct {
	uint32_t id;
	void *ctx;
} sessions[MAX_SESSIONS];

__attribute__((weak)) TEE_Result TA_CreateEntryPoint(void)
{
	return TEE_SUCCESS;
}

__attribute__((weak)) void TA_DestroyEntryPoint(void)
{
}

void TEE_Panic(TEE_Result code)
{
	tz_sys_panic(code);
}

void tz_log(const char *msg)
{
	tz_sys_log((uint64_t)(uintptr_t)msg, strlen(msg));
}

static void from_utee(const struct utee_params *up, TEE_Param *p)
{
	for (int n = 0; n < TEE_NUM_PARAMS; n++) {
		uint64_t a = up->vals[2 * n], b = up->vals[2 * n + 1];

		switch (TEE_PARAM_TYPE_GET(up->types, n)) {
		case TEE_PARAM_TYPE_VALUE_INPUT:
		case TEE_PARAM_TYPE_VALUE_OUTPUT:
		case TEE_PARAM_TYPE_VALUE_INOUT:
			p[n].value.a = (uint32_t)a;
			p[n].value.b = (uint32_t)b;
			break;
		case TEE_PARAM_TYPE_MEMREF_INPUT:
		case TEE_PARAM_TYPE_MEMREF_OUTPUT:
		case TEE_PARAM_TYPE_MEMREF_INOUT:
			p[n].memref.buffer = (void *)(uintptr_t)a;
			p[n].memref.size = b;
			break;
		default:
			p[n].memref.buffer = 0;
			p[n].memref.size = 0;
			break;
		}
	}
}

static void to_utee(struct utee_params *up, const TEE_Param *p)
{
	for (int n = 0; n < TEE_NUM_PARAMS; n++) {
		switch (TEE_PARAM_TYPE_GET(up->types, n)) {
		case TEE_PARAM_TYPE_VALUE_OUTPUT:
		case TEE_PARAM_TYPE_VALUE_INOUT:
			up->vals[2 * n] = p[n].value.a;
			up->vals[2 * n + 1] = p[n].value.b;
			break;
		case TEE_PARAM_TYPE_MEMREF_OUTPUT:
		case TEE_PARAM_TYPE_MEMREF_INOUT:
			up->vals[2 * n + 1] = p[n].memref.size;
			break;
		default:
			break;
		}
	}
}

static int find_session(uint32_t id)
{
	for (int n = 0; n < MAX_SESSIONS; n++)
		if (sessions[n].id == id)
			return n;
	return -1;
}

static TEE_Result open_session(uint32_t id, uint32_t types, TEE_Param *p)
{
	int slot = find_session(0);
	void *ctx = 0;
	TEE_Result res;

	if (slot < 0)
		return TEE_ERROR_OUT_OF_MEMORY;
	if (!tz_ta_runtime.created) {
		res = TA_CreateEntryPoint();
		if (res != TEE_SUCCESS)
			return res;
		tz_ta_runtime.created = 1;
	}
	res = TA_OpenSessionEntryPoint(types, p, &ctx);
	if (res != TEE_SUCCESS)
		return res;
	sessions[slot].id = id;
	sessions[slot].ctx = ctx;
	tz_ta_runtime.open_sessions++;
	return TEE_SUCCESS;
}

static TEE_Result close_session(uint32_t id)
{
	int slot = find_session(id);

	if (slot < 0)
		TEE_Panic(TEE_ERROR_BAD_STATE);
	TA_CloseSessionEntryPoint(sessions[slot].ctx);
	sessions[slot].id = 0;
	sessions[slot].ctx = 0;
	if (--tz_ta_runtime.open_sessions == 0 &&
	    !(ta_head.flags & TA_FLAG_INSTANCE_KEEP_ALIVE)) {
		TA_DestroyEntryPoint();
		tz_ta_runtime.created = 0;
	}
	return TEE_SUCCESS;
}

void __ta_entry(unsigned long func, unsigned long session_id,
		struct utee_params *up, unsigned long cmd_id)
	__attribute__((noreturn, used));

void __ta_entry(unsigned long func, unsigned long session_id,
		struct utee_params *up, unsigned long cmd_id)
{
	TEE_Param p[TEE_NUM_PARAMS];
	uint32_t types = (uint32_t)up->types & 0xFFFF;
	uint32_t id = (uint32_t)session_id;
	TEE_Result res;
	int slot;

	tz_ta_runtime.entries++;
	tz_ta_runtime.session_id = id;
	from_utee(up, p);
	switch (func) {
	case UTEE_ENTRY_FUNC_OPEN_SESSION:
		res = open_session(id, types, p);
		break;
	case UTEE_ENTRY_FUNC_CLOSE_SESSION:
		res = close_session(id);
		break;
	case UTEE_ENTRY_FUNC_INVOKE_COMMAND:
		slot = find_session(id);
		if (slot < 0)
			TEE_Panic(TEE_ERROR_BAD_STATE);
		res = TA_InvokeCommandEntryPoint(sessions[slot].ctx,
						 (uint32_t)cmd_id, types, p);
		break;
	default:
		res = TEE_ERROR_NOT_SUPPORTED;
		break;
	}
	to_utee(up, p);
	tz_sys_return(res);
}
