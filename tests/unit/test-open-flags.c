// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The 1.3 options of kvmnc_open(): KVMNC_OPEN_WBINVD (guest WBINVD
 * emulation, only on request, before vCPUs, nothing left behind when the
 * kernel refuses) and KVMNC_OPEN_UC_VRAM_DISPLAY (QEMU's rule: no VM-wide
 * mechanism for a machine whose display maps VRAM uncached).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "compat-kvm.h"
#include "helpers.h"

#define RULE "Honor guest PAT on x86, absent Bochs display"

struct heard {
	int n, info_rule, warn_rule;
	char last[512];
};

static void collect(int level, const char *msg, void *ctx)
{
	struct heard *w = ctx;

	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
	if (strstr(msg, RULE)) {
		w->info_rule += level == KVMNC_LOG_INFO;
		w->warn_rule += level == KVMNC_LOG_WARN;
	}
}

static int teardown(void **state)
{
	(void)state;
	kvmnc_set_log(NULL, 0, NULL);
	fake_uninstall();
	return 0;
}

static int open_with(int vm, int scope, int mech, uint32_t flags, struct kvmnc **h)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = scope, .mechanism = mech, .flags = flags);

	*h = NULL;
	return kvmnc_open(vm, &o, h);
}

static void info_of(struct kvmnc *h, struct kvmnc_handle_info *i)
{
	memset(i, 0, sizeof(*i));
	i->sz = sizeof(*i);
	assert_int_equal(kvmnc_get_info(h, i), 0);
}

static void features_of(struct kvmnc *h, struct kvmnc_features *f)
{
	memset(f, 0, sizeof(*f));
	f->sz = sizeof(*f);
	assert_int_equal(kvmnc_get_features(h, f), 0);
}

/* What a refused open must leave: no handle, no fd, the VM untouched. */
static void expect_nothing_left(int vm, int fds)
{
	struct fake_vm_state vs;

	fake_vm_state(vm, &vs);
	assert_int_equal(kvmnc_handle_count(), 0);
	assert_int_equal(fake_open_fds(), fds);
	assert_false(vs.wbinvd_emulation);
	assert_int_equal(vs.disabled_quirks, 0);
	assert_int_equal(vs.nslots, 0);
	assert_int_equal(vs.devices, 0);
}

static void test_wbinvd_on_request(void **state)
{
	struct kvmnc_handle_info i;
	struct kvmnc_features f;
	struct fake_vm_state vs;
	struct heard w = {0};
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-7.2-v3"));
	kvmnc_set_log(collect, KVMNC_LOG_INFO, &w);
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, KVMNC_OPEN_WBINVD, &h), 0);
	fake_vm_state(vm, &vs);
	assert_true(vs.wbinvd_emulation);
	info_of(h, &i);
	assert_int_equal(i.wbinvd_emulation, 1);
	assert_int_equal(i.open_flags, KVMNC_OPEN_WBINVD);
	assert_int_equal(i.region_mechanism, KVMNC_MECH_MEMSLOT_FLAG);
	assert_int_equal(i.quirk_disabled, 0);
	features_of(h, &f);
	assert_int_equal(f.wbinvd_emulation.supported, 1);
	assert_int_equal(f.wbinvd_emulation_cap, KVM_CAP_X86_EMULATE_WBINVD);
	assert_non_null(strstr(w.last, "WBINVD"));
	assert_int_equal(kvmnc_close(h), 0);
	/* Closing changes nothing: it is for the VM's life. */
	fake_vm_state(vm, &vs);
	assert_true(vs.wbinvd_emulation);
}

