// SPDX-License-Identifier: LGPL-2.1-or-later
/* Opening and closing handles: fd checks, options, policy choice, lifetime. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "compat-kvm.h"
#include "fake-kernel.h"
#include "internal.h"

static int teardown(void **state)
{
	(void)state;
	fake_uninstall();
	return 0;
}

static struct kvmnc *open_ok(int vm, int scope, int mech)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = scope, .mechanism = mech);
	struct kvmnc *h = NULL;

	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	assert_non_null(h);
	return h;
}

static void get_info(struct kvmnc *h, struct kvmnc_handle_info *i)
{
	memset(i, 0, sizeof(*i));
	i->sz = sizeof(*i);
	assert_int_equal(kvmnc_get_info(h, i), 0);
}

struct policy {
	const char *personality;
	int scope;
	int region, device;
	bool quirk_at_open;
};

/* The narrowest mechanism the scope allows, for regions and for devices. */
static const struct policy policies[] = {
	{"debian-6.1", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_NONE, KVMNC_MECH_NONE, false},
	{"stable-6.12-intel", KVMNC_SCOPE_SLOT, KVMNC_MECH_NONE, KVMNC_MECH_NONE, false},
	{"stable-6.12-intel", KVMNC_SCOPE_VM, KVMNC_MECH_NONE, KVMNC_MECH_NONE, false},
	{"stable-6.12-intel", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_GUEST_PAT_QUIRK,
	 KVMNC_MECH_GUEST_PAT_QUIRK, true},
	{"amd-npt", KVMNC_SCOPE_SLOT, KVMNC_MECH_NATIVE, KVMNC_MECH_NATIVE, false},
	{"chromeos-6.12", KVMNC_SCOPE_SLOT, KVMNC_MECH_MEMSLOT_FLAG, KVMNC_MECH_NONE, false},
	{"patched-6.12", KVMNC_SCOPE_SLOT, KVMNC_MECH_MEMSLOT_FLAG, KVMNC_MECH_NONE, false},
	{"patched-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_MEMSLOT_FLAG, KVMNC_MECH_VIRTIO_DEVICE, false},
	{"patched-6.12", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_MEMSLOT_FLAG,
	 KVMNC_MECH_VIRTIO_DEVICE, false},
	{"patched-6.12-amd-shadow", KVMNC_SCOPE_SLOT, KVMNC_MECH_NONE, KVMNC_MECH_NONE, false},
	{"patched-6.12-amd-shadow", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE,
	 KVMNC_MECH_VIRTIO_DEVICE, false},
	/* The VM's type refuses the flag: regions fall back to VM-wide. */
	{"patched-6.12-private-vm", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE,
	 KVMNC_MECH_VIRTIO_DEVICE, false},
	{"patched-6.12-private-vm", KVMNC_SCOPE_SLOT, KVMNC_MECH_NONE, KVMNC_MECH_NONE, false},
	{"pvm-shadow", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_NONE, KVMNC_MECH_NONE, false},
};

static void test_policy(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		const struct policy *p = &policies[i];
		struct kvmnc_handle_info info;
		struct fake_vm_state vs;
		struct kvmnc *h;
		int vm;

		fake_reset(fake_personality(p->personality));
		vm = fake_create_vm();
		print_message("%s scope %d\n", p->personality, p->scope);
		h = open_ok(vm, p->scope, KVMNC_MECH_NONE);
		get_info(h, &info);
		assert_int_equal(info.region_mechanism, p->region);
		assert_int_equal(info.device_mechanism, p->device);
		assert_int_equal(info.scope, p->scope);
		assert_int_equal(info.quirk_disabled, p->quirk_at_open);
		fake_vm_state(vm, &vs);
		assert_int_equal(vs.disabled_quirks,
				 p->quirk_at_open ? KVMNC_QUIRK_IGNORE_GUEST_PAT : 0);
		assert_int_equal(kvmnc_close(h), 0);
		fake_close(vm);
		assert_int_equal(fake_open_fds(), 0);
	}
}

