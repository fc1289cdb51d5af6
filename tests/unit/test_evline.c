/* Unit tests for lib/evline: lines become records in the right run's file, bad lines are
 * errors that leave the writer usable, NaN in a histogram is a warning, --split routes by
 * the tag's first component. The bytes themselves are checked by tests/tfevents-write.bats
 * (protoc); here, the files' sizes grow and their folders appear. */
#include "check.h"
#include "tb/evline.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* bytes in the one event file of dir (-1: not exactly one) */
static long file_size(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	long size = -1;
	int n = 0;
	char path[1024];
	struct stat st;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "events.out.tfevents.", 20)) {
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			if (stat(path, &st) == 0)
				size = (long)st.st_size;
			n++;
		}
	closedir(d);
	return n == 1 ? size : -1;
}

static int apply(evline *e, const char *text, char *err)
{
	char line[256];

	snprintf(line, sizeof line, "%s", text);
	return evline_do(e, line, err);
}

int main(void)
{
	char dir[] = "/tmp/test_evline.XXXXXX", sub[1100], err[ERR_MAX];
	evline e;
	long s0 = -1, s1 = -1;

	if (!mkdtemp(dir))
		return perror("mkdtemp"), 1;
	CHECK(evline_open(&e, dir, NULL, 0, err) == 0, "open: %s", err);
	CHECK(evline_flush(&e, err) == 0 && (s0 = file_size(dir)) > 0, "the file exists at once");
	CHECK(apply(&e, "# a comment", err) == 0 && apply(&e, "   ", err) == 0, "comments and blanks");
	CHECK(apply(&e, "5 Loss 0.75", err) == 0 && apply(&e, "6 Loss scalar nan", err) == 0, "scalars: %s", err);
	CHECK(apply(&e, "x Loss 1", err) == -1 && strstr(err, "'x' is not a step") && !e.failed,
	      "a bad step is a bad line: %s", err);
	CHECK(apply(&e, "7 Loss 1 2", err) == -1 && strstr(err, "unexpected"), "extra text: %s", err);
	CHECK(apply(&e, "8 h hist 1 2 nan inf", err) == 0 && strstr(e.warning, "1 NaN, 1 +Inf"),
	      "NaN/Inf left out of a histogram, said: '%s'", e.warning);
	CHECK(apply(&e, "9 t text a\\nb", err) == 0 && !e.warning[0], "text, and the warning is per line");
	CHECK(evline_flush(&e, err) == 0 && (s1 = file_size(dir)) > s0, "records written: %ld -> %ld", s0, s1);
	CHECK(evline_close(&e, err) == 0, "close: %s", err);

	CHECK(evline_open(&e, dir, "r", 1, err) == 0, "open split: %s", err);
	CHECK(apply(&e, "1 train/Loss 0.5", err) == 0 && apply(&e, "1 test/Loss 0.6", err) == 0 &&
	      apply(&e, "1 Loss 0.7", err) == 0, "split lines: %s", err);
	CHECK(apply(&e, "1 ../Loss 0.7", err) == -1, "'..' is not a run");
	CHECK(evline_close(&e, err) == 0, "close: %s", err);
	snprintf(sub, sizeof sub, "%s/train", dir);
	CHECK(file_size(sub) > 0, "train/ has its file");
	snprintf(sub, sizeof sub, "%s/test", dir);
	CHECK(file_size(sub) > 0, "test/ has its file");
	snprintf(sub, sizeof sub, "%s/r", dir);
	CHECK(file_size(sub) > 0, "a tag without a run goes to --run");

	snprintf(sub, sizeof sub, "rm -rf '%s'", dir);
	CHECK(system(sub) == 0, "cleanup");
	return check_done("test_evline");
}
