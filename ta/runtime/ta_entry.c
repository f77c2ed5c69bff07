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
uint64_t __stack_chk_guard;		/* as libutee: seeded once per instance */

static const char memtag_prop[] = "org.trustedfirmware.optee.cpu.feat_memtag_implemented";

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

/*
 * The first entry into an instance makes the syscalls libutee makes there
 * (optee_ta_format.md section 6), so a loader or syscall layer that would
 * break a dev-kit TA's start-up breaks this runtime too: seed the stack
 * guard (CRYP_RANDOM_NUMBER_GENERATE), then TEE_GetPropertyAsU32's argument
 * checks (CHECK_ACCESS_RIGHTS READ on the name in .rodata, WRITE on the
 * value on the stack; a failure panics, as libutee does) and the memtag
 * property lookup in the implementation set (ITEM_NOT_FOUND: no memtag).
 */
static void instance_init(void)
{
	uint32_t value = 0, index = 0, len = sizeof(value), type = 0;

	tz_sys_cryp_random_number_generate((uint64_t)(uintptr_t)&__stack_chk_guard,
					   sizeof(__stack_chk_guard));
	if (tz_sys_check_access_rights(TEE_MEMORY_ACCESS_READ,
				       (uint64_t)(uintptr_t)memtag_prop,
				       sizeof(memtag_prop)) != TEE_SUCCESS)
		TEE_Panic(TEE_ERROR_ACCESS_DENIED);
	if (tz_sys_check_access_rights(TEE_MEMORY_ACCESS_WRITE,
				       (uint64_t)(uintptr_t)&value,
				       sizeof(value)) != TEE_SUCCESS)
		TEE_Panic(TEE_ERROR_ACCESS_DENIED);
	if (tz_sys_get_property_name_to_index((uint64_t)(uintptr_t)TEE_PROPSET_TEE_IMPLEMENTATION,
					      (uint64_t)(uintptr_t)memtag_prop,
					      sizeof(memtag_prop),
					      (uint64_t)(uintptr_t)&index) == TEE_SUCCESS &&
	    tz_sys_get_property((uint64_t)(uintptr_t)TEE_PROPSET_TEE_IMPLEMENTATION, index, 0, 0,
				(uint64_t)(uintptr_t)&value, (uint64_t)(uintptr_t)&len,
				(uint64_t)(uintptr_t)&type) == TEE_SUCCESS)
		tz_ta_runtime.memtag = value;
	tz_ta_runtime.initialized = 1;
}

static TEE_Result open_session(uint32_t id, uint32_t types, TEE_Param *p)
{
	int slot = find_session(0);
	void *ctx = 0;
	TEE_Result res;

	if (slot < 0)
		return TEE_ERROR_OUT_OF_MEMORY;
	if (!tz_ta_runtime.initialized)
		instance_init();
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
