// SPDX-License-Identifier: LGPL-2.1-or-later
/* The device path: enable/disable per device model, idempotence, cleanup. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "compat-kvm.h"
#include "helpers.h"

static void test_virtio_device(void **state)
{
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	assert_int_equal(kvmnc_device_enable(h, 0x0800), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 1);
	assert_int_equal(vs.noncoherent_devices, 1);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);

	/* Enabling again changes nothing. */
	assert_int_equal(kvmnc_device_enable(h, 0x0800), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 1);

	/* Each device model has its own KVM device: the kernel counts them. */
	assert_int_equal(kvmnc_device_enable(h, 0x1000), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 2);
	assert_int_equal(kvmnc_get_info(h, &info), 0);
	assert_int_equal(info.enabled_devices, 2);

	assert_int_equal(kvmnc_device_disable(h, 0x0800), 0);
	assert_int_equal(kvmnc_device_disable(h, 0x0800), -ENOENT);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 1);
	assert_int_equal(vs.devices, 1);

	/* Closing the handle drops the rest. */
	assert_int_equal(kvmnc_close(h), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 0);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(fake_open_fds(), 1);
}

static void test_many_devices(void **state)
{
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	for (uint32_t i = 0; i < 40; i++)
		assert_int_equal(kvmnc_device_enable(h, i), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 40);
	for (uint32_t i = 0; i < 40; i += 2)
		assert_int_equal(kvmnc_device_disable(h, i), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 20);
	for (uint32_t i = 1; i < 40; i += 2)
		assert_int_equal(kvmnc_device_enable(h, i), 0); /* still one each */
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 20);
	kvmnc_close(h);
	assert_int_equal(fake_open_fds(), 1);
}

static void test_slot_scope_refuses(void **state)
{
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_device_enable(h, 1), -EOPNOTSUPP);
	assert_int_equal(fake_open_fds(), 1);
	kvmnc_close(h);
	h = fake_handle("pvm-shadow", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	assert_int_equal(kvmnc_device_enable(h, 1), -EOPNOTSUPP);
	kvmnc_close(h);
}

static void test_native_and_quirk(void **state)
{
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("amd-npt", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_device_enable(h, 7), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	assert_int_equal(kvmnc_device_disable(h, 7), 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	kvmnc_close(h);

	/*
	 * Flag for regions, quirk for devices. 6.12 does not recompute mappings
	 * when the quirk goes, so it is disabled at open for a caller that
	 * declares devices, and refused later for one that did not.
	 */
	h = fake_handle("chromeos-6.12", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	struct kvmnc_region plain = region(0, 0, 1 << 20, false);

	assert_int_equal(kvmnc_set_region(h, &plain), 0);
	assert_int_equal(kvmnc_device_enable(h, 9), -EBUSY);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.disabled_quirks, 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	kvmnc_close(h);

	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE,
		   .flags = KVMNC_OPEN_DEVICES);
	vm = fake_create_vm();
	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.disabled_quirks, KVMNC_QUIRK_IGNORE_GUEST_PAT);
	assert_int_equal(kvmnc_device_enable(h, 9), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	/* Irreversible in the kernel; but no device declared, nothing non-coherent. */
	assert_int_equal(kvmnc_device_disable(h, 9), 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	kvmnc_close(h);

	/* Regions on the quirk: disabled at open whatever the flags. */
	h = fake_handle("stable-6.12-intel", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	assert_int_equal(kvmnc_device_enable(h, 9), 0);
	kvmnc_close(h);
}

/* A device whose SET fails is closed again, and nothing is recorded. */
static void test_set_fails(void **state)
{
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	/* enable = handle checks (none) + CREATE_DEVICE + SET_DEVICE_ATTR. */
	fake_fail_nth(2, EIO);
	assert_int_equal(kvmnc_device_enable(h, 3), -EIO);
	assert_true(fake_fail_hit());
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_device_disable(h, 3), -ENOENT);
	kvmnc_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_virtio_device, teardown_fake),
		cmocka_unit_test_teardown(test_many_devices, teardown_fake),
		cmocka_unit_test_teardown(test_slot_scope_refuses, teardown_fake),
		cmocka_unit_test_teardown(test_native_and_quirk, teardown_fake),
		cmocka_unit_test_teardown(test_set_fails, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
