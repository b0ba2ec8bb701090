// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Threads probing, opening and closing handles, enabling and disabling
 * devices and registering slots at once on one VM; run under TSan in CI.
 * Afterwards the kernel must hold exactly what the survivors hold.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
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

/* Runs @fn on a thread; false if it has not returned within 10 s (a deadlock). */
static bool finishes(void *(*fn)(void *), void *arg)
{
	struct timespec ts;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	if (pthread_timedjoin_np(t, NULL, &ts) != 0) {
		pthread_detach(t);
		return false;
	}
	return true;
}

static struct kvmnc *hammered;
static int stop;

static void *hammer(void *arg)
{
	uint32_t t = (uint32_t)(uintptr_t)arg;
	KVMNC_OPTS(kvmnc_features, f);

	for (uint32_t i = 0; !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
		struct kvmnc_region r =
			region(t * 10 + i % 5, ((uint64_t)t << 32) + i % 5 * 4096ULL, 4096, i & 1);

		kvmnc_set_region(hammered, &r);
		kvmnc_device_enable(hammered, t);
		kvmnc_probe(NULL, &f);
		kvmnc_device_disable(hammered, t);
		r.memory_size = 0;
		kvmnc_set_region(hammered, &r);
	}
	return NULL;
}

/*
 * Point 8: a child forked while other threads are inside the library can
 * close the inherited handle (1.0: 20 of 20 children hung).
 */
static void test_fork_with_threads(void **state)
{
	pthread_t th[2];
	int vm, bad = 0;

	(void)state;
	hammered = fake_handle("patched-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, &vm);
	kvmnc_set_log(NULL, 0, NULL);
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	for (uintptr_t i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)i), 0);
	for (int k = 0; k < 20; k++) {
		pid_t pid = fork();
		int st = 0;

		if (pid == 0) {
			/* A hang dies of SIGALRM. */
			alarm(10);
			_exit(kvmnc_close(hammered) == 0 && fake_open_fds() == 1 ? 0 : 1);
		}
		assert_true(pid > 0);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	print_message("%d of 20 children could not close the handle\n", bad);
	assert_int_equal(bad, 0);
	assert_int_equal(kvmnc_close(hammered), 0);
}

static struct kvmnc *logged;
static int reentered;

static void reenter(int level, const char *msg, void *ctx)
{
	struct kvmnc_handle_info info = {.sz = sizeof(info)};

	(void)level;
	(void)msg;
	(void)ctx;
	/* Back into the library, on the very handle that was logging. */
	if (kvmnc_get_info(logged, &info) == 0 && kvmnc_is_noncoherent(logged) >= 0)
		__atomic_add_fetch(&reentered, 1, __ATOMIC_RELAXED);
}

static void *enable_and_close(void *arg)
{
	struct kvmnc_region r = region(1, 0, 4096, true);

	(void)arg;
	kvmnc_device_enable(logged, 5);
	kvmnc_set_region(logged, &r);
	kvmnc_close(logged);
	return NULL;
}

/* Point 9: a log callback may call back into the library (1.0 deadlocked). */
static void test_log_reentry(void **state)
{
	int vm;

	(void)state;
	logged = fake_handle("patched-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, &vm);
	reentered = 0;
	kvmnc_set_log(reenter, KVMNC_LOG_DEBUG, NULL);
	assert_true(finishes(enable_and_close, NULL));
	kvmnc_set_log(NULL, 0, NULL);
	/* Device, region, and the close warning about the VIRTIO-backed region. */
	print_message("%d callbacks called back in\n", reentered);
	assert_true(reentered >= 2);
}

static void *probe_alt(void *arg)
{
	KVMNC_OPTS(kvmnc_features, f);

	(void)arg;
	kvmnc_probe("/dev/kvm-alt", &f);
	return NULL;
}

static void *probe_cached(void *arg)
{
	KVMNC_OPTS(kvmnc_features, f);

	*(int *)arg = kvmnc_probe(NULL, &f);
	return NULL;
}

/* Point 10: a cached answer does not wait for another path's probe I/O. */
static void test_cached_probe_does_not_wait(void **state)
{
	KVMNC_OPTS(kvmnc_features, f);
	pthread_t cold;
	int r = 1, calls;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	assert_int_equal(kvmnc_probe(NULL, &f), 0);
	fake_block_open("/dev/kvm-alt");
	assert_int_equal(pthread_create(&cold, NULL, probe_alt, NULL), 0);
	while (!fake_open_blocked())
		usleep(1000);
	calls = fake_calls();
	assert_true(finishes(probe_cached, &r));
	assert_int_equal(r, 0);
	assert_int_equal(fake_calls(), calls); /* cached: no system call */
	fake_unblock_open();
	pthread_join(cold, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_threads, teardown_fake),
		cmocka_unit_test_teardown(test_fork_with_threads, teardown_fake),
		cmocka_unit_test_teardown(test_log_reentry, teardown_fake),
		cmocka_unit_test_teardown(test_cached_probe_does_not_wait, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