/* Without the flag the library never turns it on, whatever the scope. */
static void test_wbinvd_never_unasked(void **state)
{
	static const char *const kernels[] = {"patched-7.2-v3", "backport-6.12-v3",
					      "sandboxed-7.2-v3", "patched-7.2-v3-amd"};
	struct kvmnc_handle_info i;
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
		for (int scope = KVMNC_SCOPE_SLOT; scope <= KVMNC_SCOPE_VM_IRREVERSIBLE; scope++) {
			fake_reset(fake_personality(kernels[k]));
			vm = fake_create_vm();
			int r;

			assert_int_equal(open_with(vm, scope, 0, KVMNC_OPEN_DEVICES, &h), 0);
			r = kvmnc_device_enable(h, 1);
			assert_true(r == 0 || r == -EOPNOTSUPP);
			fake_vm_state(vm, &vs);
			assert_false(vs.wbinvd_emulation);
			info_of(h, &i);
			assert_int_equal(i.wbinvd_emulation, 0);
			kvmnc_close(h);
		}
	}
}

/* A kernel without it: -EOPNOTSUPP before any step, even the quirk the scope allows. */
static void test_wbinvd_lacking(void **state)
{
	static const char *const kernels[] = {"stable-6.12-intel", "patched-6.12",
					      "caps-250-251-other", "arm64-7.2"};
	struct kvmnc *h;
	int vm, fds;

	(void)state;
	for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
		fake_reset(fake_personality(kernels[k]));
		vm = fake_create_vm();
		fds = fake_open_fds();
		assert_int_equal(open_with(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, 0,
					   KVMNC_OPEN_WBINVD | KVMNC_OPEN_DEVICES, &h),
				 -EOPNOTSUPP);
		assert_null(h);
		assert_non_null(strstr(kvmnc_strerror(-EOPNOTSUPP), "WBINVD"));
		expect_nothing_left(vm, fds);
		/* The same open without the flag takes the quirk: it was the flag that stopped it.
		 */
		if (!strcmp(kernels[k], "stable-6.12-intel")) {
			struct fake_vm_state vs;

			assert_int_equal(open_with(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, 0, 0, &h), 0);
			fake_vm_state(vm, &vs);
			assert_int_equal(vs.disabled_quirks, KVMNC_QUIRK_IGNORE_GUEST_PAT);
			kvmnc_close(h);
		}
	}
}

/* KVM refuses it once the VM has a vCPU: -EBUSY, and the quirk is not touched either. */
static void test_wbinvd_after_vcpus(void **state)
{
	struct kvmnc *h;
	int vm, vcpu, fds;

	(void)state;
	fake_reset(fake_personality("patched-7.2-v3"));
	vm = fake_create_vm();
	vcpu = fake_open_vcpu_fd(vm);
	fds = fake_open_fds();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_GUEST_PAT_QUIRK,
				   KVMNC_OPEN_WBINVD, &h),
			 -EBUSY);
	assert_non_null(strstr(kvmnc_strerror(-EBUSY), "vCPUs"));
	expect_nothing_left(vm, fds);
	fake_close(vcpu);
}

/* A TDX VM answers 0 where the host has it: the handle says why. */
static void test_wbinvd_vm_type(void **state)
{
	struct kvmnc_features f;
	struct kvmnc *h;
	int vm, fds;

	(void)state;
	fake_reset(fake_personality("patched-7.2-v3"));
	vm = fake_create_vm_type(FAKE_VM_TDX);
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, 0, &h), 0);
	features_of(h, &f);
	assert_int_equal(f.wbinvd_emulation.supported, 0);
	assert_int_equal(f.wbinvd_emulation_reason, KVMNC_REASON_VM_TYPE);
	assert_int_equal(f.wbinvd_emulation_cap, 0);
	kvmnc_close(h);
	fds = fake_open_fds();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, KVMNC_OPEN_WBINVD, &h), -EOPNOTSUPP);
	expect_nothing_left(vm, fds);
}

/* No scratch VM: the VMM's VM answers, and is not tried (it could not be undone). */
static void test_wbinvd_sandboxed(void **state)
{
	struct kvmnc_features f;
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("sandboxed-7.2-v3"));
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, 0, &h), 0);
	features_of(h, &f);
	assert_int_equal(f.wbinvd_emulation.supported, 1);
	assert_non_null(strstr(f.wbinvd_emulation.reason, "on the VMM's VM"));
	fake_vm_state(vm, &vs);
	assert_false(vs.wbinvd_emulation);
	kvmnc_close(h);
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, KVMNC_OPEN_WBINVD, &h), 0);
	fake_vm_state(vm, &vs);
	assert_true(vs.wbinvd_emulation);
	kvmnc_close(h);
}

