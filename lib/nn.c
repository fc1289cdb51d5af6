/* nn: convolution as tiled im2col + sgemm (batch folded into the GEMM's M, tiles sized to
 * stay near cache), bias and ReLU fused into one pass over each freshly computed tile. */
#include "nn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "err.h"

/* Floats per im2col tile: large enough that sgemm sees a tall M, small enough that the
 * tile is still in L2/L3 when the GEMM reads it. */
#define NN_TILE_FLOATS (1 << 18)

int nn_out_size(int in, int k, int stride, nn_pad pad, int *pad_before)
{
	int out;

	if (pad == NN_SAME) {
		long total;

		out = (in + stride - 1) / stride;
		total = (long)(out - 1) * stride + k - in;
		if (total < 0)
			total = 0;
		if (pad_before)
			*pad_before = (int)(total / 2);
		return out;
	}
	if (pad_before)
		*pad_before = 0;
	if (in < k)
		return 0;
	return (in - k + 1 + stride - 1) / stride;
}

int nn_geom_init(nn_geom *g, int h, int w, int c, int kh, int kw, int sh, int sw,
		 nn_pad pad, int oc, char *err)
{
	memset(g, 0, sizeof *g);
	if (h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || oc < 1)
		return err_set(err, "window %dx%d stride %dx%d over %dx%dx%d: sizes must be positive",
			       kh, kw, sh, sw, h, w, c);
	g->h = h, g->w = w, g->c = c, g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw, g->oc = oc;
	g->oh = nn_out_size(h, kh, sh, pad, &g->pt);
	g->ow = nn_out_size(w, kw, sw, pad, &g->pl);
	if (g->oh < 1 || g->ow < 1)
		return err_set(err, "window %dx%d does not fit a %dx%d input (VALID)", kh, kw, h, w);
	/* Offsets within one image are int32 (max-pool argmax) and K must fit an int. */
	if ((int64_t)h * w * c > INT32_MAX || (int64_t)g->oh * g->ow * oc > INT32_MAX ||
	    (int64_t)kh * kw * c > INT32_MAX / 2)
		return err_set(err, "layer of %dx%dx%d too large", h, w, c);
	return 0;
}

/* 1x1 stride-1 convolutions need no im2col: the input already is the [M, cin] matrix. */
static int is_pointwise(const nn_geom *g)
{
	return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->oh == g->h && g->ow == g->w;
}

static long tile_rows(const nn_geom *g)
{
	long K = (long)g->kh * g->kw * g->c, tm = NN_TILE_FLOATS / K;

	return tm > 0 ? tm : 1;
}

size_t nn_conv2d_workspace(const nn_geom *g)
{
	/* backward holds a tile of im2col and a tile of its gradient at once */
	return 2 * (size_t)tile_rows(g) * g->kh * g->kw * g->c;
}

/* Rows m0..m1 of the im2col matrix [B*oh*ow, kh*kw*c] (row: one output pixel, columns in
 * HWIO order ky, kx, ci so that it multiplies the weights directly). With add set, the
 * reverse: col's rows are summed back into the image (col2im). */
static void im2col(const nn_geom *g, float *col, float *in, long m0, long m1, int add)
{
	long hw = (long)g->oh * g->ow, isz = (long)g->h * g->w * g->c;
	int c = g->c, K = g->kh * g->kw * c;

	for (long m = m0; m < m1; m++) {
		long n = m / hw, r = m % hw;
		int oy = (int)(r / g->ow), ox = (int)(r % g->ow);
		int iy0 = oy * g->sh - g->pt, ix0 = ox * g->sw - g->pl;
		int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = g->w - ix0 < g->kw ? g->w - ix0 : g->kw;
		float *dst = col + (m - m0) * K, *img = in + n * isz;

		for (int ky = 0; ky < g->kh; ky++, dst += g->kw * c) {
			int iy = iy0 + ky;

			if (iy < 0 || iy >= g->h || kx0 >= kx1) {
				if (!add)
					memset(dst, 0, sizeof *dst * g->kw * c);
				continue;
			}
			/* the in-bounds columns of a window row are contiguous in NHWC */
			float *src = img + ((long)iy * g->w + ix0 + kx0) * c, *d = dst + kx0 * c;
			long len = (long)(kx1 - kx0) * c;

			if (add) {
				for (long i = 0; i < len; i++)
					src[i] += d[i];
				continue;
			}
			memset(dst, 0, sizeof *dst * kx0 * c);
			memcpy(d, src, sizeof *d * len);
			memset(dst + kx1 * c, 0, sizeof *dst * (g->kw - kx1) * c);
		}
	}
}

