/* geom: TensorFlow's output sizes and padding for a window over an NHWC image, shared by
 * the convolution and max-pool layers. */
#ifndef PETCNN_GEOM_H
#define PETCNN_GEOM_H

typedef enum { GEOM_SAME, GEOM_VALID } geom_pad;

/* Output length along one axis as TensorFlow defines it. SAME: ceil(in/stride), padded
 * by max((out-1)*stride + k - in, 0) of which pad/2 before (the extra after). VALID:
 * ceil((in-k+1)/stride), no padding. Returns the length (<= 0 if none fits). */
int geom_out_size(int in, int k, int stride, geom_pad pad, int *pad_before);

/* A window over an NHWC image: the geometry shared by conv2d and max-pool. */
typedef struct {
	int h, w, c;    /* input height, width, channels */
	int kh, kw;     /* window */
	int sh, sw;     /* stride */
	int oh, ow;     /* output height, width */
	int pt, pl;     /* padding before (top, left) */
	int oc;         /* output channels (conv: cout; pool: c) */
	int pb, pr;
	int groups;
} geom;
int geom_init_pads(geom *g, int h, int w, int c, int kh, int kw, int sh, int sw, const int pads[4], int ceil_mode, int groups, int oc, char *err);

/* Fills g; -1 if the window does not fit (VALID with in < k) or a size is out of range. */
int geom_init(geom *g, int h, int w, int c, int kh, int kw, int sh, int sw, geom_pad pad,
	      int oc, char *err);

#endif
