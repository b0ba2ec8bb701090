// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Threads probing, opening and closing handles, enabling devices and
 * registering slots at once on one real VM (run under TSan in CI).
 */
#include <pthread.h>
#include <sys/mman.h>

#include "live.h"

#define THREADS 4
#define ITERS	200

static int vm, vms[THREADS];
static struct kvmnc *shared;
static char *mem;
static int errors;

static void *worker(void *arg)
{
	uint32_t tid = (uint32_t)(uintptr_t)arg;
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM);
	struct kvmnc_features f = {.sz = sizeof(f)};

	for (int i = 0; i < ITERS; i++) {
		uint32_t slot = tid * 16 + (uint32_t)(i % 16);
		struct kvmnc_region r = t_region(slot, (uint64_t)slot << 20, 4096,
						 mem + (uintptr_t)slot * 4096, false);
		struct kvmnc *h = NULL;
		int rc;

		if (kvmnc_probe(NULL, &f) != 0)
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
		if (kvmnc_set_region(shared, &r) != 0)
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
		rc = kvmnc_device_enable(shared, tid);
		if (rc != 0 && rc != -EOPNOTSUPP)
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
		if (rc == 0 && kvmnc_device_disable(shared, tid) != 0)
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
		r.memory_size = 0;
		if (kvmnc_set_region(shared, &r) != 0)
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
		/* One VM, one handle (1.2): the shared VM refuses a second. */
		if (kvmnc_open(vm, &o, &h) != -EISCONN)
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
		if (kvmnc_open(vms[tid], &o, &h) != 0 || kvmnc_close(h) != 0)
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

int main(void)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM);
	pthread_t th[THREADS];
	int kvm = t_kvm_fd(), fds;

	vm = t_create_vm(kvm);
	mem = mmap(NULL, THREADS * 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	fds = t_count_fds();
	T_EQ(kvmnc_open(vm, &o, &shared), 0, "shared handle");
	for (int i = 0; i < THREADS; i++)
		vms[i] = t_create_vm(kvm);
	for (uintptr_t i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	T_EQ(errors, 0, "no call failed under concurrency");
	T_EQ(kvmnc_is_noncoherent(shared), 0, "nothing left non-coherent");
	T_EQ(kvmnc_close(shared), 0, "close");
	for (int i = 0; i < THREADS; i++)
		close(vms[i]);
	T_EQ(t_count_fds(), fds, "no fd left behind");
	close(vm);
	close(kvm);
	return t_done();
}
