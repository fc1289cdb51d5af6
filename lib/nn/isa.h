/* isa: which instruction set our own kernels run on: the widest this CPU has, or the one
 * PETCNN_ISA names, so that every path the machine supports can be tested and compared. */
#ifndef PETCNN_ISA_H
#define PETCNN_ISA_H

/* In order of width: a CPU that has one has those before it (AVX-512 here means
 * avx512f with FMA; AVX2 means avx2 with FMA). */
typedef enum { ISA_GENERIC, ISA_AVX2, ISA_AVX512 } isa_kind;

/* Whether this build and this CPU can run k. */
int isa_supported(isa_kind k);

/* The widest k isa_supported. */
isa_kind isa_best(void);

/* "generic", "avx2" or "avx512": the names PETCNN_ISA takes. */
const char *isa_name(isa_kind k);

/* The path PETCNN_ISA asks for (unset or empty: isa_best()). -1 with a message if it
 * names no path or one this CPU lacks: a forced path that silently ran another would
 * make a test of it pass without testing it. */
int isa_from_env(isa_kind *k, char *err);

#endif
