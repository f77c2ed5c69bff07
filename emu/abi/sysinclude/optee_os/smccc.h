/* tzemu stand-in: optee_os's <smccc.h> (the Arm architecture-service calls).  ffa.h includes
 * it, but no ABI header tzemu reads uses anything from it; tzemu's own definitions of those
 * calls are in sm/smccc.h, which is not pulled in here so that the real sm/optee_smc.h keeps
 * the OPTEE_SMC_* names it defines itself. */
#ifndef __TZEMU_SMCCC_H
#define __TZEMU_SMCCC_H
#endif