/*
 * WBINVD emulation is on, then the quirk fails: the one state no call can
 * undo. -ENOTRECOVERABLE, no handle, no fd; exactly one call gets there.
 */
static void test_wbinvd_then_quirk_fails(void **state)
{
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm, calls, fds, hits = 0;

	(void)state;
	fake_reset(fake_personality("patched-7.2-v3"));
	vm = fake_create_vm();
	/* Probed and cached: what follows is the open alone. */
	assert_int_equal(
		open_with(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_GUEST_PAT_QUIRK, 0, &h), 0);
	kvmnc_close(h);
	vm = fake_create_vm();
	calls = fake_calls();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_GUEST_PAT_QUIRK,
				   KVMNC_OPEN_WBINVD, &h),
			 0);
	calls = fake_calls() - calls;
	kvmnc_close(h);
	for (int n = 1; n <= calls; n++) {
		vm = fake_create_vm();
		fds = fake_open_fds();
		fake_fail_nth(n, EIO);
		int r = open_with(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_GUEST_PAT_QUIRK,
				  KVMNC_OPEN_WBINVD, &h);
		fake_fail_nth(0, 0);
		fake_vm_state(vm, &vs);
		if (r == -ENOTRECOVERABLE) {
			hits++;
			assert_true(vs.wbinvd_emulation);
			assert_int_equal(vs.disabled_quirks, 0);
			assert_int_equal(kvmnc_handle_count(), 0);
			assert_int_equal(fake_open_fds(), fds);
		} else if (r < 0) {
			expect_nothing_left(vm, fds);
		} else {
			kvmnc_close(h);
		}
		fake_close(vm);
	}
	assert_int_equal(hits, 1);
}

/* The stock quirk kernel: with the flag, nothing VM-wide; the rule is logged. */
static void test_uc_vram_quirk(void **state)
{
	struct kvmnc_region r = region(3, 0x100000000ULL, 1 << 20, true);
	struct kvmnc_handle_info i;
	struct kvmnc_features f;
	struct fake_vm_state vs;
	struct heard w = {0};
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("stable-6.12-intel"));
	kvmnc_set_log(collect, KVMNC_LOG_DEBUG, &w);
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, 0,
				   KVMNC_OPEN_UC_VRAM_DISPLAY | KVMNC_OPEN_DEVICES, &h),
			 0);
	info_of(h, &i);
	assert_int_equal(i.region_mechanism, KVMNC_MECH_NONE);
	assert_int_equal(i.device_mechanism, KVMNC_MECH_NONE);
	assert_int_equal(i.quirk_disabled, 0);
	assert_int_equal(i.open_flags, KVMNC_OPEN_UC_VRAM_DISPLAY | KVMNC_OPEN_DEVICES);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.disabled_quirks, 0);
	features_of(h, &f);
	assert_int_equal(f.guest_pat_quirk.supported, 0);
	assert_int_equal(f.guest_pat_quirk_reason, KVMNC_REASON_UC_VRAM_DISPLAY);
	assert_non_null(strstr(f.guest_pat_quirk.reason, "KVMNC_OPEN_UC_VRAM_DISPLAY"));
	/* What the host said stays readable after "the host:". */
	assert_non_null(strstr(f.guest_pat_quirk.reason, "the host: quirk mask 0x3ff includes"));
	assert_int_equal(f.recommended, KVMNC_MECH_NONE);
	assert_int_equal(w.info_rule, 1);
	assert_int_equal(kvmnc_set_region(h, &r), -EOPNOTSUPP);
	assert_int_equal(kvmnc_device_enable(h, 1), -EOPNOTSUPP);
	kvmnc_close(h);
	/* The probe's host answer is untouched: it is the handle's VM that has the display. */
	{
		KVMNC_OPTS(kvmnc_features, p);

		assert_int_equal(kvmnc_probe(NULL, &p), 0);
		assert_int_equal(p.guest_pat_quirk.supported, 1);
		assert_int_equal(p.recommended, KVMNC_MECH_GUEST_PAT_QUIRK);
	}
}