static void bias_relu(float *out, const float *b, long rows, int n, int relu)
{
	for (long i = 0; i < rows; i++, out += n) {
		if (b)
			for (int j = 0; j < n; j++)
				out[j] += b[j];
		if (relu)
			for (int j = 0; j < n; j++)
				out[j] = out[j] > 0 ? out[j] : 0;
	}
}

void nn_conv2d_forward(const nn_geom *g, float *out, const float *in, const float *w,
		       const float *b, int B, int relu, float *ws)
{
	long M = (long)B * g->oh * g->ow, tm = tile_rows(g);
	int K = g->kh * g->kw * g->c, N = g->oc;

	if (is_pointwise(g)) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, N, K, 1.0f,
			    in, K, w, N, 0.0f, out, N);
		bias_relu(out, b, M, N, relu);
		return;
	}
	for (long m0 = 0; m0 < M; m0 += tm) {
		long m1 = m0 + tm < M ? m0 + tm : M;
		float *o = out + m0 * N;

		/* im2col only reads the input; the cast is for the shared col2im signature */
		im2col(g, ws, (float *)in, m0, m1, 0);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(m1 - m0), N, K,
			    1.0f, ws, K, w, N, 0.0f, o, N);
		bias_relu(o, b, m1 - m0, N, relu);
	}
}

static void sum_rows(float *db, const float *d, long rows, int n)
{
	for (long i = 0; i < rows; i++, d += n)
		for (int j = 0; j < n; j++)
			db[j] += d[j];
}

void nn_conv2d_backward(const nn_geom *g, float *din, float *dw, float *db,
			const float *dout, const float *in, const float *w, int B, int acc,
			float *ws)
{
	long M = (long)B * g->oh * g->ow, tm = tile_rows(g);
	int K = g->kh * g->kw * g->c, N = g->oc;
	float *col = ws, *dcol = ws + tm * K;

	if (db) {
		if (!acc)
			memset(db, 0, sizeof *db * N);
		sum_rows(db, dout, M, N);
	}
	if (is_pointwise(g)) {
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, (int)M, 1.0f,
			    in, K, dout, N, acc ? 1.0f : 0.0f, dw, N);
		if (din)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, K, N, 1.0f,
				    dout, N, w, N, 0.0f, din, K);
		return;
	}
	if (din)
		memset(din, 0, sizeof *din * (size_t)B * g->h * g->w * g->c);
	for (long m0 = 0; m0 < M; m0 += tm) {
		long m1 = m0 + tm < M ? m0 + tm : M;
		const float *d = dout + m0 * N;

		im2col(g, col, (float *)in, m0, m1, 0);
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, (int)(m1 - m0), 1.0f,
			    col, K, d, N, acc || m0 > 0 ? 1.0f : 0.0f, dw, N);
		if (!din)
			continue;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m1 - m0), K, N, 1.0f,
			    d, N, w, N, 0.0f, dcol, K);
		im2col(g, dcol, din, m0, m1, 1);
	}
}

void nn_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = y[i] > 0 ? dy[i] : 0;
}

