// SPDX-License-Identifier: LGPL-2.1-or-later
/* Error texts, names, versions and the log callback. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"

static void test_strerror(void **state)
{
	(void)state;
	assert_non_null(strstr(kvmnc_strerror(-EOPNOTSUPP), "mechanism"));
	assert_non_null(strstr(kvmnc_strerror(-ENOTTY), "KVM VM"));
	assert_non_null(strstr(kvmnc_strerror(-E2BIG), "does not know"));
	assert_string_equal(kvmnc_strerror(EBADF), kvmnc_strerror(-EBADF));
	assert_string_equal(kvmnc_strerror(0), "Success");
	assert_non_null(kvmnc_strerror(-EIO));
	assert_non_null(kvmnc_strerror(-99999));
	assert_non_null(kvmnc_strerror(-2147483647));
	/* -INT_MIN overflows: 1.0 negated it (undefined behaviour, caught by UBSan). */
	assert_string_equal(kvmnc_strerror(INT_MIN), "Unknown error");
	assert_string_equal(kvmnc_strerror(INT_MAX), "Unknown error");
	assert_non_null(strstr(kvmnc_strerror(-EBUSY), "KVMNC_OPEN_DEVICES"));
	assert_non_null(strstr(kvmnc_strerror(-EALREADY), "plan"));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(kvmnc_mechanism_name(KVMNC_MECH_NONE), "none");
	assert_string_equal(kvmnc_mechanism_name(KVMNC_MECH_NATIVE), "native");
	assert_string_equal(kvmnc_mechanism_name(KVMNC_MECH_MEMSLOT_FLAG), "memslot_flag");
	assert_string_equal(kvmnc_mechanism_name(KVMNC_MECH_VIRTIO_DEVICE), "virtio_device");
	assert_string_equal(kvmnc_mechanism_name(KVMNC_MECH_GUEST_PAT_QUIRK), "guest_pat_quirk");
	assert_null(kvmnc_mechanism_name(5));
	assert_null(kvmnc_mechanism_name(-1));
}

static void test_version(void **state)
{
	char want[32];

	(void)state;
	snprintf(want, sizeof(want), "%u.%u.%u", kvmnc_version_major(), kvmnc_version_minor(),
		 kvmnc_version_patch());
	assert_string_equal(kvmnc_version(), want);
	assert_int_equal(kvmnc_version_major(), KVMNC_VERSION_MAJOR);
	assert_int_equal(kvmnc_version_minor(), KVMNC_VERSION_MINOR);
}

static int nlogged, last_level;
static char last_msg[512];

static void logger(int level, const char *msg, void *ctx)
{
	assert_ptr_equal(ctx, &nlogged);
	nlogged++;
	last_level = level;
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
}

static void test_log(void **state)
{
	struct kvmnc_features f = {.sz = sizeof(f)};

	(void)state;
	/* Nothing is logged (or printed) without a callback. */
	fake_reset(fake_personality("no-scratch-vm"));
	assert_int_equal(kvmnc_probe(NULL, &f), 0);
	assert_int_equal(nlogged, 0);

	kvmnc_set_log(logger, KVMNC_LOG_WARN, &nlogged);
	assert_int_equal(kvmnc_probe(NULL, &f), 0);
	assert_true(nlogged > 0);
	assert_int_equal(last_level, KVMNC_LOG_WARN);
	assert_non_null(strstr(last_msg, "scratch VM"));

	/* Below the threshold: not delivered. */
	nlogged = 0;
	kvmnc_set_log(logger, KVMNC_LOG_ERROR, &nlogged);
	assert_int_equal(kvmnc_probe(NULL, &f), 0);
	assert_int_equal(nlogged, 0);

	kvmnc_set_log(NULL, KVMNC_LOG_DEBUG, NULL);
	assert_int_equal(kvmnc_probe(NULL, &f), 0);
	assert_int_equal(nlogged, 0);
}

struct heard {
	int n, level[16];
	char msg[16][256];
	bool locked[16];
	struct kvmnc *h;
};

static void collect(int level, const char *msg, void *ctx)
{
	struct heard *w = ctx;

	if (w->n < 16) {
		w->level[w->n] = level;
		snprintf(w->msg[w->n], sizeof(w->msg[0]), "%s", msg);
		/* The callback must never run under the handle's lock. */
		if (w->h) {
			w->locked[w->n] = pthread_mutex_trylock(&OBJ(w->h)->lock) != 0;
			if (!w->locked[w->n])
				pthread_mutex_unlock(&OBJ(w->h)->lock);
		}
	}
	w->n++;
}

/*
 * docs/errors.md: at most 4 messages per call wait for the lock to drop; the
 * rest are counted in one "dropped" warning. In order, each cut to its
 * slot, and what nobody listens to is neither queued nor counted.
 */
