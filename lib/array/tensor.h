/* tensor: an n-d array in memory with a NumPy dtype, the unit every petcnn format carries.
 * Owns its data (tensor_free); shapes are int64 and every byte count is overflow-checked. */
#ifndef PETCNN_TENSOR_H
#define PETCNN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define TENSOR_MAXDIM 8

enum tensor_dtype {
	DT_U1,  /* '|u1'  uint8 */
	DT_I4,  /* '<i4'  int32 */
	DT_I8,  /* '<i8'  int64 */
	DT_F4,  /* '<f4'  float32 */
	DT_F8,  /* '<f8'  float64 */
	DT_U,   /* '<UN'  fixed-width UTF-32LE string of N code points (ulen) */
};

typedef struct {
	enum tensor_dtype dtype;
	int ndim;                      /* 0 for a scalar */
	int64_t shape[TENSOR_MAXDIM];
	int64_t ulen;                  /* code points per element, DT_U only */
	void *data;                    /* numel * itemsize bytes, C order, little-endian */
} tensor;

/* Bytes per element (4 * ulen for DT_U). */
size_t tensor_itemsize(const tensor *t);
/* Element count; -1 if it overflows int64. */
int64_t tensor_numel(const tensor *t);
/* Total bytes; -1 if it overflows. */
int64_t tensor_nbytes(const tensor *t);
const char *tensor_dtype_name(enum tensor_dtype d); /* "u1", "i4", "i8", "f4", "f8", "U" */
/* Element i of numeric data of that dtype, as float (0 for DT_U, which has no number). */
float tensor_elem_f4(const void *data, enum tensor_dtype d, int64_t i);

/* Allocates zeroed data for the given shape (ulen used for DT_U only). */
int tensor_alloc(tensor *t, enum tensor_dtype dtype, int ndim, const int64_t *shape,
		 int64_t ulen, char *err);
void tensor_free(tensor *t);

/* Strings: a [n] DT_U tensor from n UTF-8 C strings (ulen = longest), and element i back
 * as UTF-8 into buf (truncated to bufsize, always terminated). */
int tensor_from_strings(tensor *t, const char *const *s, int64_t n, char *err);
int tensor_get_string(const tensor *t, int64_t i, char *buf, size_t bufsize);

#endif
