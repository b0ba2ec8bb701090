// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Every system call an operation makes, failing in turn with each plausible
 * errno: the operation reports an error and leaves no fd and no state
 * behind, in the kernel or in the handle. And every allocation, failing in
 * turn: -ENOMEM and no state change, or success; either way the handle
 * then works and its tables are sound (an overrun shows under ASan, a leak
 * under LeakSanitizer and memcheck).
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

static const int errs[] = {EINTR, EAGAIN, ENOMEM, EBADF, ENOTTY, EPERM, EEXIST, EINVAL, EMFILE};
#define NERRS (sizeof(errs) / sizeof(errs[0]))

struct scenario {
	const char *name;
	const char *personality;
	int scope;
	/* Prepares the handle (may be NULL for open scenarios). */
	void (*prepare)(struct kvmnc *h);
	/* The operation under test. */
	int (*op)(struct kvmnc **h, int vm);
	/* Forced mechanism, 0: chosen. */
	int mech;
	uint32_t open_flags;
};

static int total_cases;

static void snapshot(struct kvmnc *h, int vm, struct fake_vm_state *vs,
		     struct kvmnc_handle_info *info, int *nc)
{
	fake_vm_state(vm, vs);
	memset(info, 0, sizeof(*info));
	info->sz = sizeof(*info);
	if (h) {
		assert_int_equal(kvmnc_get_info(h, info), 0);
		*nc = kvmnc_is_noncoherent(h);
	} else {
		*nc = -1;
	}
}

/* What a failed call must leave as it found it. */
struct state {
	struct fake_vm_state vs;
	struct kvmnc_handle_info info;
	int nc, fds;
};

static void take_state(struct kvmnc *h, int vm, struct state *st)
{
	snapshot(h, vm, &st->vs, &st->info, &st->nc);
	st->fds = fake_open_fds();
}

/* The kernel's and the handle's state are what @before says (counters aside). */
static void expect_unchanged(struct kvmnc *h, int vm, const struct state *before, const char *what,
			     int n, const char *err, const struct scenario *s)
{
	struct state now;

	take_state(h, vm, &now);
	if (now.fds != before->fds ||
	    memcmp(&now.vs, &before->vs, offsetof(struct fake_vm_state, v1_calls)) ||
	    memcmp(&now.info, &before->info, sizeof(now.info)) || now.nc != before->nc)
		fail_msg("%s: %s %d failing with %s left state behind (fds %d->%d, slots "
			 "%d->%d, devices %d->%d, quirks %#llx->%#llx)",
			 s->name, what, n, err, before->fds, now.fds, before->vs.nslots,
			 now.vs.nslots, before->vs.devices, now.vs.devices,
			 (unsigned long long)before->vs.disabled_quirks,
			 (unsigned long long)now.vs.disabled_quirks);
}

static struct kvmnc *setup(const struct scenario *s, int *vm, bool with_handle)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = s->scope, .mechanism = s->mech,
		   .flags = s->open_flags);
	struct kvmnc_features f = {.sz = sizeof(f)};
	struct kvmnc *h = NULL;

	fake_reset(fake_personality(s->personality));
	/* Probe first so that the faults land in the operation itself (the
	 * unprivileged personality cannot: its node does not open). */
	kvmnc_probe(NULL, &f);
	*vm = fake_create_vm();
	if (with_handle) {
		assert_int_equal(kvmnc_open(*vm, &o, &h), 0);
		if (s->prepare)
			s->prepare(h);
	}
	return h;
}