void nn_maxpool_forward(const nn_geom *g, float *out, int32_t *argmax, const float *in, int B)
{
	int c = g->c;
	long isz = (long)g->h * g->w * c;

	for (long n = 0; n < B; n++) {
		const float *img = in + n * isz;

		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++) {
				long o = ((n * g->oh + oy) * g->ow + ox) * c;
				float *po = out + o;
				int32_t *pa = argmax + o;
				int first = 1;

				for (int ky = 0; ky < g->kh; ky++) {
					int iy = oy * g->sh - g->pt + ky;

					if (iy < 0 || iy >= g->h)
						continue;
					for (int kx = 0; kx < g->kw; kx++) {
						int ix = ox * g->sw - g->pl + kx;
						int32_t off = (int32_t)(((long)iy * g->w + ix) * c);

						if (ix < 0 || ix >= g->w)
							continue;
						/* the first in-bounds pixel seeds the max, so
						 * padding never wins and NaN still has a winner */
						for (int ch = 0; ch < c; ch++)
							if (first || img[off + ch] > po[ch]) {
								po[ch] = img[off + ch];
								pa[ch] = off + ch;
							}
						first = 0;
					}
				}
			}
	}
}

void nn_maxpool_backward(const nn_geom *g, float *din, const float *dout,
			 const int32_t *argmax, int B)
{
	long isz = (long)g->h * g->w * g->c, osz = (long)g->oh * g->ow * g->c;

	memset(din, 0, sizeof *din * (size_t)B * isz);
	for (long n = 0; n < B; n++) {
		float *img = din + n * isz;
		const float *d = dout + n * osz;
		const int32_t *a = argmax + n * osz;

		for (long i = 0; i < osz; i++)
			img[a[i]] += d[i];
	}
}

void nn_dropout_forward(float *x, uint8_t *mask, size_t n, float keep, rng *r)
{
	float scale = 1.0f / keep;

	if (keep >= 1.0f) {
		memset(mask, 1, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		mask[i] = rng_uniformf(r) < keep;
		x[i] = mask[i] ? x[i] * scale : 0.0f;
	}
}

void nn_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t n, float keep)
{
	float scale = keep >= 1.0f ? 1.0f : 1.0f / keep;

	for (size_t i = 0; i < n; i++)
		dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

void nn_dense_forward(float *out, const float *in, const float *w, const float *b,
		      int B, int nin, int nout, int relu)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, nout, nin, 1.0f,
		    in, nin, w, nout, 0.0f, out, nout);
	bias_relu(out, b, B, nout, relu);
}

void nn_dense_backward(float *din, float *dw, float *db, const float *dout,
		       const float *in, const float *w, int B, int nin, int nout, int acc)
{
	if (db) {
		if (!acc)
			memset(db, 0, sizeof *db * nout);
		sum_rows(db, dout, B, nout);
	}
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nin, nout, B, 1.0f,
		    in, nin, dout, nout, acc ? 1.0f : 0.0f, dw, nout);
	if (din)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, nin, nout, 1.0f,
			    dout, nout, w, nout, 0.0f, din, nin);
}

double nn_softmax_xent(float *probs, float *dlogits, int *correct, const float *logits,
		       const int *labels, int B, int K)
{
	double loss = 0;
	int ok = 0;

	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx = z[0], sum = 0;
		int best = 0, y = labels[n];

		for (int k = 1; k < K; k++)
			if (z[k] > mx)
				mx = z[k], best = k;
		for (int k = 0; k < K; k++)
			sum += exp(z[k] - mx);
		loss += log(sum) - (z[y] - mx);
		ok += best == y;
		for (int k = 0; k < K; k++) {
			double p = exp(z[k] - mx) / sum;

			if (probs)
				probs[(long)n * K + k] = (float)p;
			if (dlogits)
				dlogits[(long)n * K + k] = (float)((p - (k == y)) / B);
		}
	}
	if (correct)
		*correct = ok;
	return loss / B;
}

void nn_softmax(float *probs, const float *logits, int B, int K)
{
	for (int n = 0; n < B; n++) {
		const float *z = logits + (long)n * K;
		double mx = z[0], sum = 0;

		for (int k = 1; k < K; k++)
			if (z[k] > mx)
				mx = z[k];
		for (int k = 0; k < K; k++)
			sum += exp(z[k] - mx);
		for (int k = 0; k < K; k++)
			probs[(long)n * K + k] = (float)(exp(z[k] - mx) / sum);
	}
}
