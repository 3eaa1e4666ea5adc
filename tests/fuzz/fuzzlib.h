/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzzlib: what the libFuzzer targets in tests/fuzz share.
 *
 * A target is a function of its input alone: no clock, no environment
 * beyond a scratch directory, so a crash input replays the same way
 * (docs/fuzzing.md). A broken invariant is a crash: FUZZ_CHECK prints the
 * condition and aborts, and libFuzzer keeps the input that did it.
 */
#ifndef KANAL_FUZZLIB_H
#define KANAL_FUZZLIB_H

#include <stddef.h>
#include <stdint.h>

/*
 * "Now" for every target that needs a clock: 2026-01-01T00:00:00Z in Unix
 * ms. The seed corpus's events are dated around it.
 */
#define FUZZ_NOW_MS INT64_C(1767225600000)

#define FUZZ_CHECK(cond) do {						\
	if (!(cond))							\
		fuzz_fail(__FILE__, __LINE__, #cond);			\
} while (0)

void fuzz_fail(const char *file, int line, const char *what)
    __attribute__((noreturn));

/*
 * A scratch directory of this process's own, made on the first call under
 * $TMPDIR (or /dev/shm when it exists, else /tmp) and removed at exit.
 * Never fails: a fuzzer that can't make one aborts.
 */
const char *fuzz_scratch_dir(void);

/* Removes everything inside dir (not dir itself). */
void fuzz_empty_dir(const char *dir);

/* Writes len bytes to path, replacing it. Aborts on failure. */
void fuzz_write_file(const char *path, const void *p, size_t len);

/* Silences kanal's log (the targets feed it damage on purpose). */
void fuzz_quiet_log(void);

/* libFuzzer's entry points, declared for -Wmissing-prototypes. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