/* The series: regions fall back to the flag, devices have no VM-wide mechanism. */
static void test_uc_vram_flag(void **state)
{
	struct kvmnc_region r = region(3, 0x100000000ULL, 1 << 20, true);
	struct kvmnc_handle_info i;
	struct kvmnc_features f;
	struct fake_vm_state vs;
	struct heard w = {0};
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-7.2-v3"));
	kvmnc_set_log(collect, KVMNC_LOG_INFO, &w);
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_VM, 0, KVMNC_OPEN_UC_VRAM_DISPLAY, &h), 0);
	info_of(h, &i);
	assert_int_equal(i.region_mechanism, KVMNC_MECH_MEMSLOT_FLAG);
	/* Without the flag the devices would have the VIRTIO device. */
	assert_int_equal(i.device_mechanism, KVMNC_MECH_NONE);
	assert_int_equal(w.info_rule, 1);
	features_of(h, &f);
	assert_int_equal(f.memslot_flag.supported, 1);
	assert_int_equal(f.virtio_device.supported, 0);
	assert_int_equal(f.virtio_device_reason, KVMNC_REASON_UC_VRAM_DISPLAY);
	assert_int_equal(f.guest_pat_quirk_reason, KVMNC_REASON_UC_VRAM_DISPLAY);
	assert_int_equal(f.recommended, KVMNC_MECH_MEMSLOT_FLAG);
	/* The blob's slot honors guest PAT; nothing VM-wide exists. */
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	assert_int_equal(fake_slot_flags(vm, 3), KVMNC_MEM_NON_COHERENT_DMA);
	assert_int_equal(kvmnc_vm_wide_arm(h), 0);
	assert_int_equal(kvmnc_device_enable(h, 1), -EOPNOTSUPP);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(vs.disabled_quirks, 0);
	kvmnc_close(h);

	/* The same VM kind without the flag: the device for devices, for comparison. */
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_VM, 0, 0, &h), 0);
	info_of(h, &i);
	assert_int_equal(i.device_mechanism, KVMNC_MECH_VIRTIO_DEVICE);
	kvmnc_close(h);
}

/* Where the rule changes no choice, it says nothing above debug. */
static void test_uc_vram_no_change(void **state)
{
	struct kvmnc_handle_info i;
	struct kvmnc_features f;
	struct heard w = {0};
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("amd-npt"));
	kvmnc_set_log(collect, KVMNC_LOG_INFO, &w);
	vm = fake_create_vm();
	assert_int_equal(
		open_with(vm, KVMNC_SCOPE_VM_IRREVERSIBLE, 0, KVMNC_OPEN_UC_VRAM_DISPLAY, &h), 0);
	info_of(h, &i);
	assert_int_equal(i.region_mechanism, KVMNC_MECH_NATIVE);
	assert_int_equal(i.device_mechanism, KVMNC_MECH_NATIVE);
	kvmnc_close(h);
	/* Scope slot: the quirk was never a choice. */
	fake_reset(fake_personality("stable-6.12-intel"));
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, KVMNC_OPEN_UC_VRAM_DISPLAY, &h), 0);
	features_of(h, &f);
	assert_int_equal(f.guest_pat_quirk_reason, KVMNC_REASON_UC_VRAM_DISPLAY);
	kvmnc_close(h);
	assert_int_equal(w.info_rule, 0);
	/* A "no" keeps its own reason: the host lacks it anyway. */
	fake_reset(fake_personality("debian-6.1"));
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_VM, 0, KVMNC_OPEN_UC_VRAM_DISPLAY, &h), 0);
	features_of(h, &f);
	assert_int_equal(f.guest_pat_quirk_reason, KVMNC_REASON_KERNEL_LACKS);
	assert_int_equal(f.virtio_device_reason, KVMNC_REASON_KERNEL_LACKS);
	kvmnc_close(h);
}

