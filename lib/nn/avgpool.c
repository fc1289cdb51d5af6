/* stub */
#include "nn/avgpool.h"
void avgpool_forward(const geom *g, float *out, const float *in, int B, int include_pad, int threads) { (void)g,(void)out,(void)in,(void)B,(void)include_pad,(void)threads; }
void avgpool_backward(const geom *g, float *din, const float *dout, int B, int include_pad, int threads) { (void)g,(void)din,(void)dout,(void)B,(void)include_pad,(void)threads; }
void gap_forward(float *out, const float *in, int B, long hw, int c, int threads)
{
	(void)threads;
	for (int b = 0; b < B; b++)
		for (int k = 0; k < c; k++) {
			double s = 0;
			for (long i = 0; i < hw; i++) s += in[((long)b * hw + i) * c + k];
			out[b * c + k] = (float)(s / hw);
		}
}
void gap_backward(float *din, const float *dout, int B, long hw, int c, int threads)
{
	(void)threads;
	for (int b = 0; b < B; b++)
		for (long i = 0; i < hw; i++)
			for (int k = 0; k < c; k++) din[((long)b * hw + i) * c + k] = dout[b * c + k] / hw;
}
