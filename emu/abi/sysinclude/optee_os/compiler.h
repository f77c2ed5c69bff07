/* tzemu stand-in: optee_os's attribute shorthands; only packed/aligned change layouts. */
#ifndef __TZEMU_COMPILER_H
#define __TZEMU_COMPILER_H

#define __packed		__attribute__((packed))
#define __aligned(x)		__attribute__((aligned(x)))
#define __unused		__attribute__((unused))
#define __maybe_unused		__attribute__((unused))
#define __used			__attribute__((used))
#define __weak			__attribute__((weak))
#define __noreturn		__attribute__((noreturn))
#define __pure			__attribute__((pure))
#define __deprecated		__attribute__((deprecated))
#define __must_check		__attribute__((warn_unused_result))
#define __noinline		__attribute__((noinline))
#define __always_inline		inline
#define __section(x)		__attribute__((section(x)))
#define __printf(a, b)		__attribute__((format(printf, a, b)))

#endif
