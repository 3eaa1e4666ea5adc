/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c: see crc32c.h. Reflected polynomial 0x82F63B78. On x86-64 with
 * SSE4.2 the CPU's crc32 instruction does it (several GB/s, which is what
 * makes a 1 GiB WAL replay fast); elsewhere software, slicing-by-8.
 * Check value: crc32c(0, "123456789", 9) == 0xE3069283.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void
table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^
			    table[0][table[t - 1][i] & 0xff];
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t
crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = ~crc;

	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static int have_hw;

static void
detect(void)
{
	__builtin_cpu_init();
	have_hw = __builtin_cpu_supports("sse4.2");
	table_init();
}
#else
static void
detect(void)
{
	table_init();
}
#endif

static uint32_t
crc32c_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= crc;
		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		    table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		    table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		    table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

uint32_t
crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&table_once, detect);
#if defined(__x86_64__)
	if (have_hw)
		return crc32c_hw(crc, data, len);
#endif
	return crc32c_sw(crc, data, len);
}

uint32_t
crc32c_software(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&table_once, detect);
	return crc32c_sw(crc, data, len);
}
