/* libFuzzer harness for event files (what tfevents-cat reads): arbitrary bytes as a file,
 * through the TFRecord reader (every CRC checked), each record's Event through tfev_iter,
 * and a graph's nodes through tfev_graph_next. The CRCs make random records rare, so the
 * seeds are real event files and the fuzzer's CRC-fixing mutations do the rest. */
#define _GNU_SOURCE
#include "util/errmsg.h"
#include "tb/tfev_read.h"
#include "tb/tfrecord.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_event(const unsigned char *p, size_t n)
{
	char err[ERR_MAX];
	tfev_iter it;
	tfev_item item;
	volatile unsigned sum = 0;
	volatile double dsum = 0;

	if (tfev_iter_init(&it, p, n, err))
		return;
	for (int k = 0; k < 1000 && tfev_iter_next(&it, &item, err) == 1; k++) {
		for (size_t i = 0; item.tag && i < item.tag_len; i++)
			sum += (unsigned char)item.tag[i];
		for (size_t i = 0; item.data && i < item.len; i++)
			sum += item.data[i];
		if (item.kind == TFEV_HISTOGRAM) {
			for (size_t i = 0; i < pb_packed_count(&item.limits); i++)
				dsum += pb_packed_double_at(&item.limits, i);
			for (size_t i = 0; i < pb_packed_count(&item.counts); i++)
				dsum += pb_packed_double_at(&item.counts, i);
		}
		if (item.kind == TFEV_GRAPH) {
			pb_reader g;
			tfev_node_view nv;

			pb_reader_init(&g, item.data, item.len);
			for (int j = 0; j < 10000 && tfev_graph_next(&g, &nv) == 1; j++)
				sum += (unsigned)nv.name_len + (unsigned)nv.op_len;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX], path[64];
	tfrecord_reader r;
	const unsigned char *payload;
	size_t len;
	int64_t off;
	int fd = memfd_create("fuzz-events", 0), rc;

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (tfrecord_reader_open(&r, path, err) == 0) {
		for (int k = 0; k < 10000; k++) {
			rc = tfrecord_reader_next(&r, &payload, &len, &off, err);
			if (rc == TFRECORD_OK)
				walk_event(payload, len);
			else if (rc != TFRECORD_BADDATA)
				break;
		}
		tfrecord_reader_close(&r);
	}
	close(fd);
	return 0;
}
