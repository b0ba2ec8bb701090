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
	/* Shadow paging: the device would change no memory type. */
	{"patched-6.12-amd-shadow", KVMNC_SCOPE_VM, KVMNC_MECH_NONE, KVMNC_MECH_NONE, false},
	{"patched-v1-nosnoop", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_NONE, KVMNC_MECH_NONE,
	 false},
	{"seed-rfc-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, KVMNC_MECH_VIRTIO_DEVICE,
	 false},
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

/* TDX VMs have the quirk forced off: native for them, whatever the mask says. */
static void test_tdx_vm(void **state)
{
	KVMNC_OPTS(kvmnc_features, f);
	struct kvmnc_handle_info info;
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("tdx-6.16"));
	vm = fake_create_vm_type(FAKE_VM_TDX);
	h = open_ok(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, 0);
	assert_int_equal(kvmnc_get_features(h, &f), 0);
	assert_int_equal(f.native.supported, 1);
	assert_non_null(strstr(f.native.reason, "TDX"));
	assert_int_equal(f.guest_pat_quirk.supported, 0);
	assert_int_equal(f.recommended, KVMNC_MECH_NATIVE);
	assert_int_equal(f.vm_flags, KVMNC_VM_PRIVATE_MEMORY | KVMNC_VM_PROTECTED_STATE);
	assert_int_equal(f.address_spaces, 1);
	get_info(h, &info);
	assert_int_equal(info.region_mechanism, KVMNC_MECH_NATIVE);
	assert_int_equal(info.device_mechanism, KVMNC_MECH_NATIVE);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.disabled_quirks, 0); /* nothing to do */
	kvmnc_close(h);

	/* A default VM on the same host still gets the quirk. */
	vm = fake_create_vm();
	h = open_ok(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, 0);
	get_info(h, &info);
	assert_int_equal(info.region_mechanism, KVMNC_MECH_GUEST_PAT_QUIRK);
	kvmnc_close(h);
}

/* Answers a scratch VM could not give come from the caller's VM, and are cached. */
static void check_from_callers_vm(const char *personality, int create_err)
{
	KVMNC_OPTS(kvmnc_features, f);
	KVMNC_OPTS(kvmnc_features, p);
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm, calls;

	fake_reset(fake_personality(personality));
	if (create_err) {
		assert_int_equal(kvmnc_probe(NULL, &p), 0);
		assert_int_equal(p.memslot_flag.supported, -create_err);
		assert_int_equal(p.probed_on, KVMNC_PROBED_NOWHERE);
	}
	vm = fake_create_vm();
	h = open_ok(vm, KVMNC_SCOPE_VM, 0);
	assert_int_equal(kvmnc_get_features(h, &f), 0);
	print_message("%s: flag %d (%s), device %d (%s)\n", personality, f.memslot_flag.supported,
		      f.memslot_flag.reason, f.virtio_device.supported, f.virtio_device.reason);
	assert_int_equal(f.probed_on, KVMNC_PROBED_CALLER_VM);
	assert_int_equal(f.memslot_flag.supported, 1);
	assert_int_equal(f.virtio_device.supported, 1);
	assert_int_equal(f.guest_pat_quirk.supported, 1);
	assert_int_equal(f.memslot_flag_cap, 239);
	assert_int_equal(f.virtio_device_type, 32);
	assert_int_equal(f.kvm_api_version, create_err ? 12 : 0); /* no node: not asked */
	assert_non_null(strstr(f.memslot_flag.reason, "the VMM's VM"));
	/* The trials left nothing in the VMM's VM. */
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.nslots, 0);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(fake_open_fds(), 1);
	kvmnc_close(h);

	/* Definitive now: the probe and the next open need no trial. */
	assert_int_equal(kvmnc_probe(NULL, &p), 0);
	assert_int_equal(p.memslot_flag.supported, 1);
	calls = fake_calls();
	h = open_ok(vm, KVMNC_SCOPE_VM, 0);
	fake_vm_state(vm, &vs);
	/* fcntl, 2 checks of the fd, 6 VM facts (WBINVD emulation since 1.3), the flag capability:
	 * no memslot call. */
	assert_int_equal(fake_calls() - calls, 10);
	assert_int_equal(vs.v2_calls, 2);
	kvmnc_close(h);
}