static void run_scenario(const struct scenario *s, bool with_handle)
{
	struct fake_vm_state vs1;
	struct state before;
	int vm, calls;
	struct kvmnc *h;

	h = setup(s, &vm, with_handle);
	calls = fake_calls();
	assert_int_equal(s->op(&h, vm), 0);
	calls = fake_calls() - calls;
	kvmnc_close(h);

	for (int n = 1; n <= calls; n++) {
		for (size_t e = 0; e < NERRS; e++) {
			int r;

			h = setup(s, &vm, with_handle);
			take_state(h, vm, &before);
			fake_fail_nth(n, errs[e]);
			r = s->op(&h, vm);
			fake_fail_nth(0, 0);
			total_cases++;
			if (!fake_fail_hit())
				fail_msg("%s: call %d was not reached", s->name, n);
			if (r == 0) {
				/* Best-effort calls (a VM-specific query, a close) may fail
				 * without failing the operation, but what the kernel holds
				 * for the VMM is as the operation says: no trial slot or
				 * device of the probe stays in the VMM's VM. */
				fake_vm_state(vm, &vs1);
				if (!with_handle && (vs1.nslots != before.vs.nslots ||
						     vs1.devices != before.vs.devices))
					fail_msg("%s: call %d failing with %s: open left %d "
						 "slots, %d devices in the VM",
						 s->name, n, strerror(errs[e]), vs1.nslots,
						 vs1.devices);
				kvmnc_close(h);
				continue;
			}
			if (r > 0)
				fail_msg("%s: call %d (%s): returned %d", s->name, n,
					 strerror(errs[e]), r);
			/*
			 * The one failure that leaves something: WBINVD emulation,
			 * on for good, then the quirk failed (kvmnc_open()).
			 */
			if (r == -ENOTRECOVERABLE && (s->open_flags & KVMNC_OPEN_WBINVD)) {
				fake_vm_state(vm, &vs1);
				assert_true(vs1.wbinvd_emulation);
				assert_int_equal(vs1.disabled_quirks, before.vs.disabled_quirks);
				before.vs.wbinvd_emulation = true;
			}
			expect_unchanged(h, vm, &before, "call", n, strerror(errs[e]), s);
			kvmnc_close(h);
		}
	}
}

static int op_open(struct kvmnc **h, int vm)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE);

	return kvmnc_open(vm, &o, h);
}

static int op_nc_region(struct kvmnc **h, int vm)
{
	struct kvmnc_region r = region(5, 0x40000000, 1 << 20, true);

	(void)vm;
	return kvmnc_set_region(*h, &r);
}

static int op_plain_region(struct kvmnc **h, int vm)
{
	struct kvmnc_region r = region(6, 0x80000000, 1 << 20, false);

	(void)vm;
	return kvmnc_set_region(*h, &r);
}

static void prep_nc_region(struct kvmnc *h)
{
	struct kvmnc_region r = region(5, 0x40000000, 1 << 20, true);

	assert_int_equal(kvmnc_set_region(h, &r), 0);
}

static int op_delete_nc_region(struct kvmnc **h, int vm)
{
	struct kvmnc_region r = region(5, 0x40000000, 0, true);

	(void)vm;
	return kvmnc_set_region(*h, &r);
}

static int op_device_enable(struct kvmnc **h, int vm)
{
	(void)vm;
	return kvmnc_device_enable(*h, 42);
}

static int op_open_devices(struct kvmnc **h, int vm)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE,
		   .flags = KVMNC_OPEN_DEVICES);

	return kvmnc_open(vm, &o, h);
}

/* Both irreversible steps: WBINVD emulation, then the quirk. */
static int op_open_wbinvd_quirk(struct kvmnc **h, int vm)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE,
		   .mechanism = KVMNC_MECH_GUEST_PAT_QUIRK, .flags = KVMNC_OPEN_WBINVD);

	return kvmnc_open(vm, &o, h);
}

static int op_open_wbinvd_uc_vram(struct kvmnc **h, int vm)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE,
		   .flags = KVMNC_OPEN_WBINVD | KVMNC_OPEN_UC_VRAM_DISPLAY | KVMNC_OPEN_DEVICES);

	return kvmnc_open(vm, &o, h);
}

static const struct scenario open_scenarios[] = {
	{.name = "open/patched", .personality = "patched-6.12", .op = op_open},
	{.name = "open/quirk", .personality = "stable-6.12-intel", .op = op_open},
	{.name = "open/private-vm", .personality = "patched-6.12-private-vm", .op = op_open},
	{.name = "open/quirk-for-devices", .personality = "chromeos-6.12", .op = op_open_devices},
	/* The trials run on the VMM's own VM: nothing of them may stay. */
	{.name = "open/sandboxed", .personality = "sandboxed", .op = op_open},
	{.name = "open/unprivileged", .personality = "unprivileged", .op = op_open},
	{.name = "open/wbinvd-quirk",
	 .personality = "patched-7.2-v3",
	 .op = op_open_wbinvd_quirk,
	 .open_flags = KVMNC_OPEN_WBINVD},
	{.name = "open/wbinvd-uc-vram",
	 .personality = "patched-7.2-v3",
	 .op = op_open_wbinvd_uc_vram,
	 .open_flags = KVMNC_OPEN_WBINVD},
	/* WBINVD asked of the VMM's VM only: no scratch VM. */
	{.name = "open/wbinvd-sandboxed",
	 .personality = "sandboxed-7.2-v3",
	 .op = op_open_wbinvd_uc_vram,
	 .open_flags = KVMNC_OPEN_WBINVD},
};

