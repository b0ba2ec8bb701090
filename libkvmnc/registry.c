// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Handle lifetime: generation-checked handles, without a process-wide lock
 * on the calls.
 *
 * The struct kvmnc * a caller holds is not the handle's address but a
 * token: the index of a slot in the registry and the slot's generation,
 * odd so that it is never a pointer anything could dereference. A slot
 * (its state word, the handle's address and the handle's lock-free range
 * sets, emptied at close: under 1 KiB) stays for the process; the handle
 * itself (lock, tables, fds, log queue) is allocated at open and freed
 * when it is closed and its last reference is gone. Closing a slot's handle moves the
 * slot to its next generation, so a stale token (use after close, double
 * close) gives -EBADF, also after the slot has been reused for another VM:
 * 1.1 handed out raw addresses of type-stable memory, and a stale pointer
 * named the next handle in that memory (issue 19, bug 6). A generation is
 * 32 bits: a stale token could name a new handle only after 2^32 reuses of
 * its slot, and slots are reused round-robin.
 *
 * Validating a token is an index computation and one compare-and-swap on
 * the slot's state word (generation, open bit and reference count); calls
 * on different handles share nothing, so the migration copy helpers run on
 * many threads at once (bench/kvmnc-handle-bench.c measures it).
 *
 * fork(): an atfork handler takes the registry lock and the lock of every
 * handle that exists (never of freed ones: 1.1 locked every slot it ever
 * allocated), so a child finds them free and its state consistent even
 * when other threads were inside the library.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Slot state word: generation << 32 | references << 2 | LIVE | OPEN. */
#define ST_OPEN	  1ull
#define ST_LIVE	  2ull /* allocated: open, being opened, or closed with references left */
#define ST_REF	  4ull
#define ST_GEN(w) ((uint32_t)((w) >> 32))
#define ST_LOW(w) ((uint32_t)(w))
#define CHUNK0	  16u
#define NCHUNKS	  24 /* 16 * (2^24 - 1) slots at most */
#define TOKEN_TAG 1u
#define IDX_BITS  31

/*
 * Cache-line aligned: threads on different handles never share a line.
 * The range sets live here, not in the handle, so the copy helpers' fast
 * path can read them with a plain check of the word and no reference.
 */
struct slot {
	uint64_t word;
	struct kvmnc *h; /* written under reg_lock only */
	/* Under reg_lock: the VM fd of the open handle @bound names (one VM, one handle). */
	const struct kvmnc *bound;
	int vm_fd;
	struct kvmnc_ncs ncs;
} __attribute__((aligned(64)));

/* Chunk k holds CHUNK0 << k slots, indices from CHUNK0 * (2^k - 1). */
_Static_assert(sizeof(struct slot) <= 1024, "a slot stays for the process: keep it small");

static struct slot *chunks[NCHUNKS];
static uint32_t nchunks; /* atomic; chunks below it are published */
static uint32_t cursor;	 /* under reg_lock */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t chunk_of(uint32_t idx, uint32_t *off)
{
	uint32_t k = 31 - (uint32_t)__builtin_clz(idx / CHUNK0 + 1);

	*off = idx - CHUNK0 * ((1u << k) - 1);
	return k;
}

static uint32_t nslots(uint32_t n)
{
	return CHUNK0 * ((1u << n) - 1);
}

static struct slot *slot_at(uint32_t idx)
{
	uint32_t off, k;

	if (idx >= nslots(__atomic_load_n(&nchunks, __ATOMIC_ACQUIRE)))
		return NULL;
	k = chunk_of(idx, &off);
	return &chunks[k][off];
}

/*
 * Tokens: generation in the upper bits, index and the tag below, so a
 * token is odd (no handle address is) and never NULL. A 32-bit pointer
 * keeps 15 bits of generation.
 */
static struct kvmnc *token_of(uint32_t idx, uint32_t gen)
{
	uint64_t t = ((uint64_t)gen << 32) | ((uint64_t)idx << 1) | TOKEN_TAG;

	if (sizeof(uintptr_t) < sizeof(uint64_t))
		t = ((uint64_t)(gen & 0x7fff) << 17) | ((uint64_t)(idx & 0xffff) << 1) | TOKEN_TAG;
	return (struct kvmnc *)(uintptr_t)t;
}

static struct slot *slot_of_token(const struct kvmnc *token, uint32_t *gen)
{
	uint64_t t = (uintptr_t)token;

	if (!(t & TOKEN_TAG))
		return NULL;
	if (sizeof(uintptr_t) < sizeof(uint64_t)) {
		*gen = (uint32_t)(t >> 17);
		return slot_at((uint32_t)(t >> 1) & 0xffff);
	}
	*gen = (uint32_t)(t >> 32);
	return slot_at((uint32_t)(t >> 1) & ((1u << IDX_BITS) - 1));
}

