/* mem: faulting memory in ahead of its first use, aligned zeroed buffers (mem.h). */
#include "util/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void mem_fault(void *p, size_t bytes)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + bytes) / page * page;

	if (hi <= lo)
		return;
#ifdef MADV_POPULATE_WRITE
	if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	for (volatile unsigned char *q = (unsigned char *)lo; (uintptr_t)q < hi; q += page)
		*q = *q;
}

/* The block calloc gave is kept in the pointer-sized bytes just before the aligned ones. */
void *mem_calloc64(size_t n, size_t size)
{
	unsigned char *raw, *p;

	if ((size && n > (SIZE_MAX - 64 - sizeof raw) / size) || !(raw = calloc(n * size + 64 + sizeof raw, 1)))
		return NULL;
	p = (unsigned char *)(((uintptr_t)raw + sizeof raw + 63) & ~(uintptr_t)63);
	memcpy(p - sizeof raw, &raw, sizeof raw);
	return p;
}

void mem_free64(void *p)
{
	void *raw;

	if (!p)
		return;
	memcpy(&raw, (unsigned char *)p - sizeof raw, sizeof raw);
	free(raw);
}
