/* projector: the sprite plan at TensorBoard's limits, and the four files of a small run
 * (the config's exact text, rows, metadata, thumbnails in their cells, nothing left on a
 * short run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "img/imgdec.h"
#include "tb/projector.h"
#include "util/errmsg.h"

static void test_plan(void)
{
	char err[ERR_MAX];
	int side, tw, th;

	CHECK(proj_sprite_plan(37, 24, 24, &side, &tw, &th, err) == 0 && side == 7 && tw == 24 &&
	      th == 24, "37 of 24x24: %d %dx%d", side, tw, th);
	CHECK(proj_sprite_plan(1, 224, 224, &side, &tw, &th, err) == 0 && side == 1 && tw == 64 &&
	      th == 64, "one 224x224: %d %dx%d", side, tw, th);
	/* aspect kept: 100 wide, 80 high -> 64 x 51 */
	CHECK(proj_sprite_plan(4, 80, 100, &side, &tw, &th, err) == 0 && side == 2 && tw == 64 &&
	      th == 51, "80x100: %d %dx%d", side, tw, th);
	/* 128 x 64 = 8192 exactly; one more image needs a 129 side and 63-pixel thumbnails */
	CHECK(proj_sprite_plan(16384, 224, 224, &side, &tw, &th, err) == 0 && side == 128 &&
	      tw == 64, "16384: %d %d", side, tw);
	CHECK(proj_sprite_plan(16385, 224, 224, &side, &tw, &th, err) == 0 && side == 129 &&
	      tw == 63 && side * tw <= PROJ_SPRITE_MAX, "16385: %d %d", side, tw);
	CHECK(proj_sprite_plan(8192LL * 8192, 224, 224, &side, &tw, &th, err) == 0 && side == 8192 &&
	      tw == 1, "8192^2: %d %d", side, tw);
	CHECK(proj_sprite_plan(8192LL * 8192 + 1, 224, 224, &side, &tw, &th, err) == -1 &&
	      strstr(err, "no sprite"), "too many accepted: %s", err);
	CHECK(proj_sprite_plan(0, 24, 24, &side, &tw, &th, err) == -1, "no images accepted");
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s = calloc(1 << 16, 1);

	if (f && s)
		s[fread(s, 1, (1 << 16) - 1, f)] = 0;
	if (f)
		fclose(f);
	return s;
}

static void test_files(void)
{
	char dir[] = "/tmp/test_projector.XXXXXX", path[256], err[ERR_MAX];
	uint8_t img[3][2 * 3 * 3];      /* 3 images [2, 3, 3] */
	float vec[3][2] = { { 1, 0.5f }, { -2, 3e-8f }, { 0, 16777216 } };
	proj_writer w;
	char *s;

	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 18; j++)
			img[i][j] = (uint8_t)(40 * i + j + 1);
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof path, "%s/sub", dir);
	CHECK(proj_open(&w, path, 3, 2, 2, 3, err) == 0, "%s", err);
	CHECK(proj_add(&w, vec[0], img[0], "cat", "cat", err) == 0, "%s", err);
	CHECK(proj_add(&w, vec[1], img[1], "dog", "cat\tx", err) == 0, "%s", err);
	CHECK(proj_add(&w, vec[2], img[2], NULL, "dog", err) == 0, "%s", err);
	CHECK(proj_add(&w, vec[2], img[2], NULL, "dog", err) == -1, "a 4th point of 3 accepted");
	CHECK(proj_close(&w, "fc\"1\\", err) == 0, "%s", err);

	snprintf(path, sizeof path, "%s/sub/projector_config.pbtxt", dir);
	s = slurp(path);
	CHECK(s && !strcmp(s, "embeddings {\n  tensor_name: \"fc\\\"1\\\\\"\n"
			   "  tensor_path: \"tensors.tsv\"\n  metadata_path: \"metadata.tsv\"\n"
			   "  tensor_shape: 3\n  tensor_shape: 2\n  sprite {\n"
			   "    image_path: \"sprite.png\"\n    single_image_dim: 3\n"
			   "    single_image_dim: 2\n  }\n}\n"), "config:\n%s", s);
	free(s);
	snprintf(path, sizeof path, "%s/sub/tensors.tsv", dir);
	s = slurp(path);
	CHECK(s && !strcmp(s, "1\t0.5\n-2\t2.99999989e-08\n0\t16777216\n"), "tensors:\n%s", s);
	free(s);
	snprintf(path, sizeof path, "%s/sub/metadata.tsv", dir);
	s = slurp(path);
	CHECK(s && !strcmp(s, "true\tpredicted\tcorrect\ncat\tcat\tyes\ndog\tcat x\tno\n-\tdog\t-\n"),
	      "metadata:\n%s", s);
	free(s);

	/* the sprite: 2 x 2 cells of 3 x 2, image i at column i % 2, row i / 2, then black */
	{
		imgdec_image im = { 0 };
		int ok = 1;

		snprintf(path, sizeof path, "%s/sub/sprite.png", dir);
		CHECK(imgdec_file(path, NULL, &im, err) == 0, "%s", err);
		CHECK(im.w == 6 && im.h == 4, "sprite %dx%d", im.w, im.h);
		for (int i = 0; im.pix && i < 4; i++)
			for (int y = 0; y < 2; y++)
				for (int x = 0; x < 3; x++)
					for (int c = 0; c < 3; c++) {
						size_t at = (((size_t)(i / 2) * 2 + y) * 6 + (i % 2) * 3 + x) * 4 + c;
						ok &= im.pix[at] == (i < 3 ? img[i][(y * 3 + x) * 3 + c] : 0);
					}
		CHECK(ok, "thumbnails misplaced");
		free(im.pix);
	}

	/* a short run leaves nothing behind */
	snprintf(path, sizeof path, "%s/short", dir);
	CHECK(proj_open(&w, path, 2, 2, 2, 3, err) == 0, "%s", err);
	CHECK(proj_add(&w, vec[0], img[0], "cat", "cat", err) == 0, "%s", err);
	CHECK(proj_close(&w, "fc", err) == -1 && strstr(err, "1 points of the 2"), "%s", err);
	snprintf(path, sizeof path, "%s/short/tensors.tsv", dir);
	CHECK(access(path, F_OK) != 0, "a short run left %s", path);
	snprintf(path, sizeof path, "%s/short/projector_config.pbtxt", dir);
	CHECK(access(path, F_OK) != 0, "a short run left %s", path);
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	CHECK(system(path) == 0, "cleanup");
}

int main(void)
{
	test_plan();
	test_files();
	return check_done("test_projector");
}