static void test_private_vm_features(void **state)
{
	KVMNC_OPTS(kvmnc_features, f, .recommended = 0);
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-6.12-private-vm"));
	vm = fake_create_vm();
	h = open_ok(vm, KVMNC_SCOPE_SLOT, 0);
	assert_int_equal(kvmnc_get_features(h, &f), 0);
	assert_int_equal(f.memslot_flag.supported, 0);
	assert_non_null(strstr(f.memslot_flag.reason, "VM type"));
	assert_int_equal(f.recommended, KVMNC_MECH_VIRTIO_DEVICE);
	/* The host-wide answer is unchanged. */
	assert_int_equal(kvmnc_probe(NULL, &f), 0);
	assert_int_equal(f.memslot_flag.supported, 1);
	kvmnc_close(h);
}

static void test_forced(void **state)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_SLOT,
		   .mechanism = KVMNC_MECH_VIRTIO_DEVICE);
	struct kvmnc_handle_info info;
	struct kvmnc *h = NULL;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	vm = fake_create_vm();
	/* A VM-wide mechanism outside the accepted scope is a contradiction. */
	assert_int_equal(kvmnc_open(vm, &o, &h), -EINVAL);
	assert_null(h);
	o.scope = KVMNC_SCOPE_VM;
	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	get_info(h, &info);
	assert_int_equal(info.region_mechanism, KVMNC_MECH_VIRTIO_DEVICE);
	assert_int_equal(info.device_mechanism, KVMNC_MECH_VIRTIO_DEVICE);
	kvmnc_close(h);

	/* Forcing what the kernel lacks. */
	o.mechanism = KVMNC_MECH_NATIVE;
	h = NULL;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EOPNOTSUPP);
	assert_null(h);

	/* AMD: the quirk is listed but moot, so it cannot be forced. */
	fake_reset(fake_personality("amd-npt"));
	vm = fake_create_vm();
	o.scope = KVMNC_SCOPE_VM_IRREVERSIBLE;
	o.mechanism = KVMNC_MECH_GUEST_PAT_QUIRK;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EOPNOTSUPP);
	assert_int_equal(fake_open_fds(), 1);
}

static void test_bad_fds(void **state)
{
	struct kvmnc *h = NULL;
	int vm, sys, other, vcpu;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	vm = fake_create_vm();
	sys = fake_open_system_fd();
	other = fake_open_other_fd();
	vcpu = fake_open_vcpu_fd(vm);

	assert_int_equal(kvmnc_open(-1, NULL, &h), -EBADF);
	assert_int_equal(kvmnc_open(4242, NULL, &h), -EBADF);
	assert_int_equal(kvmnc_open(sys, NULL, &h), -ENOTTY);
	assert_int_equal(kvmnc_open(other, NULL, &h), -ENOTTY);
	assert_int_equal(kvmnc_open(vcpu, NULL, &h), -ENOTTY);
	assert_null(h);
	assert_int_equal(kvmnc_open(vm, NULL, NULL), -EINVAL);
	assert_int_equal(fake_open_fds(), 4);
	assert_int_equal(kvmnc_open(vm, NULL, &h), 0);
	kvmnc_close(h);
}

static void test_bad_opts(void **state)
{
	struct {
		struct kvmnc_open_opts o;
		uint64_t newer;
	} big;
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = 0);
	struct kvmnc *h = NULL;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	vm = fake_create_vm();

	o.sz = 0;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EINVAL);
	o.sz = sizeof(o);
	o.scope = 3;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EINVAL);
	o.scope = -1;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EINVAL);
	o.scope = 0;
	o.mechanism = 5;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EINVAL);
	o.mechanism = 0;
	o.dev_path = "";
	assert_int_equal(kvmnc_open(vm, &o, &h), -EINVAL);
	o.dev_path = "/dev/no-such-kvm";
	assert_int_equal(kvmnc_open(vm, &o, &h), -ENOENT);
	assert_null(h);

	/* A newer caller: zero trailing bytes are fine, anything else is refused. */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.newer = 1;
	assert_int_equal(kvmnc_open(vm, &big.o, &h), -E2BIG);
	big.newer = 0;
	assert_int_equal(kvmnc_open(vm, &big.o, &h), 0);
	kvmnc_close(h);

	/* A size that splits the dev_path pointer never came from a real header. */
	o.dev_path = "/dev/kvm";
	o.sz = offsetof(struct kvmnc_open_opts, dev_path) + 4;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EINVAL);

	/* An older caller without dev_path. */
	o.sz = offsetofend(struct kvmnc_open_opts, mechanism);
	o.dev_path = "/dev/no-such-kvm"; /* beyond sz: must not be read */
	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	kvmnc_close(h);
	assert_int_equal(fake_open_fds(), 1);
}

