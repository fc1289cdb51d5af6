/* libFuzzer harness for tfevents-write's line language: arbitrary bytes split into lines
 * and applied by evline to an event file under a scratch folder in /dev/shm, which is
 * cleared every 256 inputs so that the file stays small. Lines naming files (image, hist,
 * graph) reach the capped, regular-files-only readers with whatever path the bytes say. */
#include "util/errmsg.h"
#include "tb/evline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static evline e;
static int opened, uses;
static char dir[64];

static void reopen(void)
{
	char err[ERR_MAX], cmd[128];

	if (opened)
		evline_close(&e, NULL);
	if (!dir[0])
		snprintf(dir, sizeof dir, "/dev/shm/fuzz-evline-%d", (int)getpid());
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		abort();
	if (evline_open(&e, dir, NULL, 1, err))
		abort();
	opened = 1;
	uses = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX], *text = malloc(size + 1), *line, *save;

	if (!text)
		return 0;
	if (!opened || ++uses > 256 || e.failed)
		reopen();
	memcpy(text, data, size);
	text[size] = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (evline_do(&e, line, err) && e.failed)
			break;
	free(text);
	return 0;
}
