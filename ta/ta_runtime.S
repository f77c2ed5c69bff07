/*
 * The small part of libutee every built-in TA shares, included by each TA's source:
 * the exits (w0 = TEE_Result, then the RETURN syscall) and TEE_CheckMemoryAccessRights.
 * Constants (TEE_*) come from ta/build.py, read from the secure world's own headers.
 */

/* TEE_CheckMemoryAccessRights(w0 flags, x1 buffer, x2 size) -> w0 (libutee tee_api.c). */
check_access_rights:
    cbz     x2, check_access_ok         // size 0: success without a syscall
    mov     w9, w0
    mov     x8, #TEE_SCN_CHECK_ACCESS_RIGHTS
    svc     #0
    cbz     w0, check_access_ok
    mov     w0, #TEE_ERROR_ACCESS_DENIED  // any failure: ACCESS_DENIED with ANY_OWNER,
    tst     w9, #TEE_MEMORY_ACCESS_ANY_OWNER
    b.ne    check_access_ret
    mov     w0, #TEE_ERROR_ACCESS_CONFLICT  // ACCESS_CONFLICT without it
    ret
check_access_ok:
    mov     w0, #TEE_SUCCESS
check_access_ret:
    ret

/* Exits. */
ret_success:
    mov     w0, #TEE_SUCCESS
    b       ta_return
ret_generic:
    mov     w0, #TEE_ERROR_GENERIC
    b       ta_return
ret_bad_parameters:
    mov     w0, #TEE_ERROR_BAD_PARAMETERS
    b       ta_return
ret_bad_state:
    mov     w0, #TEE_ERROR_BAD_STATE
    b       ta_return
ret_not_supported:
    mov     w0, #TEE_ERROR_NOT_SUPPORTED
    b       ta_return
ret_short_buffer:
    mov     w0, #TEE_ERROR_SHORT_BUFFER
ta_return:                              // w0 = TEE_Result
    mov     x8, #TEE_SCN_RETURN
    svc     #0
return_hang:
    b       return_hang