static void test_log_queue_limit(void **state)
{
	struct kvmnc_logq q = {0};
	struct heard w = {0};
	char lng[400];

	(void)state;
	assert_int_equal(KVMNC_LOGQ, 4);
	memset(lng, 'x', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	kvmnc_set_log(collect, KVMNC_LOG_INFO, &w);
	for (int i = 0; i < 7; i++)
		kvmnc_logq_add(&q, i == 1 ? KVMNC_LOG_WARN : KVMNC_LOG_INFO, "queued %d %s", i,
			       i == 2 ? lng : "");
	/* Not listened to at this level: not queued, not counted as dropped. */
	kvmnc_logq_add(&q, KVMNC_LOG_DEBUG, "unheard");
	assert_int_equal(w.n, 0);
	assert_int_equal(q.n, 4);
	assert_int_equal(q.dropped, 3);
	kvmnc_logq_deliver(&q);
	assert_int_equal(w.n, 5);
	assert_string_equal(w.msg[0], "queued 0 ");
	assert_int_equal(w.level[0], KVMNC_LOG_INFO);
	assert_string_equal(w.msg[1], "queued 1 ");
	assert_int_equal(w.level[1], KVMNC_LOG_WARN);
	assert_int_equal(strlen(w.msg[2]), sizeof(q.m[0].msg) - 1);
	assert_memory_equal(w.msg[2], "queued 2 xxx", 12);
	assert_string_equal(w.msg[3], "queued 3 ");
	assert_string_equal(w.msg[4], "3 more library messages were dropped");
	assert_int_equal(w.level[4], KVMNC_LOG_WARN);
	kvmnc_set_log(NULL, 0, NULL);
}

/* Through a handle: held while its lock is, delivered after, and not again. */
static void test_log_queue_handle(void **state)
{
	struct heard w = {0};
	struct kvmnc *h, *obj;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	w.h = h;
	kvmnc_set_log(collect, KVMNC_LOG_DEBUG, &w);
	assert_int_equal(kvmnc_handle_get(h, &obj), 0);
	for (int i = 0; i < 6; i++)
		hpr_debug(obj, "under the lock %d", i);
	assert_int_equal(w.n, 0);
	kvmnc_handle_put(obj);
	assert_int_equal(w.n, 5);
	for (int i = 0; i < 5; i++)
		assert_false(w.locked[i]);
	assert_string_equal(w.msg[3], "under the lock 3");
	assert_string_equal(w.msg[4], "2 more library messages were dropped");
	/* The next call starts with an empty queue: nothing is delivered twice. */
	w.n = 0;
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	assert_int_equal(w.n, 0);
	kvmnc_set_log(NULL, 0, NULL);
	assert_int_equal(kvmnc_close(h), 0);
}

static int close_warnings;

static void count_close(int level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level == KVMNC_LOG_WARN && strstr(msg, "no longer honored"))
		close_warnings++;
}

/* Point 6: closing drops the VIRTIO device; regions losing it are not silent. */
static void test_close_warns(void **state)
{
	struct kvmnc_region r = region(1, 0, 1 << 20, true);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, &vm);
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	kvmnc_set_log(count_close, KVMNC_LOG_WARN, NULL);
	assert_int_equal(kvmnc_close(h), 0);
	assert_int_equal(close_warnings, 1);
	/* The flag belongs to the slot: nothing to warn about. */
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	assert_int_equal(kvmnc_close(h), 0);
	kvmnc_set_log(NULL, 0, NULL);
	assert_int_equal(close_warnings, 1);
}

/*
 * Issue 19, API: a handle's messages go to its own callback, so a VMM can
 * route them to the VM they concern; other handles and the probe stay on
 * the process-wide one.
 */
static void test_handle_log(void **state)
{
	struct kvmnc_region r = {.sz = sizeof(r),
				 .slot = 1,
				 .memory_size = 4096,
				 .userspace_addr = 0x7f0000000000ULL,
				 .kvmnc_flags = KVMNC_REGION_NONCOHERENT};
	struct heard all = {0}, one = {0}, two = {0};
	struct kvmnc *a, *b;
	int va, vb;

	(void)state;
	a = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &va);
	vb = fake_create_vm();
	KVMNC_OPTS(kvmnc_open_opts, o);
	assert_int_equal(kvmnc_open(vb, &o, &b), 0);
	kvmnc_set_log(collect, KVMNC_LOG_DEBUG, &all);
	one.h = a;
	two.h = b;
	assert_int_equal(kvmnc_set_handle_log(a, collect, KVMNC_LOG_DEBUG, &one), 0);
	assert_int_equal(kvmnc_set_handle_log(b, collect, KVMNC_LOG_DEBUG, &two), 0);
	assert_int_equal(kvmnc_set_region(a, &r), 0);
	assert_int_equal(one.n, 1);
	assert_non_null(strstr(one.msg[0], "slot 0x1"));
	assert_false(one.locked[0]);
	assert_int_equal(two.n, 0);
	assert_int_equal(all.n, 0);
	r.guest_phys_addr = 1ULL << 30;
	assert_int_equal(kvmnc_set_region(b, &r), 0);
	assert_int_equal(two.n, 1);
	assert_int_equal(one.n, 1);
	/* Its own level: nothing below it is formatted or delivered. */
	assert_int_equal(kvmnc_set_handle_log(b, collect, KVMNC_LOG_WARN, &two), 0);
	r.memory_size = 0;
	assert_int_equal(kvmnc_set_region(b, &r), 0);
	assert_int_equal(two.n, 1);
	/* Back to the process-wide callback. */
	assert_int_equal(kvmnc_set_handle_log(a, NULL, 0, NULL), 0);
	r.guest_phys_addr = 0;
	assert_int_equal(kvmnc_set_region(a, &r), 0);
	assert_int_equal(one.n, 1);
	assert_int_equal(all.n, 1);
	kvmnc_set_log(NULL, 0, NULL);
	kvmnc_close(a);
	kvmnc_close(b);
	assert_int_equal(kvmnc_set_handle_log(a, collect, KVMNC_LOG_DEBUG, &one), -EBADF);
}

