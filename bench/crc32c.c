/* crc32c: what each CRC-32C path of lib/tb/crc32c costs on the sizes event files checksum:
 * 8 bytes (a record's length), a scalar Event (~40 B), a histogram (~4 KiB) and an image
 * (~64 KiB, 1 MiB). Not run by `make check`; build and run with
 *   make all && cc -std=c11 -D_DEFAULT_SOURCE -O2 -Ilib bench/crc32c.c build/libpetcnn.a -o build/crc32c-bench
 *   build/crc32c-bench
 * Prints, per size, MB/s of crc32c_sw (the portable table path) and crc32c_hw (SSE4.2). */
#include "tb/crc32c.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* MB/s of fn over len-byte buffers, repeated for about 0.3 s. */
static double rate(uint32_t (*fn)(uint32_t, const void *, size_t), const unsigned char *p,
		   size_t len, uint32_t *sink)
{
	size_t reps = 1;
	double t0, t;

	for (;;) {
		t0 = now();
		for (size_t i = 0; i < reps; i++)
			*sink += fn(*sink, p, len);
		t = now() - t0;
		if (t > 0.3)
			return (double)reps * len / t / 1e6;
		reps *= 2;
	}
}

int main(void)
{
	static const size_t sizes[] = { 8, 40, 4096, 65536, 1 << 20 };
	unsigned char *buf = malloc(1 << 20);
	uint32_t sink = 0;

	if (!buf)
		return 1;
	for (size_t i = 0; i < 1 << 20; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 24);
	printf("hardware path: %s\n", crc32c_have_hw() ? "SSE4.2" : "none (hw falls back to sw)");
	printf("%10s %12s %12s\n", "bytes", "sw MB/s", "hw MB/s");
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
		printf("%10zu %12.0f %12.0f\n", sizes[k], rate(crc32c_sw, buf, sizes[k], &sink),
		       rate(crc32c_hw, buf, sizes[k], &sink));
	free(buf);
	return (int)(sink & 0);
}
