// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fork() while other threads are inside the library, on the real kernel:
 * each child must be able to close the inherited handle (1.0: 20 of 20
 * children hung on a lock a parent thread held at fork).
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "live.h"

#define THREADS 2
#define FORKS	20

static struct kvmnc *h;
static char *mem;
static int stop;

static void *hammer(void *arg)
{
	uint32_t t = (uint32_t)(uintptr_t)arg;
	KVMNC_OPTS(kvmnc_features, f);

	for (uint32_t i = 0; !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
		uint32_t slot = t * 8 + i % 8;
		struct kvmnc_region r = t_region(slot, (uint64_t)slot << 20, 4096,
						 mem + (uintptr_t)slot * 4096, false);

		kvmnc_set_region(h, &r);
		if (kvmnc_device_enable(h, t) == 0)
			kvmnc_device_disable(h, t);
		kvmnc_probe(NULL, &f);
		r.memory_size = 0;
		kvmnc_set_region(h, &r);
	}
	return NULL;
}

int main(void)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM);
	pthread_t th[THREADS];
	int kvm = t_kvm_fd(), vm, bad = 0;

	vm = t_create_vm(kvm);
	mem = mmap(NULL, THREADS * 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	T_EQ(kvmnc_open(vm, &o, &h), 0, "open");
	for (uintptr_t i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, hammer, (void *)i);
	for (int k = 0; k < FORKS; k++) {
		pid_t pid = fork();
		int st = 0;

		if (pid == 0) {
			alarm(10); /* a hang dies of SIGALRM */
			_exit(kvmnc_close(h) == 0 ? 0 : 1);
		}
		waitpid(pid, &st, 0);
		bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	T_EQ(bad, 0, "children forked under load that could not close the handle");
	T_EQ(kvmnc_is_noncoherent(h), 0, "the parent's handle still works");
	T_EQ(kvmnc_close(h), 0, "close");
	close(vm);
	close(kvm);
	return t_done();
}
