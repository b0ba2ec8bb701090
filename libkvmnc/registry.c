// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Handle lifetime without a process-wide lock.
 *
 * Handles live in slabs that are never freed, so that any pointer the
 * library once handed out can be looked at safely: a closed handle, or a
 * pointer into no slab at all, gives -EBADF instead of a crash. Validating a
 * handle is a walk over a few slab bounds and one compare-and-swap on the
 * handle's own state word (open bit and reference count); nothing else is
 * shared between calls on different handles, so the migration copy helpers
 * can run on many threads at once (bench/kvmnc-handle-bench.c measures it).
 * A closed slot is reused last-closed-last (a rotating cursor), which keeps a
 * stale pointer detectable for as long as possible; once reused it names the
 * new handle, like a closed fd number.
 *
 * fork(): an atfork handler takes every library lock before the fork and
 * releases them in both processes, so a child finds them free and its state
 * consistent even when other threads were inside the library.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ST_OPEN	 1u
#define ST_LIVE	 2u /* allocated: open, being opened, or closed with references left */
#define ST_REF	 4u
#define SLAB_MIN 16u

struct slab {
	struct slab *next;
	uint32_t n;
	struct kvmnc h[];
};

static struct slab *slabs;
static uint32_t nhandles; /* under grow_lock */
static uint32_t cursor;
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;

static struct slab *first_slab(void)
{
	return __atomic_load_n(&slabs, __ATOMIC_ACQUIRE);
}

static bool is_handle(const struct kvmnc *h)
{
	uintptr_t p = (uintptr_t)h;

	for (struct slab *s = first_slab(); s; s = s->next) {
		uintptr_t lo = (uintptr_t)s->h, hi = (uintptr_t)(s->h + s->n);

		if (p >= lo && p < hi)
			return (p - lo) % sizeof(struct kvmnc) == 0;
	}
	return false;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&grow_lock);
	kvmnc_log_fork_lock();
	for (struct slab *s = first_slab(); s; s = s->next)
		for (uint32_t i = 0; i < s->n; i++)
			pthread_mutex_lock(&s->h[i].lock);
}

static void fork_release(void)
{
	for (struct slab *s = first_slab(); s; s = s->next)
		for (uint32_t i = 0; i < s->n; i++)
			pthread_mutex_unlock(&s->h[i].lock);
	kvmnc_log_fork_unlock();
	pthread_mutex_unlock(&grow_lock);
}

static void register_atfork(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_release);
}

static void init_handle(struct kvmnc *h)
{
	/* Everything after the lifetime word and the type-stable lock. */
	memset(&h->closed, 0, sizeof(*h) - offsetof(struct kvmnc, closed));
	h->vm_fd = -1;
	h->region_dev_fd = -1;
	kvmnc_table_init(&h->nc, sizeof(struct kvmnc_slot));
	kvmnc_table_init(&h->pending, sizeof(struct kvmnc_pending));
	kvmnc_table_init(&h->devs, sizeof(struct kvmnc_dev));
	kvmnc_table_init(&h->plain, sizeof(struct kvmnc_slot));
	kvmnc_ncs_init(h);
}

static struct kvmnc *claim(void)
{
	uint32_t start = __atomic_fetch_add(&cursor, 1, __ATOMIC_RELAXED);