/* The system fd whose API-version query fails is still not a VM. */
static void test_system_fd_query_fails(void **state)
{
	struct kvmnc *h = NULL;
	int sys;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	sys = fake_open_system_fd();
	/* fcntl, CHECK_EXTENSION, then KVM_GET_API_VERSION fails. */
	fake_fail_nth(3, ENOMEM);
	assert_int_equal(kvmnc_open(sys, NULL, &h), -ENOMEM);
	assert_true(fake_fail_hit());
	assert_null(h);
	fake_fail_nth(3, EPERM);
	assert_int_equal(kvmnc_open(sys, NULL, &h), -EPERM);
	assert_int_equal(kvmnc_open(sys, NULL, &h), -ENOTTY);
}

static void test_lifetime(void **state)
{
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct kvmnc_region r = {.sz = sizeof(r)};
	struct kvmnc *h, *h2;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	vm = fake_create_vm();
	h = open_ok(vm, KVMNC_SCOPE_VM, 0);
	h2 = open_ok(vm, KVMNC_SCOPE_VM, 0);
	assert_int_equal(kvmnc_close(h), 0);
	/* Use after close and double close are refused, not crashes. */
	assert_int_equal(kvmnc_close(h), -EBADF);
	assert_int_equal(kvmnc_get_info(h, &info), -EBADF);
	assert_int_equal(kvmnc_device_enable(h, 1), -EBADF);
	assert_int_equal(kvmnc_set_region(h, &r), -EBADF);
	assert_int_equal(kvmnc_is_noncoherent(h), -EBADF);
	assert_int_equal(kvmnc_close(NULL), 0);
	assert_int_equal(kvmnc_get_info(NULL, &info), -EBADF);
	/* The other handle on the same VM is unaffected. */
	assert_int_equal(kvmnc_get_info(h2, &info), 0);
	assert_int_equal(kvmnc_close(h2), 0);
	assert_int_equal(kvmnc_get_info(h2, NULL), -EINVAL);
	/* The caller's VM fd is still open. */
	assert_int_equal(fake_open_fds(), 1);
}

static void test_info_sizes(void **state)
{
	struct {
		struct kvmnc_handle_info i;
		char newer[8];
	} big;
	struct kvmnc_handle_info small;
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	vm = fake_create_vm();
	h = open_ok(vm, KVMNC_SCOPE_VM, 0);
	memset(&big, 0x55, sizeof(big));
	big.i.sz = sizeof(big);
	assert_int_equal(kvmnc_get_info(h, &big.i), 0);
	for (size_t i = 0; i < sizeof(big.newer); i++)
		assert_int_equal(big.newer[i], 0);
	memset(&small, 0x55, sizeof(small));
	small.sz = offsetofend(struct kvmnc_handle_info, region_mechanism);
	assert_int_equal(kvmnc_get_info(h, &small), 0);
	assert_int_equal(small.region_mechanism, KVMNC_MECH_MEMSLOT_FLAG);
	assert_int_equal(small.device_mechanism, 0x55555555);
	small.sz = 2;
	assert_int_equal(kvmnc_get_info(h, &small), -EINVAL);
	kvmnc_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_policy, teardown),
		cmocka_unit_test_teardown(test_private_vm_features, teardown),
		cmocka_unit_test_teardown(test_forced, teardown),
		cmocka_unit_test_teardown(test_bad_fds, teardown),
		cmocka_unit_test_teardown(test_bad_opts, teardown),
		cmocka_unit_test_teardown(test_system_fd_query_fails, teardown),
		cmocka_unit_test_teardown(test_lifetime, teardown),
		cmocka_unit_test_teardown(test_info_sizes, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
