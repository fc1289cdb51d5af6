/* geom: output sizes and padding for a window over an NHWC image (TensorFlow's SAME/VALID,
 * or explicit ONNX/PyTorch pads and ceil mode), shared by the convolution and pool layers. */
#ifndef PETCNN_GEOM_H
#define PETCNN_GEOM_H

typedef enum { GEOM_SAME, GEOM_VALID } geom_pad;

/* Output length along one axis as TensorFlow defines it. SAME: ceil(in/stride), padded
 * by max((out-1)*stride + k - in, 0) of which pad/2 before (the extra after). VALID:
 * ceil((in-k+1)/stride), no padding. Returns the length (<= 0 if none fits). */
int geom_out_size(int in, int k, int stride, geom_pad pad, int *pad_before);

/* A window over an NHWC image: the geometry shared by conv2d and the pools. Kernels
 * bound every read by h and w, so a ceil-mode window reaching past pb/pr reads zeros (conv)
 * or nothing (pools); pb and pr matter only to avgpool's count_include_pad divisor. */
typedef struct {
	int h, w, c;    /* input height, width, channels */
	int kh, kw;     /* window */
	int sh, sw;     /* stride */
	int oh, ow;     /* output height, width */
	int pt, pl;     /* padding before (top, left) */
	int oc;         /* output channels (conv: cout; pool: c) */
	int pb, pr;     /* padding after (bottom, right); never negative */
	int groups;     /* conv: c and oc split into this many groups (1: none; 0 counts as 1) */
} geom;

/* Fills g with TensorFlow's SAME or VALID geometry, groups 1, pb/pr what SAME pads after
 * (VALID: 0, the rows no window reaches simply unread); -1 if the window does not fit
 * (VALID with in < k) or a size is out of range. */
int geom_init(geom *g, int h, int w, int c, int kh, int kw, int sh, int sw, geom_pad pad,
	      int oc, char *err);

/* Fills g with explicit pads (top, left, bottom, right; ONNX/PyTorch, may be asymmetric):
 * out = floor((in + before + after - k) / s) + 1, or with ceil_mode the ceiling, less a last
 * window that would start in the after-padding (PyTorch's and ONNX's rule). groups must
 * divide c and oc. -1 with a message if a size or pad is out of range or nothing fits. */
int geom_init_pads(geom *g, int h, int w, int c, int kh, int kw, int sh, int sw,
		   const int pads[4], int ceil_mode, int groups, int oc, char *err);

/* The part [*lo, *hi) within [min, max) of the window of output o along one axis: it
 * starts at o*s - before and is k long (*hi <= *lo: none of it). Pools clip to the input
 * (min 0, max its size), or to the padded input when pads count. */
void geom_window(int o, int s, int before, int k, int min, int max, int *lo, int *hi);

#endif