static void *other_thread_error(void *arg)
{
	(void)arg;
	/* Another thread's error: the main thread's last meaning stays. */
	assert_int_equal(kvmnc_probe("/dev/nonexistent", &(struct kvmnc_features){.sz = 8}),
			 -ENOENT);
	return NULL;
}

/*
 * Issue 19, API: one errno, several meanings. -ENOENT was "No such KVM
 * node, memslot, enabled device or pending region plan" whatever happened
 * (kvmnc-probe -d /nonexist printed that); -EBADF a bad fd or a bad handle.
 * kvmnc_strerror() names the meaning of the error the thread last got.
 */
static void test_strerror_meaning(void **state)
{
	KVMNC_OPTS(kvmnc_features, f);
	struct kvmnc *h;
	pthread_t t;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	assert_int_equal(kvmnc_device_disable(h, 9), -ENOENT);
	assert_non_null(strstr(kvmnc_strerror(-ENOENT), "device model is not enabled"));
	assert_int_equal(kvmnc_region_removed(h, 9), -ENOENT);
	assert_non_null(strstr(kvmnc_strerror(-ENOENT), "knows no memslot"));
	assert_int_equal(kvmnc_region_complete(h, 9, 0), -ENOENT);
	assert_non_null(strstr(kvmnc_strerror(-ENOENT), "No region plan"));
	pthread_create(&t, NULL, other_thread_error, NULL);
	pthread_join(t, NULL);
	assert_non_null(strstr(kvmnc_strerror(-ENOENT), "No region plan"));
	assert_int_equal(kvmnc_probe("/dev/nonexistent", &f), -ENOENT);
	assert_string_equal(kvmnc_strerror(-ENOENT),
			    "No such KVM node (or a node without its driver)");
	/* Another errno than the last one: its general text. */
	assert_non_null(strstr(kvmnc_strerror(-EALREADY), "plan"));
	kvmnc_close(h);
	assert_int_equal(kvmnc_is_noncoherent(h), -EBADF);
	assert_non_null(strstr(kvmnc_strerror(-EBADF), "libkvmnc handle"));
	assert_int_equal(kvmnc_open(-1, NULL, &h), -EBADF);
	assert_non_null(strstr(kvmnc_strerror(-EBADF), "VM fd"));
}

/* docs/reasons.tsv, given on the command line (meson.build). */
static const char *reasons_tsv;

/* The one table of reason codes is what the library names them. */
static void test_reason_table(void **state)
{
	char line[512], name[64];
	int rows = 0, value;
	FILE *f;

	(void)state;
	if (!reasons_tsv)
		skip();
	f = fopen(reasons_tsv, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		assert_int_equal(sscanf(line, "%d\t%63[^\t]", &value, name), 2);
		assert_int_equal(value, rows);
		assert_non_null(kvmnc_reason_name(value));
		assert_string_equal(kvmnc_reason_name(value), name);
		rows++;
	}
	fclose(f);
	assert_int_equal(rows, KVMNC_REASON_UC_VRAM_DISPLAY + 1);
	assert_null(kvmnc_reason_name(rows));
	assert_null(kvmnc_reason_name(-1));
}

int main(int argc, char **argv)
{
	if (argc > 1)
		reasons_tsv = argv[1];

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_version),
		cmocka_unit_test_teardown(test_log, teardown_fake),
		cmocka_unit_test(test_log_queue_limit),
		cmocka_unit_test_teardown(test_log_queue_handle, teardown_fake),
		cmocka_unit_test_teardown(test_close_warns, teardown_fake),
		cmocka_unit_test_teardown(test_handle_log, teardown_fake),
		cmocka_unit_test(test_reason_table),
		cmocka_unit_test_teardown(test_strerror_meaning, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