static void test_sandboxed(void **state)
{
	(void)state;
	/* seccomp denies KVM_CREATE_VM with EPERM. */
	check_from_callers_vm("sandboxed", EPERM);
	/* Not permitted to open /dev/kvm at all; handed the VM fd. */
	check_from_callers_vm("unprivileged", 0);
}

/*
 * Issue 19, bug 2: the trials run on the VMM's own VM and the trial slot
 * cannot be deleted. The open must fail, and the page behind the slot must
 * stay mapped: a freed page would let the guest reach whatever the VMM maps
 * there next. Two failed deletes are retried away.
 */
static void test_trial_slot_stuck(void **state)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM);
	struct fake_vm_state vs;
	struct kvmnc *h = NULL;
	int vm;

	(void)state;
	fake_reset(fake_personality("sandboxed"));
	vm = fake_create_vm();
	fake_fail_deletes(3, EIO);
	assert_int_equal(kvmnc_open(vm, &o, &h), -ENOTRECOVERABLE);
	assert_null(h);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.nslots, 1);
	/* The slot's memory is still the library's, kept for the VM. */
	assert_int_equal(fake_open_maps(), 1);
	assert_int_equal(fake_open_fds(), 1);
	/* Nothing was cached from the failed open: a fresh VM asks again. */
	fake_close(vm);

	vm = fake_create_vm();
	fake_fail_deletes(2, EIO);
	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.nslots, 0);
	kvmnc_close(h);
}

/*
 * Issue 19, bug 3: in a jail the handle takes the memslot flag the kernel
 * has, not the irreversible quirk; and where the flag could not be tried
 * (a passing EMFILE), no wider mechanism stands in for it.
 */
static void test_unknown_never_widens(void **state)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE);
	KVMNC_OPTS(kvmnc_handle_info, info);
	struct kvmnc *h = NULL;
	int vm;

	(void)state;
	fake_reset(fake_personality("jailed-patched-6.12"));
	vm = fake_create_vm();
	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	assert_int_equal(kvmnc_get_info(h, &info), 0);
	assert_int_equal(info.region_mechanism, KVMNC_MECH_MEMSLOT_FLAG);
	assert_false(info.quirk_disabled);
	kvmnc_close(h);

	fake_reset(fake_personality("patched-6.12"));
	vm = fake_create_vm();
	fake_fail_flag_trials(EMFILE);
	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	fake_fail_flag_trials(0);
	assert_int_equal(kvmnc_get_info(h, &info), 0);
	assert_int_equal(info.region_mechanism, KVMNC_MECH_NONE);
	assert_false(info.quirk_disabled);
	kvmnc_close(h);
}

/*
 * Issue 19, bug 6: a closed handle never acts, whatever reused its slot.
 * 1.1 reused handle memory: after 16 open/close cycles a stale pointer
 * named a new handle on another VM, and kvmnc_set_region() succeeded there.
 */
static void test_stale_handle_never_acts(void **state)
{
	static char page[4096] __attribute__((aligned(4096)));
	struct kvmnc_region r = {
		.sz = sizeof(r),
		.slot = 3,
		.guest_phys_addr = 1ULL << 30,
		.memory_size = 4096,
		.userspace_addr = (uintptr_t)page,
	};
	struct fake_vm_state vs;
	struct kvmnc *stale, *h;
	int vm1, vm2;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	vm1 = fake_create_vm();
	vm2 = fake_create_vm();
	stale = open_ok(vm1, KVMNC_SCOPE_SLOT, 0);
	assert_int_equal(kvmnc_close(stale), 0);
	for (int i = 0; i < 200; i++) {
		h = open_ok(vm2, KVMNC_SCOPE_SLOT, 0);
		assert_int_equal(kvmnc_set_region(stale, &r), -EBADF);
		assert_int_equal(kvmnc_is_noncoherent(stale), -EBADF);
		assert_int_equal(kvmnc_device_enable(stale, 1), -EBADF);
		assert_int_equal(kvmnc_copy_from_guest(stale, &vs, &vs + 1, 0), -EBADF);
		assert_int_equal(kvmnc_close(stale), -EBADF);
		fake_vm_state(vm2, &vs);
		assert_int_equal(vs.nslots, 0);
		assert_int_equal(kvmnc_close(h), 0);
	}
	/* Closed handles are freed; only open ones exist (and fork() locks only those). */
	assert_int_equal(kvmnc_handle_count(), 0);
	{
		/* One handle per VM: 40 VMs (the fake's fd table holds 64). */
		struct kvmnc *many[40];
		int vms[40];

		for (int i = 0; i < 40; i++) {
			vms[i] = fake_create_vm();
			many[i] = open_ok(vms[i], KVMNC_SCOPE_SLOT, 0);
		}
		assert_int_equal(kvmnc_handle_count(), 40);
		for (int i = 0; i < 40; i++)
			assert_int_equal(kvmnc_close(many[i]), 0);
		for (int i = 0; i < 40; i++) {
			assert_int_equal(kvmnc_close(many[i]), -EBADF);
			fake_close(vms[i]);
		}
		assert_int_equal(kvmnc_handle_count(), 0);
	}
	/* Not a token at all: an address, a misaligned value. */
	assert_int_equal(kvmnc_close((struct kvmnc *)&vs), -EBADF);
	assert_int_equal(kvmnc_is_noncoherent((struct kvmnc *)(uintptr_t)0x12345), -EBADF);
}

