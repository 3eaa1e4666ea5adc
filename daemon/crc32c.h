/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c: CRC-32C (Castagnoli), the checksum of WAL records and headers.
 * Software, eight bytes a step; tables built on first use (thread-safe).
 */
#ifndef KANAL_CRC32C_H
#define KANAL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
