// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Regression runner for a fuzz harness built without libFuzzer: feeds every
 * file named on the command line, and every regular file in a directory
 * named there (in name order), to LLVMFuzzerTestOneInput once. An invariant
 * violation aborts, which fails the test.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz-common.h"

#define FUZZ_MAX_INPUT (1 << 20)

static int run_file(const char *path)
{
	static uint8_t buf[FUZZ_MAX_INPUT];
	uint8_t *copy;
	size_t n;
	FILE *f;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* A copy of exactly n bytes, so that ASan sees reads past the input. */
	copy = malloc(n ? n : 1);
	if (!copy)
		return -1;
	memcpy(copy, buf, n);
	LLVMFuzzerTestOneInput(copy, n);
	free(copy);
	return 0;
}

static int run_dir(const char *dir, int *count)
{
	struct dirent **names;
	int n, err = 0;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(path) < 0)
				err = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return err;
}

int main(int argc, char **argv)
{
	int count = 0, err = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			err = -1;
		} else if (S_ISDIR(st.st_mode)) {
			err |= run_dir(argv[i], &count);
		} else if (run_file(argv[i]) < 0) {
			err = -1;
		} else {
			count++;
		}
	}
	printf("%s: %d inputs, no invariant violated\n", argv[0], count);
	if (count == 0) {
		fprintf(stderr, "no inputs found\n");
		return 1;
	}
	return err ? 1 : 0;
}
