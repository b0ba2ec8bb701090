/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by the unit tests (include after cmocka.h). */
#ifndef KVMNC_TEST_HELPERS_H
#define KVMNC_TEST_HELPERS_H

#include "fake-kernel.h"
#include "internal.h"

/*
 * The handle behind a caller's token, for tests that look inside it (no
 * reference: only while the test itself keeps the handle open).
 */
#define OBJ(h) kvmnc_handle_obj(h)

static inline int teardown_fake(void **state)
{
	(void)state;
	fake_uninstall();
	return 0;
}

/* A fresh fake kernel of @personality, a VM on it and a handle. */
static inline struct kvmnc *fake_handle(const char *personality, int scope, int mech, int *vm)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = scope, .mechanism = mech);
	struct kvmnc *h = NULL;

	fake_reset(fake_personality(personality));
	*vm = fake_create_vm();
	assert_int_equal(kvmnc_open(*vm, &o, &h), 0);
	return h;
}

static inline struct kvmnc_region region(uint32_t slot, uint64_t gpa, uint64_t size, bool nc)
{
	struct kvmnc_region r = {
		.sz = sizeof(r),
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = 0x7f0000000000ULL + gpa,
		.kvmnc_flags = nc ? KVMNC_REGION_NONCOHERENT : 0,
	};
	return r;
}

#endif