	for (struct slab *s = first_slab(); s; s = s->next) {
		for (uint32_t k = 0; k < s->n; k++) {
			struct kvmnc *h = &s->h[(start + k) % s->n];
			uint32_t free_state = 0;

			if (__atomic_compare_exchange_n(&h->state, &free_state, ST_LIVE, false,
							__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				return h;
		}
	}
	return NULL;
}

/* One more slab, twice as large as all before it together; its first handle is ours. */
static struct kvmnc *grow(void)
{
	struct slab *s;
	uint32_t n;

	pthread_mutex_lock(&grow_lock);
	n = nhandles < SLAB_MIN ? SLAB_MIN : nhandles;
	s = SYS(calloc, 1, sizeof(*s) + (size_t)n * sizeof(struct kvmnc));
	if (!s) {
		pthread_mutex_unlock(&grow_lock);
		return NULL;
	}
	s->n = n;
	for (uint32_t i = 0; i < n; i++)
		pthread_mutex_init(&s->h[i].lock, NULL);
	s->h[0].state = ST_LIVE;
	s->next = slabs;
	__atomic_store_n(&slabs, s, __ATOMIC_RELEASE);
	nhandles += n;
	pthread_mutex_unlock(&grow_lock);
	return &s->h[0];
}

struct kvmnc *kvmnc_handle_alloc(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct kvmnc *h;

	pthread_once(&once, register_atfork);
	h = claim();
	if (!h)
		h = grow();
	if (h)
		init_handle(h);
	return h;
}

/* What an unpublished handle (no lock taken yet) logged. */
static void flush_log(struct kvmnc *h)
{
	struct kvmnc_logq q = h->logq;

	h->logq.n = h->logq.dropped = 0;
	kvmnc_logq_deliver(&q);
}

void kvmnc_handle_publish(struct kvmnc *h)
{
	flush_log(h);
	__atomic_store_n(&h->state, ST_LIVE | ST_OPEN, __ATOMIC_RELEASE);
}

void kvmnc_release_devices(struct kvmnc *h)
{
	for (uint32_t i = 0; i < h->devs.n; i++) {
		struct kvmnc_dev *d = kvmnc_table_at(&h->devs, i);

		if (d->fd >= 0)
			SYS(close, d->fd);
	}
	kvmnc_table_free(&h->devs);
	if (h->region_dev_fd >= 0)
		SYS(close, h->region_dev_fd);
	h->region_dev_fd = -1;
}

/* The last reference is gone and the handle is closed: its slot is free again. */
static void retire(struct kvmnc *h)
{
	kvmnc_release_devices(h);
	kvmnc_table_free(&h->nc);
	kvmnc_table_free(&h->pending);
	kvmnc_table_free(&h->plain);
	/* No reader is left: each held a reference. */
	kvmnc_ncs_destroy(h);
	__atomic_store_n(&h->state, 0, __ATOMIC_RELEASE);
}

void kvmnc_handle_discard(struct kvmnc *h)
{
	flush_log(h);
	retire(h);
}

int kvmnc_handle_ref(struct kvmnc *h)
{
	uint32_t s;

	if (!h || !is_handle(h))
		return -EBADF;
	s = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
	do {
		if (!(s & ST_OPEN))
			return -EBADF;
	} while (!__atomic_compare_exchange_n(&h->state, &s, s + ST_REF, true, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	return 0;
}

int kvmnc_handle_check(const struct kvmnc *h)
{
	if (!h || !is_handle(h))
		return -EBADF;
	return __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) & ST_OPEN ? 0 : -EBADF;
}

void kvmnc_handle_unref(struct kvmnc *h)
{
	if (__atomic_sub_fetch(&h->state, ST_REF, __ATOMIC_ACQ_REL) == ST_LIVE)
		retire(h);
}

int kvmnc_handle_get(struct kvmnc *h)
{
	int r = kvmnc_handle_ref(h);

	if (r < 0)
		return r;
	pthread_mutex_lock(&h->lock);
	if (h->closed) {
		kvmnc_handle_put(h);
		return -EBADF;
	}
	return 0;
}

/* Messages wait until the lock is dropped: the callback may call back in. */
void kvmnc_handle_put(struct kvmnc *h)
{
	struct kvmnc_logq q;
	bool said = h->logq.n || h->logq.dropped;

	if (said) {
		memcpy(&q, &h->logq, sizeof(q));
		h->logq.n = h->logq.dropped = 0;
	}
	pthread_mutex_unlock(&h->lock);
	kvmnc_handle_unref(h);
	if (said)
		kvmnc_logq_deliver(&q);
}

int kvmnc_handle_close_begin(struct kvmnc *h)
{
	uint32_t s;

	if (!is_handle(h))
		return -EBADF;
	s = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
	do {
		if (!(s & ST_OPEN))
			return -EBADF;
	} while (!__atomic_compare_exchange_n(&h->state, &s, (s & ~ST_OPEN) + ST_REF, true,
					      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	pthread_mutex_lock(&h->lock);
	return 0;
}