static const struct scenario handle_scenarios[] = {
	{.name = "region/flag", .personality = "patched-6.12", .op = op_nc_region},
	{.name = "region/flag-v1", .personality = "chromeos-6.6", .op = op_nc_region},
	{.name = "region/device",
	 .personality = "patched-6.12",
	 .scope = KVMNC_SCOPE_VM,
	 .op = op_nc_region,
	 .mech = KVMNC_MECH_VIRTIO_DEVICE},
	{.name = "region/quirk",
	 .personality = "stable-6.12-intel",
	 .scope = KVMNC_SCOPE_VM_IRREVERSIBLE,
	 .op = op_nc_region},
	{.name = "region/plain", .personality = "debian-6.1", .op = op_plain_region},
	{.name = "region/delete-device",
	 .personality = "patched-6.12",
	 .scope = KVMNC_SCOPE_VM,
	 .prepare = prep_nc_region,
	 .op = op_delete_nc_region,
	 .mech = KVMNC_MECH_VIRTIO_DEVICE},
	{.name = "region/delete-flag",
	 .personality = "patched-6.12",
	 .prepare = prep_nc_region,
	 .op = op_delete_nc_region},
	{.name = "device/virtio",
	 .personality = "patched-6.12",
	 .scope = KVMNC_SCOPE_VM,
	 .op = op_device_enable},
	{.name = "device/quirk-declared",
	 .personality = "chromeos-6.12",
	 .scope = KVMNC_SCOPE_VM_IRREVERSIBLE,
	 .op = op_device_enable,
	 .open_flags = KVMNC_OPEN_DEVICES},
};

/* ---- allocation failures -------------------------------------------------- */

static void prep_plans(struct kvmnc *h)
{
	struct kvmnc_region_plan plan = KVMNC_OPTS_INIT(kvmnc_region_plan);

	/* Seven non-coherent slots (the table holds eight) and two plans waiting. */
	for (uint32_t s = 1; s <= 9; s++) {
		struct kvmnc_region r = region(s, (uint64_t)s << 30, 4096, true);

		if (s <= 7)
			assert_int_equal(kvmnc_set_region(h, &r), 0);
		else
			assert_int_equal(kvmnc_region_prepare(h, &r, &plan), 0);
	}
}

static int op_prepare(struct kvmnc **h, int vm)
{
	struct kvmnc_region_plan plan = KVMNC_OPTS_INIT(kvmnc_region_plan);
	struct kvmnc_region r = region(10, 10ULL << 30, 4096, true);

	(void)vm;
	return kvmnc_region_prepare(*h, &r, &plan);
}

static int op_complete(struct kvmnc **h, int vm)
{
	(void)vm;
	return kvmnc_region_complete(*h, 8, 0);
}

static int op_removed(struct kvmnc **h, int vm)
{
	(void)vm;
	return kvmnc_region_removed(*h, 3);
}

static void prep_device(struct kvmnc *h)
{
	prep_nc_region(h);
	assert_int_equal(kvmnc_device_enable(h, 7), 0);
}

static int op_device_disable(struct kvmnc **h, int vm)
{
	(void)vm;
	return kvmnc_device_disable(*h, 7);
}

static int op_snapshot(struct kvmnc **h, int vm)
{
	struct kvmnc_snapshot *snap = NULL;
	int r;

	(void)vm;
	r = kvmnc_snapshot_take(*h, sizeof(struct kvmnc_range), &snap);
	if (r == 0) {
		assert_non_null(snap);
		kvmnc_snapshot_free(snap);
	}
	return r;
}

static int op_copy(struct kvmnc **h, int vm)
{
	static unsigned char guest[8192] __attribute__((aligned(4096))), buf[8192];

	(void)vm;
	return kvmnc_copy_from_guest(*h, buf, guest, sizeof(buf));
}