/* The generation as a token carries it (fewer bits on 32-bit systems). */
static uint32_t token_gen(uint32_t gen)
{
	return sizeof(uintptr_t) < sizeof(uint64_t) ? gen & 0x7fff : gen;
}

static void fork_prepare(void)
{
	uint32_t n;

	pthread_mutex_lock(&reg_lock);
	kvmnc_log_fork_lock();
	n = nslots(nchunks);
	for (uint32_t i = 0; i < n; i++) {
		struct kvmnc *h = slot_at(i)->h;

		if (h)
			pthread_mutex_lock(&h->lock);
	}
}

static void fork_release(void)
{
	uint32_t n = nslots(nchunks);

	for (uint32_t i = 0; i < n; i++) {
		struct kvmnc *h = slot_at(i)->h;

		if (h)
			pthread_mutex_unlock(&h->lock);
	}
	kvmnc_log_fork_unlock();
	pthread_mutex_unlock(&reg_lock);
}

static void register_atfork(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_release);
}

static void init_handle(struct kvmnc *h)
{
	pthread_mutex_init(&h->lock, NULL);
	h->vm_fd = -1;
	h->region_dev_fd = -1;
	kvmnc_table_init(&h->nc, sizeof(struct kvmnc_slot));
	kvmnc_table_init(&h->pending, sizeof(struct kvmnc_pending));
	kvmnc_table_init(&h->devs, sizeof(struct kvmnc_dev));
	kvmnc_table_init(&h->plain, sizeof(struct kvmnc_slot));
	h->logq.max = -1;
}

/* Under reg_lock: a free slot, round-robin from the cursor, or a new chunk. */
static struct slot *claim(uint32_t *idx)
{
	uint32_t n = nslots(nchunks);
	struct slot *chunk;

	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = (cursor + k) % n;
		struct slot *s = slot_at(i);

		if (!(__atomic_load_n(&s->word, __ATOMIC_RELAXED) & ST_LIVE)) {
			cursor = i + 1;
			*idx = i;
			return s;
		}
	}
	if (nchunks == NCHUNKS)
		return NULL;
	chunk = SYS(calloc, (size_t)CHUNK0 << nchunks, sizeof(*chunk));
	if (!chunk)
		return NULL;
	chunks[nchunks] = chunk;
	__atomic_store_n(&nchunks, nchunks + 1, __ATOMIC_RELEASE);
	*idx = n;
	cursor = n + 1;
	return &chunk[0];
}