/*
 * Issue 19, API: one VM, one handle. A second handle kept its own devices
 * and its own kvmnc_is_noncoherent() answer; now it is refused, before it
 * touches the VM, until the first is closed.
 */
static void test_one_handle_per_vm(void **state)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM);
	struct fake_vm_state vs;
	struct kvmnc *h, *h2 = NULL;
	int vm, other, calls;

	(void)state;
	fake_reset(fake_personality("sandboxed")); /* trials run on the VMM's VM */
	vm = fake_create_vm();
	other = fake_create_vm();
	h = open_ok(vm, KVMNC_SCOPE_VM, 0);
	calls = fake_calls();
	assert_int_equal(kvmnc_open(vm, &o, &h2), -EISCONN);
	assert_null(h2);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.nslots, 0);
	assert_int_equal(vs.devices, 0);
	/* Refused before any trial: a few checks of the fd, nothing on the VM. */
	assert_true(fake_calls() - calls < 8);
	assert_int_equal(kvmnc_handle_count(), 1);
	/* Another VM is another handle. */
	assert_int_equal(kvmnc_open(other, &o, &h2), 0);
	assert_int_equal(kvmnc_close(h2), 0);
	assert_int_equal(kvmnc_close(h), 0);
	assert_int_equal(kvmnc_open(vm, &o, &h2), 0);
	assert_int_equal(kvmnc_close(h2), 0);
	assert_int_equal(kvmnc_handle_count(), 0);
}

/* A VMM that holds the node's fd: the library opens no path. */
static void test_kvm_fd(void **state)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .flags = KVMNC_OPEN_KVM_FD);
	KVMNC_OPTS(kvmnc_features, f);
	struct kvmnc *h = NULL;
	int vm, sys, other, calls;

	(void)state;
	fake_reset(fake_personality("unprivileged")); /* open() of the node fails */
	sys = fake_open_system_fd();
	other = fake_open_other_fd();
	vm = fake_create_vm();
	o.kvm_fd = -1;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EBADF);
	o.kvm_fd = other;
	assert_int_equal(kvmnc_open(vm, &o, &h), -ENOTTY);
	o.kvm_fd = vm;
	assert_int_equal(kvmnc_open(vm, &o, &h), -ENOTTY);
	o.kvm_fd = 4242;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EBADF);
	assert_null(h);
	o.kvm_fd = sys;
	calls = fake_calls();
	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	assert_true(fake_calls() > calls);
	/* Issue 19, bug 7: "opens no path at all" (1.1 read /proc and /sys). */
	assert_int_equal(fake_paths_opened(), 0);
	assert_int_equal(kvmnc_get_features(h, &f), 0);
	assert_int_equal(f.probed_on, KVMNC_PROBED_SCRATCH_VM);
	assert_int_equal(f.memslot_flag.supported, 1);
	assert_int_equal(f.kvm_api_version, 12);
	kvmnc_close(h);
	/* The caller's fds stay open. */
	assert_int_equal(fake_open_fds(), 3);
	o.flags = 1u << 7;
	assert_int_equal(kvmnc_open(vm, &o, &h), -EINVAL);
}

