// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz-open: bytes -> kvmnc_probe() with a features struct of arbitrary
 * size, then kvmnc_open() with arbitrary struct kvmnc_open_opts contents
 * and size on a VM fd (or on an fd of the wrong kind), with one kernel call
 * failing at a position and with an errno chosen by the input.
 *
 * Invariants:
 *  - return values are 0 or a negative errno;
 *  - out-parameters are untouched on failure, and a features struct is
 *    filled exactly to the caller's size (the rest zeroed, nothing beyond);
 *  - no scratch mapping stays mapped after any call, and no fd the library
 *    opened stays open after kvmnc_probe(), after a failed kvmnc_open() and
 *    after kvmnc_close(): the fake holds exactly the fds the harness opened.
 *
 * Input layout: personality, fault position, fault errno, probe size and
 * path, then for each of up to two handles: vm fd kind, opts mode, opts
 * bytes; the rest picks queries on the open handles.
 */
#include <stdbool.h>

#include "fuzz-common.h"

#define OPTS_BUF 96u

/* dev_path is never fuzz-controlled: one of these, or NULL. */
static const char *const paths[] = {
	NULL, "/dev/kvm", "/dev/kvm-alt", "", "/dev/null", "kvm", "/dev/kvm/",
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

union feat_buf {
	struct kvmnc_features f;
	unsigned char b[sizeof(struct kvmnc_features) + 64];
};

/* kvmnc_probe() into a caller struct of @sz bytes; checks the contract. */
static int do_probe(const char *path, size_t sz)
{
	union feat_buf u;
	int r;

	memset(&u, 0xa5, sizeof(u));
	u.f.sz = sz;
	r = kvmnc_probe(path, &u.f);
	FZ_CHECK_RET0(r);
	FZ_CHECK(fake_open_maps() == 0);
	if (sz < sizeof(size_t) || (path && !path[0]))
		FZ_CHECK(r == -EINVAL);
	if (r < 0) {
		/* Untouched. */
		FZ_CHECK(u.f.sz == sz);
		for (size_t i = sizeof(size_t); i < sizeof(u.b); i++)
			FZ_CHECK(u.b[i] == 0xa5);
		return r;
	}
	for (size_t i = sz; i < sizeof(u.b); i++)
		FZ_CHECK(u.b[i] == 0xa5);
	fz_check_features(&u.f, sz);
	return r;
}

/* The fd the handle is opened on: a VM as the VMM holds it, or something else. */
static int gen_fd(struct fuzz_in *in, int *vm, int *nfds)
{
	uint8_t k = fz_u8(in);
	int fd;

	switch (k % 16) {
	case 0:
		return -1;
	case 1:
		return 1 << 20; /* never opened */
	case 2:
		fd = fake_open_system_fd();
		break;
	case 3:
		fd = fake_open_other_fd();
		break;
	case 4:
		fd = fake_open_vcpu_fd(*vm);
		break;
	case 5:
		/* Opened and closed again. */
		fd = fake_open_other_fd();
		if (fd >= 0)
			fake_close(fd);
		return fd;
	default:
		return *vm;
	}
	if (fd >= 0)
		(*nfds)++;
	return fd;
}

/* Builds the options in @u, returns the pointer to pass (NULL or the struct). */
static struct kvmnc_open_opts *gen_opts(struct fuzz_in *in, void *buf, bool *trailing_nz)
{
	struct kvmnc_open_opts *o = buf;
	unsigned char *b = buf;
	uint8_t mode = fz_u8(in);
	size_t sz;

	*trailing_nz = false;
	if ((mode & 7) == 0)
		return NULL;
	memset(buf, 0, OPTS_BUF);
	if (mode & 8) {
		fz_bytes(in, buf, OPTS_BUF);
	} else {
		uint8_t v = fz_u8(in);

		o->scope = v % 4;
		o->mechanism = (v >> 2) % 6;
		if (v & 0x80)
			o->scope = (int)fz_u32(in);
		if (v & 0x40)
			o->mechanism = (int)fz_u32(in);
	}
	switch (mode >> 4 & 3) {
	case 0:
		sz = sizeof(*o);
		break;
	case 1:
		sz = fz_u8(in) % (sizeof(*o) + 1);
		break;
	default:
		sz = sizeof(*o) + fz_u8(in) % (OPTS_BUF - sizeof(*o) + 1);
		break;
	}
	if (!(mode & 8) || (mode & 0x40) || sz <= sizeof(*o))
		memset(b + sizeof(*o), 0, OPTS_BUF - sizeof(*o));
	/* The pointer member: a fixed string or NULL, whatever the input said. */
	o->dev_path = paths[fz_u8(in) % NPATHS];
	o->sz = sz;
	for (size_t i = sizeof(*o); i < sz; i++)
		*trailing_nz |= b[i] != 0;
	return o;
}

/* Queries on an open handle with caller structs of arbitrary size. */
static void query(struct fuzz_in *in, struct kvmnc *h)
{
	union feat_buf u;
	size_t sz = fz_u16(in) % (sizeof(u.b) + 1);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	int r;

	memset(&u, 0xa5, sizeof(u));
	u.f.sz = sz;
	r = kvmnc_get_features(h, &u.f);
	FZ_CHECK(sz < sizeof(size_t) ? r == -EINVAL : r == 0);
	if (r == 0) {
		for (size_t i = sz; i < sizeof(u.b); i++)
			FZ_CHECK(u.b[i] == 0xa5);
		fz_check_features(&u.f, sz);
	}
	FZ_CHECK(kvmnc_get_info(h, &info) == 0);
	FZ_CHECK(info.region_mechanism >= 0 && info.region_mechanism <= 4);
	FZ_CHECK(info.device_mechanism >= 0 && info.device_mechanism <= 4);
	FZ_CHECK(info.noncoherent_regions == 0 && info.enabled_devices == 0);
	/* Nothing declared yet, whatever the quirk. */
	FZ_CHECK(kvmnc_is_noncoherent(h) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool log_set;
	struct fuzz_in in = {data, size};
	_Alignas(max_align_t) unsigned char obuf[2][OPTS_BUF];
	struct kvmnc *h[2] = {NULL, NULL};
	int vm, nfds = 0, fds[2], r;
	uint8_t nth, b;
	int err;

	if (!log_set) {
		kvmnc_set_log(fz_log, KVMNC_LOG_DEBUG, NULL);
		log_set = true;
	}
	fake_reset(&fake_personalities[fz_u8(&in) % fake_npersonalities]);
	nth = fz_u8(&in);
	err = fz_errno(&in);
	vm = fake_create_vm();
	if (vm >= 0)
		nfds++;

	/* A failure at call 1..64 from here on; 0 and above 64: none. */
	if (nth && nth <= 64)
		fake_fail_nth(nth, err);

	b = fz_u8(&in);
	if (b & 1) {
		size_t sz = fz_u16(&in) % (sizeof(union feat_buf) + 1);

		do_probe(paths[((b >> 1) & 0x3f) % NPATHS], sz);
		FZ_CHECK(fake_open_fds() == nfds);
		/* Twice: the second answer may come from the cache. */
		if (b & 0x80) {
			do_probe(paths[((b >> 1) & 0x3f) % NPATHS], sizeof(struct kvmnc_features));
			FZ_CHECK(fake_open_fds() == nfds);
		}
	}

	for (int i = 0; i < 2 && vm >= 0; i++) {
		struct kvmnc *sentinel = (struct kvmnc *)&fds; /* any non-NULL value */
		struct kvmnc_open_opts *o;
		bool trailing_nz, null_out;
		int before;

		fds[i] = gen_fd(&in, &vm, &nfds);
		o = gen_opts(&in, obuf[i], &trailing_nz);
		before = fake_open_fds();
		h[i] = sentinel;
		null_out = fz_u8(&in) == 0xff;
		r = kvmnc_open(fds[i], o, null_out ? NULL : &h[i]);
		FZ_CHECK_RET0(r);
		FZ_CHECK(fake_open_maps() == 0);
		if (null_out || (o && o->sz < sizeof(size_t)))
			FZ_CHECK(r == -EINVAL);
		else if (o && trailing_nz)
			FZ_CHECK(r == -E2BIG);
		if (fds[i] < 0)
			FZ_CHECK(r == -EBADF || r == -EINVAL || r == -E2BIG);
		if (r < 0) {
			FZ_CHECK(h[i] == sentinel);
			h[i] = NULL;
			/* A failed open leaves nothing behind. */
			FZ_CHECK(fake_open_fds() == before);
			continue;
		}
		FZ_CHECK(h[i] != sentinel && h[i] != NULL);
		/* Only a VM is accepted (unless a kernel call was made to fail). */
		FZ_CHECK(fds[i] == vm || fake_fail_hit());
		/* The quirk may be disabled here, but no device exists yet. */
		FZ_CHECK(fake_open_fds() == nfds);
		if (fz_u8(&in) & 1)
			query(&in, h[i]);
		if (i == 0 && (fz_u8(&in) & 3) == 0)
			break;
	}

	for (int i = 0; i < 2; i++) {
		if (!h[i])
			continue;
		FZ_CHECK(kvmnc_close(h[i]) == 0);
		FZ_CHECK(fake_open_fds() == nfds);
	}
	fake_fail_nth(0, 0);
	FZ_CHECK(fake_open_fds() == nfds);
	FZ_CHECK(fake_open_maps() == 0);
	FZ_CHECK(kvmnc_close(NULL) == 0);
	return 0;
}
