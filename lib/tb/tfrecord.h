/* tfrecord: the TFRecord framing of event files: records appended to a file in whole
 * records only, and read back one by one with every CRC checked.
 *
 * A record is: u64le payload length, u32le masked CRC32C of those 8 bytes, the payload,
 * u32le masked CRC32C of the payload. The mask, ((crc >> 15) | (crc << 17)) + 0xa282ead8,
 * keeps a CRC stored inside CRC'd data from checksumming to a fixed value.
 *
 * Durability: records are framed in memory and handed to the kernel whole: a write
 * flushes once TFRECORD_FLUSH_SECONDS have passed since the last flush (or 1 MiB is
 * pending), and a caller that can go quiet calls tfrecord_flush_if_due from its loop, so
 * the file is always a sequence of complete records and a crash loses only the unflushed
 * tail. A write that fails part way (a full disk) is cut back to the last whole record. */
#ifndef PETCNN_TFRECORD_H
#define PETCNN_TFRECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/buf.h"

#define TFRECORD_FLUSH_SECONDS 2.0

/* The masked CRC of a TFRecord field. */
uint32_t tfrecord_masked_crc(const void *p, size_t len);

typedef struct {
	int fd;
	char *path;           /* the file, for messages */
	struct buf pending;   /* complete records not yet written */
	int64_t size;         /* bytes of whole records in the file */
	double last_flush;    /* monotonic seconds */
	int64_t records;
	int failed;           /* a write failed: later writes are pointless */
} tfrecord_writer;

/* Takes over fd (open for writing, at offset 0 of an empty file) and path (malloc'ed). */
void tfrecord_writer_init(tfrecord_writer *w, int fd, char *path);
/* Frames one payload into the pending records, flushing if due. */
int tfrecord_write(tfrecord_writer *w, const void *payload, size_t len, char *err);
/* Hands every complete record to the kernel; on a failed or short write the file is cut
 * back to its last whole record and the writer is failed. */
int tfrecord_flush(tfrecord_writer *w, char *err);
/* tfrecord_flush if TFRECORD_FLUSH_SECONDS have passed since the last one (or 1 MiB is
 * pending). */
int tfrecord_flush_if_due(tfrecord_writer *w, char *err);
/* Flushes and closes; frees everything even on failure. */
int tfrecord_close(tfrecord_writer *w, char *err);

/* Reading: records one by one, every CRC checked. */
enum {
	TFRECORD_OK = 1,
	TFRECORD_EOF = 0,       /* clean end: no byte of a new record */
	TFRECORD_FATAL = -1,    /* truncated, bad length CRC, read error: stop */
	TFRECORD_BADDATA = -2,  /* payload CRC wrong: this record skipped, the next is readable */
};

typedef struct {
	FILE *fp;
	int own;              /* fp opened by us (not stdin) */
	char *name;
	int64_t offset;       /* of the next record */
	int64_t size;         /* file size if regular, else -1 */
	struct buf buf;       /* the current record */
} tfrecord_reader;

/* path "-" is stdin. */
int tfrecord_reader_open(tfrecord_reader *r, const char *path, char *err);
/* One of the TFRECORD_ codes; on OK *payload (valid until the next call) and *len.
 * *offset receives the record's offset in every case. */
int tfrecord_reader_next(tfrecord_reader *r, const unsigned char **payload, size_t *len,
			 int64_t *offset, char *err);
void tfrecord_reader_close(tfrecord_reader *r);

#endif
