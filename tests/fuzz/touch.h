/* touch: reads every byte of a tensor the fuzzed reader returned, so a buffer shorter than
 * the tensor claims shows up under AddressSanitizer. For the harnesses only. */
#ifndef PETCNN_FUZZ_TOUCH_H
#define PETCNN_FUZZ_TOUCH_H

#include "array/tensor.h"

static inline void touch(const tensor *t)
{
	int64_t n = tensor_nbytes(t);
	volatile unsigned char sum = 0;

	for (int64_t k = 0; k < n; k++)
		sum ^= ((const unsigned char *)t->data)[k];
}

#endif