static int op_probe(struct kvmnc **h, int vm)
{
	struct kvmnc_features f = {.sz = sizeof(f)};

	(void)h;
	(void)vm;
	kvmnc_probe_reset();
	return kvmnc_probe(NULL, &f);
}

static int op_arm(struct kvmnc **h, int vm)
{
	(void)vm;
	return kvmnc_vm_wide_arm(*h);
}

static int op_abort(struct kvmnc **h, int vm)
{
	(void)vm;
	return kvmnc_region_abort(*h, 8);
}

static int op_resync(struct kvmnc **h, int vm)
{
	static const uint32_t keep[] = {1, 2};
	int r;

	(void)vm;
	r = kvmnc_region_resync(*h, keep, 2);
	return r < 0 ? r : 0;
}

static int op_queries(struct kvmnc **h, int vm)
{
	int r = kvmnc_hva_is_noncoherent(*h, (void *)(uintptr_t)0x7f0040000000ULL, 4096);

	(void)vm;
	if (r >= 0)
		r = kvmnc_gpa_is_noncoherent(*h, 0, 1ULL << 30, 4096);
	if (r >= 0)
		r = kvmnc_is_noncoherent(*h);
	return r < 0 ? r : 0;
}

static const struct scenario alloc_handle_scenarios[] = {
	{.name = "alloc/arm",
	 .personality = "patched-6.12",
	 .scope = KVMNC_SCOPE_VM,
	 .mech = KVMNC_MECH_VIRTIO_DEVICE,
	 .op = op_arm},
	{.name = "alloc/abort",
	 .personality = "patched-6.12",
	 .scope = KVMNC_SCOPE_VM,
	 .mech = KVMNC_MECH_VIRTIO_DEVICE,
	 .prepare = prep_plans,
	 .op = op_abort},
	{.name = "alloc/resync",
	 .personality = "patched-6.12",
	 .prepare = prep_plans,
	 .op = op_resync},
	{.name = "alloc/queries",
	 .personality = "patched-6.12",
	 .prepare = prep_plans,
	 .op = op_queries},
	{.name = "alloc/prepare",
	 .personality = "patched-6.12",
	 .prepare = prep_plans,
	 .op = op_prepare},
	{.name = "alloc/complete",
	 .personality = "patched-6.12",
	 .prepare = prep_plans,
	 .op = op_complete},
	{.name = "alloc/removed",
	 .personality = "patched-6.12",
	 .prepare = prep_plans,
	 .op = op_removed},
	{.name = "alloc/prepare-device",
	 .personality = "patched-6.12",
	 .scope = KVMNC_SCOPE_VM,
	 .mech = KVMNC_MECH_VIRTIO_DEVICE,
	 .prepare = prep_plans,
	 .op = op_prepare},
	{.name = "alloc/device-disable",
	 .personality = "patched-6.12",
	 .scope = KVMNC_SCOPE_VM,
	 .prepare = prep_device,
	 .op = op_device_disable},
	{.name = "alloc/snapshot",
	 .personality = "patched-6.12",
	 .prepare = prep_plans,
	 .op = op_snapshot},
	{.name = "alloc/copy", .personality = "patched-6.12", .prepare = prep_plans, .op = op_copy},
	{.name = "alloc/probe", .personality = "patched-6.12", .op = op_probe},
};

/* The case running, for the messages of exercise(). */
static const char *cur_name;
static int cur_n;

/*
 * After a failure, the handle must still work and its tables hold what
 * they say: a workload of every kind of change, each checked, runs on it
 * (under ASan any overrun the failure prepared shows here).
 */
