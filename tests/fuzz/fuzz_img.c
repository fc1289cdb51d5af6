/* libFuzzer harness for imgdec (JPEG, PNG, GIF): arbitrary bytes decoded whole at full size
 * and, through a sink, with a scaling hint, under a pixel limit of 1 Mi so that a header
 * claiming a huge image is refused (as pet-pack's limit does) instead of running out of
 * memory. Every pixel handed over is read, so a short buffer shows up under ASan. */
#include "util/errmsg.h"
#include "img/imgdec.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PIXELS ((int64_t)1 << 20)

struct sink {
	int w, h, rows;
	uint8_t *room;
};

static int s_begin(void *ctx, int w, int h, char *err)
{
	struct sink *s = ctx;

	if ((int64_t)w * h > MAX_PIXELS)
		__builtin_trap(); /* the limit was not kept */
	s->w = w;
	s->h = h;
	s->room = malloc((size_t)w * 3 * 3);
	return s->room ? 0 : err_set(err, "out of memory");
}

static uint8_t *s_room(void *ctx, int *max, size_t *stride)
{
	struct sink *s = ctx;

	*max = 3;
	*stride = (size_t)s->w * 3;
	return s->room;
}

static void s_push(void *ctx, int n)
{
	struct sink *s = ctx;
	volatile uint8_t sum = 0;

	if (n < 1 || n > 3 || s->rows + n > s->h)
		__builtin_trap(); /* more rows than announced */
	for (size_t i = 0; i < (size_t)n * s->w * 3; i++)
		sum ^= s->room[i];
	s->rows += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	imgdec_hint full = { IMGDEC_FULL, 0, 0, MAX_PIXELS }, cover = { IMGDEC_COVER, 16, 16, MAX_PIXELS };
	imgdec_image img;
	struct sink s = { 0 };
	imgdec_sink sink = { &s, s_begin, s_room, s_push };

	if (imgdec_mem(data, size, "fuzz", &full, &img, err) == 0) {
		volatile uint8_t sum = 0;
		if ((int64_t)img.w * img.h > MAX_PIXELS)
			__builtin_trap();
		for (size_t i = 0; i < (size_t)img.w * img.h * 4; i++)
			sum ^= img.pix[i];
		imgdec_free(&img);
	}
	if (imgdec_mem_sink(data, size, "fuzz", &cover, &sink, err) == 0 && s.rows != s.h)
		__builtin_trap(); /* success means every row */
	free(s.room);
	return 0;
}
