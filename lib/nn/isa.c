/* isa: the CPU's instruction sets and PETCNN_ISA, read where a model or an apply is set up. */
#include "nn/isa.h"

#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"

static const char *const names[] = { "generic", "avx2", "avx512" };

int isa_supported(isa_kind k)
{
#if defined(__x86_64__) && defined(__GNUC__)
	switch (k) {
	case ISA_AVX512:
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
	case ISA_AVX2:
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	default:
		return k == ISA_GENERIC;
	}
#else
	return k == ISA_GENERIC;
#endif
}

isa_kind isa_best(void)
{
	return isa_supported(ISA_AVX512) ? ISA_AVX512 : isa_supported(ISA_AVX2) ? ISA_AVX2 : ISA_GENERIC;
}

const char *isa_name(isa_kind k)
{
	return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

int isa_from_env(isa_kind *k, char *err)
{
	const char *s = getenv("PETCNN_ISA");

	*k = isa_best();
	if (!s || !*s)
		return 0;
	for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
		if (!strcmp(s, names[i])) {
			if (!isa_supported((isa_kind)i))
				return err_set(err, "PETCNN_ISA=%s: this CPU lacks %s (it has up to %s)", s,
					       names[i], names[isa_best()]);
			*k = (isa_kind)i;
			return 0;
		}
	return err_set(err, "PETCNN_ISA=%.40s: not generic, avx2 or avx512", s);
}