static void exercise(struct kvmnc *h)
{
	struct kvmnc_region_plan plan = KVMNC_OPTS_INIT(kvmnc_region_plan);
	struct kvmnc_snapshot *snap;
	struct kvmnc_region r;
	int want_nc;

	if (!h)
		return;
	/* The outcomes of the plans prep_plans() left waiting, if any. */
	for (uint32_t s = 8; s <= 10; s++) {
		int c = kvmnc_region_complete(h, s, 0);

		assert_true(c == 0 || c == -ENOENT);
		if (OBJ(h)->nc.n > OBJ(h)->nc.cap)
			fail_msg("%s, allocation %d: %u records in a table of %u", cur_name, cur_n,
				 OBJ(h)->nc.n, OBJ(h)->nc.cap);
	}
	for (uint32_t s = 20; s < 30; s++) {
		r = region(s, (uint64_t)s << 30, 4096, s & 1);
		want_nc = OBJ(h)->region_mech == KVMNC_MECH_NONE && (s & 1) ? -EOPNOTSUPP : 0;
		assert_int_equal(kvmnc_region_prepare(h, &r, &plan), want_nc);
	}
	for (uint32_t s = 20; s < 30; s++) {
		int c = kvmnc_region_complete(h, s, 0);

		assert_true(c == 0 || c == -ENOENT);
		assert_true(OBJ(h)->nc.n <= OBJ(h)->nc.cap &&
			    OBJ(h)->pending.n <= OBJ(h)->pending.cap);
	}
	for (uint32_t s = 30; s < 40; s++) {
		r = region(s, (uint64_t)s << 30, 4096, s & 1);
		want_nc = OBJ(h)->region_mech == KVMNC_MECH_NONE && (s & 1) ? -EOPNOTSUPP : 0;
		assert_int_equal(kvmnc_set_region(h, &r), want_nc);
		assert_true(OBJ(h)->nc.n <= OBJ(h)->nc.cap);
	}
	if (kvmnc_snapshot_take(h, sizeof(struct kvmnc_range), &snap) == 0)
		kvmnc_snapshot_free(snap);
	for (uint32_t s = 20; s < 40; s++) {
		r = region(s, (uint64_t)s << 30, 0, false);
		kvmnc_set_region(h, &r);
	}
}

static void run_alloc_scenario(const struct scenario *s, bool with_handle)
{
	struct state before;
	int vm, maps0;
	struct kvmnc *h;

	/*
	 * Until a run allocates fewer times than the failure's number: how many
	 * allocations a call makes depends on what earlier calls left (handle
	 * slabs are made once per process).
	 */
	for (int n = 1;; n++) {
		int r;

		cur_name = s->name;
		cur_n = n;
		h = setup(s, &vm, with_handle);
		take_state(h, vm, &before);
		maps0 = fake_open_maps();
		fake_fail_alloc_nth(n);
		r = s->op(&h, vm);
		fake_fail_alloc_nth(0);
		if (!fake_alloc_fail_hit()) {
			/* Every allocation the call makes has failed once. */
			assert_int_equal(r, 0);
			kvmnc_close(h);
			return;
		}
		total_cases++;
		if (n > 500)
			fail_msg("%s: more than 500 allocations", s->name);
		if (r > 0 || (r < 0 && r != -ENOMEM))
			fail_msg("%s: allocation %d failing: returned %d, not -ENOMEM", s->name, n,
				 r);
		if (fake_open_maps() != maps0)
			fail_msg("%s: allocation %d failing: %d mappings left", s->name, n,
				 fake_open_maps() - maps0);
		if (r < 0) {
			expect_unchanged(h, vm, &before, "allocation", n, "NULL", s);
		}
		exercise(h);
		kvmnc_close(h);
	}
}

/* Issue 19, bug 1: every allocation of every call fails in turn. */
static void test_alloc_faults(void **state)
{
	int before = total_cases;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(open_scenarios); i++)
		run_alloc_scenario(&open_scenarios[i], false);
	for (size_t i = 0; i < ARRAY_SIZE(handle_scenarios); i++)
		run_alloc_scenario(&handle_scenarios[i], true);
	for (size_t i = 0; i < ARRAY_SIZE(alloc_handle_scenarios); i++)
		run_alloc_scenario(&alloc_handle_scenarios[i], true);
	print_message("%d allocation-failure cases\n", total_cases - before);
}

static void test_open_faults(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(open_scenarios) / sizeof(open_scenarios[0]); i++)
		run_scenario(&open_scenarios[i], false);
}

static void test_handle_faults(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(handle_scenarios) / sizeof(handle_scenarios[0]); i++)
		run_scenario(&handle_scenarios[i], true);
	print_message("%d fault-injection cases (operations x calls x errnos)\n", total_cases);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_open_faults, teardown_fake),
		cmocka_unit_test_teardown(test_handle_faults, teardown_fake),
		cmocka_unit_test_teardown(test_alloc_faults, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
