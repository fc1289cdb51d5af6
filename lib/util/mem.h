/* mem: faulting memory in ahead of its first use, so that a hot loop or a thread that must
 * not wait does not pay the kernel's (or a VM host's) page faults one page at a time; and
 * zeroed buffers on cache-line boundaries, for the vector loops that stream them. */
#ifndef PETCNN_MEM_H
#define PETCNN_MEM_H

#include <stddef.h>

/* Faults in the whole pages of [p, p + bytes) for writing, keeping their contents: in one
 * MADV_POPULATE_WRITE where the kernel has it (5.14 on), else by touching a byte of each
 * page (read and written back, so no other thread may write those bytes meanwhile). */
void mem_fault(void *p, size_t bytes);

/* calloc(n, size) at a 64-byte boundary (NULL: out of memory or n x size overflows),
 * freed by mem_free64 alone.
 * From calloc, so a large block comes as fresh zero pages, none faulted in yet. glibc's
 * large blocks start 16 bytes past a page, so every 64-byte vector of a float buffer there
 * spans two cache lines: fc1's forward at 224 (batch 10, one thread, Zen 5) took 24 ms
 * over such weights and 19 over aligned ones. */
void *mem_calloc64(size_t n, size_t size);
void mem_free64(void *p);

/* Bytes the program may still take before the system or its cgroup must reclaim or kill:
 * the least of /proc/meminfo's MemAvailable and the cgroup's limit less its usage (v2's
 * memory.max, v1's memory.limit_in_bytes); 0 when none of them can be read. */
size_t mem_available(void);

#endif
