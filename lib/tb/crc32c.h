/* crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum TFRecord
 * frames carry; SSE4.2's crc32 instruction where the CPU has it (every x86-64 since
 * 2008), a byte-at-a-time table elsewhere. */
#ifndef PETCNN_CRC32C_H
#define PETCNN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over buf: crc32c(crc32c(0, a), b) == crc32c(0, a b).
 * Picks the hardware path when the running CPU supports it. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The two paths, for tests: the table path always works; the hardware path only when
 * crc32c_have_hw() says so (otherwise it falls back to the table). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
int crc32c_have_hw(void);

/* TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, so a CRC stored inside
 * CRC'd data does not checksum to a fixed value. */
uint32_t crc32c_mask(uint32_t crc);
uint32_t crc32c_unmask(uint32_t masked);

#endif
