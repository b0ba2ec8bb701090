// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kvmnc-handle-bench: what validating a handle costs on every call, the
 * evidence for keeping (lock-free) or dropping the handle registry. Public
 * API only, so the same source builds against any release:
 *
 *   ./build/bench/kvmnc-handle-bench                      (this tree)
 *   cc -O2 -I$OLD/include bench/kvmnc-handle-bench.c $OLD_BUILD/libkvmnc/libkvmnc.so -pthread
 *
 * ns per call (min / median of 9 rounds of 1,000,000 calls) for:
 *   is_noncoherent   a call that takes the handle (validation + handle lock)
 *   flush(len 0)     only says whether the handle is open
 *   copy 64 B        kvmnc_copy_from_guest on plain memory (migration's hot path)
 * with 1 handle open, with 100 open (1.0 scanned a global list), and on two
 * threads each using its own handle (1.0 serialized them on a global lock).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <kvmnc.h>

#include "bench.h"

#define CALLS  1000000
#define ROUNDS 9
#define MANY   100

enum { OP_NONCOHERENT, OP_FLUSH0, OP_COPY64, NOPS };
static const char *const op_name[NOPS] = {"is_noncoherent", "flush(len 0)", "copy 64 B"};

struct job {
	struct kvmnc *h;
	int op;
	double ns;
	pthread_barrier_t *go;
};

static void *run(void *arg)
{
	struct job *j = arg;
	static __thread char src[64], dst[64];
	double t;

	if (j->go)
		pthread_barrier_wait(j->go);
	t = bench_now();
	for (int i = 0; i < CALLS; i++) {
		int r = j->op == OP_NONCOHERENT ? kvmnc_is_noncoherent(j->h)
			: j->op == OP_FLUSH0	? kvmnc_flush(j->h, src, 0)
						: kvmnc_copy_from_guest(j->h, dst, src, 64);

		if (r < 0) {
			fprintf(stderr, "%s: %s\n", op_name[j->op], kvmnc_strerror(r));
			exit(2);
		}
	}
	j->ns = (bench_now() - t) / CALLS * 1e9;
	return NULL;
}

/* min and median ns over ROUNDS, on @nthreads threads each with its own handle. */
static void measure(struct kvmnc **hs, int nthreads, int op, double *min, double *med)
{
	double v[ROUNDS];

	for (int k = 0; k < ROUNDS; k++) {
		pthread_barrier_t go;
		pthread_t th[2];
		struct job j[2];

		pthread_barrier_init(&go, NULL, (unsigned)nthreads);
		for (int t = 0; t < nthreads; t++) {
			j[t] = (struct job){.h = hs[t], .op = op, .go = &go};
			pthread_create(&th[t], NULL, run, &j[t]);
		}
		v[k] = 0;
		for (int t = 0; t < nthreads; t++) {
			pthread_join(th[t], NULL);
			v[k] += j[t].ns / nthreads;
		}
		pthread_barrier_destroy(&go);
	}
	qsort(v, ROUNDS, sizeof(v[0]), bench_cmp_double);
	*min = v[0];
	*med = v[ROUNDS / 2];
}

int main(void)
{
	struct kvmnc *hs[MANY] = {0};
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vms[MANY];
	double mn[3][NOPS], md[3][NOPS];

	if (kvm < 0) {
		perror("kvmnc-handle-bench: /dev/kvm");
		return 77;
	}
	for (int i = 0; i < MANY; i++) {
		vms[i] = ioctl(kvm, _IO(0xAE, 0x01), 0);
		if (vms[i] < 0) {
			perror("kvmnc-handle-bench: KVM_CREATE_VM");
			return 2;
		}
	}
	/* One handle open, then a hundred. */
	if (kvmnc_open(vms[0], NULL, &hs[0]) < 0)
		return 2;
	for (int op = 0; op < NOPS; op++)
		measure(hs, 1, op, &mn[0][op], &md[0][op]);
	for (int i = 1; i < MANY; i++) {
		if (kvmnc_open(vms[i], NULL, &hs[i]) < 0)
			return 2;
	}
	for (int op = 0; op < NOPS; op++) {
		/* The newest handle: the end of a list scanned front to back. */
		struct kvmnc *last[1] = {hs[MANY - 1]};

		measure(last, 1, op, &mn[1][op], &md[1][op]);
		measure(hs, 2, op, &mn[2][op], &md[2][op]);
	}

	printf("libkvmnc %s: ns per call, min / median of %d rounds of %d calls\n", kvmnc_version(),
	       ROUNDS, CALLS);
	printf("%-16s %17s %17s %21s\n", "call", "1 handle", "100 handles", "2 threads, 2 handles");
	for (int op = 0; op < NOPS; op++)
		printf("%-16s %7.1f / %7.1f %7.1f / %7.1f %9.1f / %9.1f\n", op_name[op], mn[0][op],
		       md[0][op], mn[1][op], md[1][op], mn[2][op], md[2][op]);
	for (int op = 0; op < NOPS; op++)
		printf("handle_ns_%d_1=%.1f\nhandle_ns_%d_100=%.1f\nhandle_ns_%d_2threads=%.1f\n",
		       op, md[0][op], op, md[1][op], op, md[2][op]);
	for (int i = 0; i < MANY; i++) {
		kvmnc_close(hs[i]);
		close(vms[i]);
	}
	close(kvm);
	return 0;
}
