/* simd: whether util's and img's own AVX2 loops may run: this CPU has AVX2 and PETCNN_ISA
 * does not ask for the portable path. Below nn, which owns PETCNN_ISA (nn/isa.h). */
#ifndef PETCNN_SIMD_H
#define PETCNN_SIMD_H

/* 1 when the CPU has AVX2 and PETCNN_ISA is not "generic"; read where a loop's path is
 * chosen (rng_x4_init, resize_stream_init), never per element. The loops it guards give
 * exactly the bits of their portable twins, so it changes speed only: it exists so that
 * PETCNN_ISA=generic runs portable code everywhere, and the tests can compare the two.
 * Any other value is nn's to accept or refuse (isa_from_env). */
int simd_avx2(void);

#endif
