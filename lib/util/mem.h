/* mem: faulting memory in ahead of its first use, so that a hot loop or a thread that must
 * not wait does not pay the kernel's (or a VM host's) page faults one page at a time. */
#ifndef PETCNN_MEM_H
#define PETCNN_MEM_H

#include <stddef.h>

/* Faults in the whole pages of [p, p + bytes) for writing, keeping their contents: in one
 * MADV_POPULATE_WRITE where the kernel has it (5.14 on), else by touching a byte of each
 * page (read and written back, so no other thread may write those bytes meanwhile). */
void mem_fault(void *p, size_t bytes);

#endif
