/* stub */
#include "nn/elt.h"
#include <string.h>
void elt_add(float *out, const float *a, const float *b, size_t n, int relu) { for (size_t i = 0; i < n; i++) { float v = a[i] + b[i]; out[i] = relu && v < 0 ? 0 : v; } }
void elt_clip_forward(float *y, const float *x, size_t n, float lo, float hi) { for (size_t i = 0; i < n; i++) y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i]; }
void elt_clip_backward(float *dx, const float *dy, const float *x, size_t n, float lo, float hi) { for (size_t i = 0; i < n; i++) dx[i] = x[i] > lo && x[i] < hi ? dy[i] : 0; }
void elt_leaky_forward(float *y, const float *x, size_t n, float alpha) { for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : alpha * x[i]; }
void elt_leaky_backward(float *dx, const float *dy, const float *x, size_t n, float alpha) { for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : alpha * dy[i]; }
void elt_affine_forward(float *y, const float *x, const float *scale, const float *shift, size_t rows, int c, int relu) { for (size_t r = 0; r < rows; r++) for (int k = 0; k < c; k++) { float v = x[r*c+k]*scale[k]+shift[k]; y[r*c+k] = relu && v < 0 ? 0 : v; } }
void elt_affine_backward(float *dx, float *dscale, float *dshift, const float *dy, const float *x, const float *scale, size_t rows, int c, int acc)
{
	if (!acc) { if (dscale) memset(dscale, 0, sizeof(float)*c); if (dshift) memset(dshift, 0, sizeof(float)*c); }
	for (size_t r = 0; r < rows; r++) for (int k = 0; k < c; k++) {
		if (dx) dx[r*c+k] = dy[r*c+k]*scale[k];
		if (dscale) dscale[k] += dy[r*c+k]*x[r*c+k];
		if (dshift) dshift[k] += dy[r*c+k];
	}
}
void elt_concat_forward(float *out, const float *in, size_t rows, int cin, int cout, int off) { for (size_t r = 0; r < rows; r++) memcpy(out + r*cout + off, in + r*cin, sizeof(float)*cin); }
void elt_concat_backward(float *din, const float *dout, size_t rows, int cin, int cout, int off) { for (size_t r = 0; r < rows; r++) memcpy(din + r*cin, dout + r*cout + off, sizeof(float)*cin); }