/* A kernel that needs a VM type for KVM_CREATE_VM: answers come from the VMM's VM. */
static void test_needs_vm_type(void **state)
{
	KVMNC_OPTS(kvmnc_features, f);
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("needs-vm-type"));
	vm = fake_create_vm_type(4);
	h = open_ok(vm, KVMNC_SCOPE_VM, 0);
	assert_int_equal(kvmnc_get_features(h, &f), 0);
	assert_int_equal(f.probed_on, KVMNC_PROBED_CALLER_VM);
	assert_int_equal(f.memslot_flag.supported, 0);
	assert_int_equal(f.virtio_device.supported, 0);
	assert_int_equal(f.native.supported, 0);
	assert_int_equal(f.guest_pat_quirk.supported, 0);
	kvmnc_close(h);
	/* Not undecided forever: the probe now has the answer. */
	assert_int_equal(kvmnc_probe(NULL, &f), 0);
	assert_int_equal(f.memslot_flag.supported, 0);
	assert_int_equal(f.virtio_device.supported, 0);
}

/* The v2 series refuses the device on VM types with private memory. */
static void test_private_vm_v2(void **state)
{
	KVMNC_OPTS(kvmnc_features, f);
	struct kvmnc_handle_info info;
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-v2"));
	vm = fake_create_vm_type(FAKE_VM_SW_PROTECTED);
	h = open_ok(vm, KVMNC_SCOPE_VM, 0);
	assert_int_equal(kvmnc_get_features(h, &f), 0);
	assert_int_equal(f.vm_flags, KVMNC_VM_PRIVATE_MEMORY);
	assert_int_equal(f.virtio_device.supported, 0);
	assert_non_null(strstr(f.virtio_device.reason, "refuses"));
	assert_int_equal(f.memslot_flag.supported, 0);
	get_info(h, &info);
	assert_int_equal(info.region_mechanism, KVMNC_MECH_NONE);
	assert_int_equal(info.device_mechanism, KVMNC_MECH_NONE);
	assert_int_equal(fake_open_fds(), 1);
	kvmnc_close(h);
	/* The host answer stays the default VM's. */
	assert_int_equal(kvmnc_probe(NULL, &f), 0);
	assert_int_equal(f.virtio_device.supported, 1);
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
	int vm, vm2;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	vm = fake_create_vm();
	vm2 = fake_create_vm();
	h = open_ok(vm, KVMNC_SCOPE_VM, 0);
	h2 = open_ok(vm2, KVMNC_SCOPE_VM, 0);
	assert_int_equal(kvmnc_close(h), 0);
	/* Use after close and double close are refused, not crashes. */
	assert_int_equal(kvmnc_close(h), -EBADF);
	assert_int_equal(kvmnc_get_info(h, &info), -EBADF);
	assert_int_equal(kvmnc_device_enable(h, 1), -EBADF);
	assert_int_equal(kvmnc_set_region(h, &r), -EBADF);
	assert_int_equal(kvmnc_is_noncoherent(h), -EBADF);
	assert_int_equal(kvmnc_close(NULL), 0);
	assert_int_equal(kvmnc_get_info(NULL, &info), -EBADF);
	/* The other handle is unaffected. */
	assert_int_equal(kvmnc_get_info(h2, &info), 0);
	assert_int_equal(kvmnc_close(h2), 0);
	assert_int_equal(kvmnc_get_info(h2, NULL), -EINVAL);
	/* The caller's VM fds are still open. */
	assert_int_equal(fake_open_fds(), 2);
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
		cmocka_unit_test_teardown(test_tdx_vm, teardown),
		cmocka_unit_test_teardown(test_sandboxed, teardown),
		cmocka_unit_test_teardown(test_stale_handle_never_acts, teardown),
		cmocka_unit_test_teardown(test_one_handle_per_vm, teardown),
		cmocka_unit_test_teardown(test_trial_slot_stuck, teardown),
		cmocka_unit_test_teardown(test_unknown_never_widens, teardown),
		cmocka_unit_test_teardown(test_kvm_fd, teardown),
		cmocka_unit_test_teardown(test_needs_vm_type, teardown),
		cmocka_unit_test_teardown(test_private_vm_v2, teardown),
		cmocka_unit_test_teardown(test_forced, teardown),
		cmocka_unit_test_teardown(test_bad_fds, teardown),
		cmocka_unit_test_teardown(test_bad_opts, teardown),
		cmocka_unit_test_teardown(test_system_fd_query_fails, teardown),
		cmocka_unit_test_teardown(test_lifetime, teardown),
		cmocka_unit_test_teardown(test_info_sizes, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
