/* jpeg_decode: the floor under pet-pack's speed: libjpeg-turbo decoding alone, with
 * pet-pack's settings (full size, accurate integer IDCT, fancy upsampling, RGB rows out
 * into a small buffer that stays in cache), from memory, nothing resized or written; as
 * tjbench times it. No resize can make pet-pack (nor Pillow, on the same libjpeg) faster.
 *
 * Usage: jpeg_decode < LIST   (pet-split's TSV or one path a line, '#' lines skipped)
 * Prints images/s, the best of 3 passes over all the files (read into memory first).
 * Built by bench/pack.sh with `pkg-config --cflags --libs libjpeg`, as pet-pack is. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
	fprintf(stderr, "jpeg_decode: %s\n", what);
	exit(1);
}

int main(void)
{
	char line[4096];
	unsigned char **buf = NULL, *rows = NULL;
	unsigned long *len = NULL;
	size_t n = 0, cap = 0, rows_cap = 0;
	double best = 0;

	while (fgets(line, sizeof line, stdin)) {
		FILE *f;
		long size;
		line[strcspn(line, "\t\n")] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			buf = realloc(buf, cap * sizeof *buf);
			len = realloc(len, cap * sizeof *len);
			if (!buf || !len)
				die("out of memory");
		}
		if (!(f = fopen(line, "rb")) || fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 ||
		    fseek(f, 0, SEEK_SET) || !(buf[n] = malloc((size_t)size)) ||
		    fread(buf[n], 1, (size_t)size, f) != (size_t)size)
			die(line);
		fclose(f);
		len[n++] = (unsigned long)size;
	}
	if (!n)
		die("no files listed");
	for (int pass = 0; pass < 3; pass++) {
		struct jpeg_decompress_struct c;
		struct jpeg_error_mgr e;
		double t = now();
		c.err = jpeg_std_error(&e);
		jpeg_create_decompress(&c);
		for (size_t i = 0; i < n; i++) {
			jpeg_mem_src(&c, buf[i], len[i]);
			jpeg_read_header(&c, TRUE);
			c.out_color_space = JCS_EXT_RGB;
			jpeg_start_decompress(&c);
			size_t stride = (size_t)c.output_width * c.output_components;
			if (rows_cap < 16 * stride) {
				free(rows);
				rows_cap = 16 * stride;
				if (!(rows = malloc(rows_cap)))
					die("out of memory");
			}
			while (c.output_scanline < c.output_height) {  /* 16 rows at a time, as pet-pack */
				JSAMPROW rp[16];
				for (int k = 0; k < 16; k++)
					rp[k] = rows + k * stride;
				for (int got = 0; got < 16 && c.output_scanline < c.output_height;)
					got += (int)jpeg_read_scanlines(&c, rp + got, (JDIMENSION)(16 - got));
			}
			jpeg_finish_decompress(&c);
		}
		jpeg_destroy_decompress(&c);
		t = (double)n / (now() - t);
		best = t > best ? t : best;
	}
	printf("%.1f\n", best);
	for (size_t i = 0; i < n; i++)
		free(buf[i]);
	free(buf);
	free(len);
	free(rows);
	return 0;
}
