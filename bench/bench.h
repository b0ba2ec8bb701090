/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every benchmark here times with and sorts by. No library headers:
 * kvmnc-handle-bench builds against any release from its source alone.
 */
#ifndef KVMNC_BENCH_H
#define KVMNC_BENCH_H

#include <time.h>

/* Seconds on the clock no one can step while a figure is taken. */
static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* qsort() order for samples in seconds or ns, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#endif
