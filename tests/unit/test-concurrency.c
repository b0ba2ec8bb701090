// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Threads probing, opening and closing handles, enabling and disabling
 * devices and registering slots at once on one VM; run under TSan in CI.
 * Afterwards the kernel must hold exactly what the survivors hold.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"

#define THREADS 4
#define ITERS	400

static struct kvmnc *shared;
static int shared_vm;
static struct kvmnc *volatile transient;
static int bad_results;

static void *worker(void *arg)
{
	uint32_t tid = (uint32_t)(uintptr_t)arg;
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct kvmnc_features f = {.sz = sizeof(f)};

	for (int i = 0; i < ITERS; i++) {
		struct kvmnc_region r =
			region(tid * 100 + (uint32_t)(i % 10),
			       ((uint64_t)tid << 32) + (uint64_t)i * 4096, 4096, i % 2);
		struct kvmnc *h = NULL, *t;
		int rc;

		if (kvmnc_probe(NULL, &f) != 0)
			__atomic_add_fetch(&bad_results, 1, __ATOMIC_RELAXED);
		if (kvmnc_set_region(shared, &r) != 0)
			__atomic_add_fetch(&bad_results, 1, __ATOMIC_RELAXED);
		if (kvmnc_device_enable(shared, tid << 8 | (uint32_t)(i % 4)) != 0)
			__atomic_add_fetch(&bad_results, 1, __ATOMIC_RELAXED);
		kvmnc_get_info(shared, &info);
		kvmnc_is_noncoherent(shared);
		r.memory_size = 0;
		if (kvmnc_set_region(shared, &r) != 0)
			__atomic_add_fetch(&bad_results, 1, __ATOMIC_RELAXED);
		if (kvmnc_device_disable(shared, tid << 8 | (uint32_t)(i % 4)) != 0)
			__atomic_add_fetch(&bad_results, 1, __ATOMIC_RELAXED);

		/* Handles come and go under other threads' feet. */
		if (kvmnc_open(shared_vm, &o, &h) == 0) {
			kvmnc_device_enable(h, 1000 + tid);
			t = __atomic_exchange_n(&transient, h, __ATOMIC_ACQ_REL);
			if (t) {
				rc = kvmnc_close(t);
				if (rc != 0 && rc != -EBADF)
					__atomic_add_fetch(&bad_results, 1, __ATOMIC_RELAXED);
			}
		}
		t = __atomic_load_n(&transient, __ATOMIC_ACQUIRE);
		rc = kvmnc_get_info(t, &info);
		if (rc != 0 && rc != -EBADF)
			__atomic_add_fetch(&bad_results, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[THREADS];
	struct fake_vm_state vs;

	(void)state;
	shared = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &shared_vm);
	for (uintptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(bad_results, 0);

	assert_int_equal(kvmnc_close(transient), 0);
	fake_vm_state(shared_vm, &vs);
	assert_int_equal(vs.nslots, 0);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_is_noncoherent(shared), 0);
	assert_int_equal(kvmnc_close(shared), 0);
	assert_int_equal(fake_open_fds(), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_threads, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
