/* mem: faulting memory in ahead of its first use (mem.h). */
#include "util/mem.h"

#include <stdint.h>
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
