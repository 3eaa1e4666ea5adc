/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c: CRC-32C (Castagnoli), the checksum of WAL records and headers.
 * The CPU's instruction where there is one (x86-64 SSE4.2), else software;
 * chosen on first use (thread-safe).
 */
#ifndef KANAL_CRC32C_H
#define KANAL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* The same, always in software (tests compare the two). */
uint32_t crc32c_software(uint32_t crc, const void *data, size_t len);

#endif
