// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The log callbacks: the process-wide one (kvmnc_set_log()), a handle's own
 * (kvmnc_set_handle_log()), and the queue that holds what a call says under
 * a handle's lock until the lock is dropped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define LOG_MSG_MAX 512

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static kvmnc_log_fn log_fn;
static void *log_ctx;
static int log_max = -1;

KVMNC_API void kvmnc_set_log(kvmnc_log_fn fn, int max_level, void *ctx)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_ctx = ctx;
	__atomic_store_n(&log_max, fn ? max_level : -1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&log_lock);
}

static void deliver(int level, const char *msg)
{
	kvmnc_log_fn fn;
	void *ctx;

	pthread_mutex_lock(&log_lock);
	fn = level <= log_max ? log_fn : NULL;
	ctx = log_ctx;
	pthread_mutex_unlock(&log_lock);
	if (fn)
		fn(level, msg, ctx);
}

/* Formatting costs; skip it when nobody listens at this level. */
static bool listened(int level)
{
	return level <= __atomic_load_n(&log_max, __ATOMIC_RELAXED);
}

void kvmnc_log(int level, const char *fmt, ...)
{
	char msg[LOG_MSG_MAX];
	va_list ap;

	if (!listened(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	deliver(level, msg);
}

void kvmnc_logq_add(struct kvmnc_logq *q, int level, const char *fmt, ...)
{
	va_list ap;

	if (q->fn ? level > q->max : !listened(level))
		return;
	if (q->n == KVMNC_LOGQ) {
		q->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(q->m[q->n].msg, sizeof(q->m[0].msg), fmt, ap);
	va_end(ap);
	q->m[q->n++].level = level;
}

/* A handle's messages go to its own callback when it has one, else to the process's. */
void kvmnc_logq_deliver(const struct kvmnc_logq *q)
{
	char msg[LOG_MSG_MAX];

	for (uint32_t i = 0; i < q->n; i++) {
		if (q->fn)
			q->fn(q->m[i].level, q->m[i].msg, q->ctx);
		else
			deliver(q->m[i].level, q->m[i].msg);
	}
	if (!q->dropped)
		return;
	if (!q->fn) {
		kvmnc_log(KVMNC_LOG_WARN, "%u more library messages were dropped", q->dropped);
	} else if (q->max >= KVMNC_LOG_WARN) {
		snprintf(msg, sizeof(msg), "%u more library messages were dropped", q->dropped);
		q->fn(KVMNC_LOG_WARN, msg, q->ctx);
	}
}

KVMNC_API int kvmnc_set_handle_log(struct kvmnc *hd, kvmnc_log_fn fn, int max_level, void *ctx)
{
	struct kvmnc *h;
	int r = kvmnc_handle_get(hd, &h);

	if (r < 0)
		return r;
	/* Under the handle lock: the queue's copy taken at delivery sees both or neither. */
	h->logq.fn = fn;
	h->logq.ctx = fn ? ctx : NULL;
	h->logq.max = fn ? max_level : -1;
	kvmnc_handle_put(h);
	return 0;
}

void kvmnc_log_fork_lock(void)
{
	pthread_mutex_lock(&log_lock);
}

void kvmnc_log_fork_unlock(void)
{
	pthread_mutex_unlock(&log_lock);
}