/* A VM-wide mechanism forced with the flag: -EINVAL before any system call. */
static void test_uc_vram_forced(void **state)
{
	static const struct {
		const char *personality;
		int scope, mech, want;
	} cases[] = {
		{"patched-7.2-v3", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, -EINVAL},
		{"patched-7.2-v3", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_GUEST_PAT_QUIRK,
		 -EINVAL},
		{"stable-6.12-intel", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_GUEST_PAT_QUIRK,
		 -EINVAL},
		/* Per slot, or nothing to change: allowed. */
		{"patched-7.2-v3", KVMNC_SCOPE_SLOT, KVMNC_MECH_MEMSLOT_FLAG, 0},
		{"amd-npt", KVMNC_SCOPE_SLOT, KVMNC_MECH_NATIVE, 0},
	};
	struct kvmnc *h;
	int vm, fds, calls;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct heard w = {0};

		fake_reset(fake_personality(cases[c].personality));
		kvmnc_set_log(collect, KVMNC_LOG_WARN, &w);
		vm = fake_create_vm();
		fds = fake_open_fds();
		calls = fake_calls();
		assert_int_equal(open_with(vm, cases[c].scope, cases[c].mech,
					   KVMNC_OPEN_UC_VRAM_DISPLAY, &h),
				 cases[c].want);
		if (cases[c].want == 0) {
			kvmnc_close(h);
			continue;
		}
		assert_null(h);
		assert_int_equal(fake_calls(), calls);
		assert_int_equal(w.warn_rule, 1);
		assert_non_null(strstr(kvmnc_strerror(-EINVAL), "KVMNC_OPEN_UC_VRAM_DISPLAY"));
		expect_nothing_left(vm, fds);
	}
}

/* Bits past the 1.3 flags are still refused; a 1.2-sized info struct is respected. */
static void test_flags_and_sizes(void **state)
{
	struct kvmnc_handle_info old;
	struct kvmnc *h;
	int vm;

	(void)state;
	fake_reset(fake_personality("patched-7.2-v3"));
	vm = fake_create_vm();
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, 1u << 4, &h), -EINVAL);
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, 0x80000000u, &h), -EINVAL);
	assert_int_equal(open_with(vm, KVMNC_SCOPE_SLOT, 0, KVMNC_OPEN_WBINVD, &h), 0);
	memset(&old, 0x55, sizeof(old));
	old.sz = offsetof(struct kvmnc_handle_info, wbinvd_emulation);
	assert_int_equal(kvmnc_get_info(h, &old), 0);
	assert_int_equal(old.region_mechanism, KVMNC_MECH_MEMSLOT_FLAG);
	assert_int_equal(old.wbinvd_emulation, 0x55555555);
	kvmnc_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_wbinvd_on_request, teardown),
		cmocka_unit_test_teardown(test_wbinvd_never_unasked, teardown),
		cmocka_unit_test_teardown(test_wbinvd_lacking, teardown),
		cmocka_unit_test_teardown(test_wbinvd_after_vcpus, teardown),
		cmocka_unit_test_teardown(test_wbinvd_vm_type, teardown),
		cmocka_unit_test_teardown(test_wbinvd_sandboxed, teardown),
		cmocka_unit_test_teardown(test_wbinvd_then_quirk_fails, teardown),
		cmocka_unit_test_teardown(test_uc_vram_quirk, teardown),
		cmocka_unit_test_teardown(test_uc_vram_flag, teardown),
		cmocka_unit_test_teardown(test_uc_vram_no_change, teardown),
		cmocka_unit_test_teardown(test_uc_vram_forced, teardown),
		cmocka_unit_test_teardown(test_flags_and_sizes, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