struct kvmnc *kvmnc_handle_alloc(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct kvmnc *h;
	struct slot *s;
	uint32_t idx;

	pthread_once(&once, register_atfork);
	h = SYS(calloc, 1, sizeof(*h));
	if (!h)
		return NULL;
	init_handle(h);
	pthread_mutex_lock(&reg_lock);
	s = claim(&idx);
	if (s) {
		uint32_t gen = ST_GEN(__atomic_load_n(&s->word, __ATOMIC_RELAXED));

		/* Generation 0 is never handed out: a zeroed token names nothing. */
		if (token_gen(gen) == 0)
			gen++;
		s->h = h;
		h->slot_idx = idx;
		h->token = token_of(idx, gen);
		h->ncs = &s->ncs;
		__atomic_store_n(&s->word, ((uint64_t)gen << 32) | ST_LIVE, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&reg_lock);
	if (!s) {
		pthread_mutex_destroy(&h->lock);
		free(h);
		return NULL;
	}
	/* LIVE and not open: no token reaches the sets until publish. */
	kvmnc_ncs_init(h);
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
	__atomic_or_fetch(&slot_at(h->slot_idx)->word, ST_OPEN, __ATOMIC_RELEASE);
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

/*
 * The last reference is gone and the handle is closed: the slot moves to
 * its next generation (every token of this one is stale from now) and the
 * handle's memory goes back to the allocator. Detached under reg_lock, so
 * that fork_prepare() never locks a handle being freed.
 */
static void retire(struct kvmnc *h)
{
	struct slot *s = slot_at(h->slot_idx);

	/* Emptied while the slot is LIVE, so that no new handle can claim it yet. */
	kvmnc_ncs_destroy(h);
	pthread_mutex_lock(&reg_lock);
	s->h = NULL;
	s->bound = NULL;
	s->vm_fd = -1;
	__atomic_store_n(&s->word,
			 (uint64_t)(ST_GEN(__atomic_load_n(&s->word, __ATOMIC_RELAXED)) + 1) << 32,
			 __ATOMIC_RELEASE);
	pthread_mutex_unlock(&reg_lock);

	kvmnc_release_devices(h);
	kvmnc_table_free(&h->nc);
	kvmnc_table_free(&h->pending);
	kvmnc_table_free(&h->plain);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void kvmnc_handle_discard(struct kvmnc *h)
{
	flush_log(h);
	retire(h);
}

static int bad_handle(void)
{
	return kvmnc_err(-EBADF, "Not an open libkvmnc handle (closed, or never one)");
}

int kvmnc_handle_ref(const struct kvmnc *token, struct kvmnc **out)
{
	struct slot *s;
	uint32_t gen;
	uint64_t w;

	if (!token || !(s = slot_of_token(token, &gen)))
		return bad_handle();
	w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
	do {
		if (!(w & ST_OPEN) || token_gen(ST_GEN(w)) != gen)
			return bad_handle();
	} while (!__atomic_compare_exchange_n(&s->word, &w, w + ST_REF, true, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	/* Set before the open bit, and not changed while a reference is held. */
	*out = s->h;
	return 0;
}

void kvmnc_handle_unref(struct kvmnc *h)
{
	struct slot *s = slot_at(h->slot_idx);
	uint64_t w = __atomic_sub_fetch(&s->word, ST_REF, __ATOMIC_ACQ_REL);

	if (ST_LOW(w) == ST_LIVE)
		retire(h);
}

int kvmnc_handle_get(const struct kvmnc *token, struct kvmnc **out)
{
	struct kvmnc *h;
	int r = kvmnc_handle_ref(token, &h);

	if (r < 0)
		return r;
	pthread_mutex_lock(&h->lock);
	if (h->closed) {
		kvmnc_handle_put(h);
		return bad_handle();
	}
	*out = h;
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
	/* The queue was copied: the handle may be freed with its last reference. */
	kvmnc_handle_unref(h);
	if (said)
		kvmnc_logq_deliver(&q);
}

int kvmnc_handle_close_begin(const struct kvmnc *token, struct kvmnc **out)
{
	struct slot *s;
	uint32_t gen;
	uint64_t w;

	if (!(s = slot_of_token(token, &gen)))
		return bad_handle();
	w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
	do {
		if (!(w & ST_OPEN) || token_gen(ST_GEN(w)) != gen)
			return bad_handle();
	} while (!__atomic_compare_exchange_n(&s->word, &w, (w & ~ST_OPEN) + ST_REF, true,
					      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	*out = s->h;
	pthread_mutex_lock(&(*out)->lock);
	return 0;
}

int kvmnc_handle_bind_vm(struct kvmnc *h, int vm_fd)
{
	uint32_t n;
	int r = 0;

	pthread_mutex_lock(&reg_lock);
	n = nslots(nchunks);
	for (uint32_t i = 0; i < n && r == 0; i++) {
		struct slot *s = slot_at(i);

		if (!s->bound || i == h->slot_idx)
			continue;
		/*
		 * The caller keeps the VM fd open while its handle is, so an equal
		 * number is the same VM; another fd of the same file needs kcmp(),
		 * which a sandbox may refuse (then only numbers are compared).
		 */
		if (s->vm_fd == vm_fd || SYS(same_file, s->vm_fd, vm_fd) == 0)
			r = -EISCONN;
	}
	if (r == 0) {
		slot_at(h->slot_idx)->bound = h->token;
		slot_at(h->slot_idx)->vm_fd = vm_fd;
	}
	pthread_mutex_unlock(&reg_lock);
	return r;
}

void kvmnc_handle_unbind_vm(const struct kvmnc *token)
{
	struct slot *s;
	uint32_t gen;

	pthread_mutex_lock(&reg_lock);
	s = slot_of_token(token, &gen);
	if (s && s->bound == token) {
		s->bound = NULL;
		s->vm_fd = -1;
	}
	pthread_mutex_unlock(&reg_lock);
}

struct kvmnc_ncs *kvmnc_handle_ncs(const struct kvmnc *token)
{
	struct slot *s;
	uint32_t gen;
	uint64_t w;

	if (!(s = slot_of_token(token, &gen)))
		return NULL;
	w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
	return (w & ST_OPEN) && token_gen(ST_GEN(w)) == gen ? &s->ncs : NULL;
}

struct kvmnc *kvmnc_handle_obj(const struct kvmnc *token)
{
	struct slot *s;
	uint32_t gen;
	uint64_t w;

	if (!token || !(s = slot_of_token(token, &gen)))
		return NULL;
	w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
	return (w & ST_OPEN) && token_gen(ST_GEN(w)) == gen ? s->h : NULL;
}

uint32_t kvmnc_handle_count(void)
{
	uint32_t n, live = 0;

	pthread_mutex_lock(&reg_lock);
	n = nslots(nchunks);
	for (uint32_t i = 0; i < n; i++)
		live += slot_at(i)->h != NULL;
	pthread_mutex_unlock(&reg_lock);
	return live;
}
