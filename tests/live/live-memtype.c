// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The library and the VMX change tested together. Regions go through
 * libkvmnc, a real-mode guest touches a plain and a non-coherent one, and
 * the memory type KVM put in each EPT entry it made is read back from the
 * kvmmmu:kvm_mmu_set_spte tracepoint: bits 5:3 of the SPTE are the EPT
 * memory type, bit 6 "ignore PAT". Where the library says guest PAT is
 * honored the entry must be WB without IPAT (0x6), everywhere else WB|IPAT
 * (0xe), for every mechanism the library can use here, and again after
 * kvmnc_device_disable() / kvmnc_close() (the guest runs again, so KVM makes
 * new entries wherever it zapped the old ones).
 *
 * Only Intel VMX with EPT has that field. Elsewhere the test skips, with
 * the reason, unless KVMNC_EXPECT names a VMX row (then a missing tracefs
 * is a failure); under VMX shadow paging (kvm_intel.ept=0) it checks that
 * the library claims nothing and skips only the SPTE checks.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../../libkvmnc/compat-kvm.h"
#include "live.h"

#define SLOT_LEN 0x10000
#define PLAIN	 0
#define NC	 1
#define NSLOTS	 2
/* What the guest touches: its code (plain slot, gfn 1), gfn 8 and gfn 0x10. */
#define CODE_GPA 0x1000
#define NC_GPA	 0x10000

#define MT_WB		0x6 /* WB, guest PAT honored */
#define MT_WB_IPAT	0xe /* WB, "ignore PAT" */
#define MT_UNSEEN	(-1)
#define MT_INCONSISTENT (-2)

/*
 * mov ax,0x0800; mov ds,ax; mov byte [0],0x11   (GPA 0x8000, plain slot)
 * mov ax,0x1000; mov ds,ax; mov byte [0],0x22   (GPA 0x10000, other slot)
 * hlt
 */
static const unsigned char guest_code[] = {0xb8, 0x00, 0x08, 0x8e, 0xd8, 0xc6, 0x06,
					   0x00, 0x00, 0x11, 0xb8, 0x00, 0x10, 0x8e,
					   0xd8, 0xc6, 0x06, 0x00, 0x00, 0x22, 0xf4};

static char inst[96]; /* our own tracefs instance */
static char trace_root[40];

static int write_file(const char *dir, const char *name, const char *text, int flags)
{
	char path[256];
	int fd, r = 0;
	size_t n = strlen(text);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	if (n && write(fd, text, n) != (ssize_t)n)
		r = -errno;
	close(fd);
	return r;
}

/*
 * Every way out of the process turns the event off and removes the
 * instance; a SIGKILL cannot be caught, so the instance is per pid.
 */
static void trace_off(void)
{
	if (!inst[0])
		return;
	write_file(inst, "events/kvmmmu/kvm_mmu_set_spte/enable", "0", 0);
	rmdir(inst);
	inst[0] = '\0';
}

static void on_signal(int sig)
{
	trace_off();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* 0, or a reason why the SPTE event cannot be read here. */
static const char *trace_on(void)
{
	static const char *roots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
	static char why[256];
	char pid[32], event[128];
	struct stat st;
	int r;

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]) && !trace_root[0]; i++) {
		snprintf(event, sizeof(event), "%s/events/kvmmmu/kvm_mmu_set_spte", roots[i]);
		if (stat(event, &st) == 0)
			snprintf(trace_root, sizeof(trace_root), "%s", roots[i]);
	}
	if (!trace_root[0])
		return "no tracefs with the kvmmmu:kvm_mmu_set_spte event (needs CONFIG_FTRACE, "
		       "CONFIG_ENABLE_DEFAULT_TRACERS and tracefs mounted)";
	snprintf(inst, sizeof(inst), "%s/instances/live-memtype.%d", trace_root, (int)getpid());
	if (mkdir(inst, 0700) < 0) {
		snprintf(why, sizeof(why), "cannot create tracefs instance %s: %s", inst,
			 strerror(errno));
		inst[0] = '\0';
		return why;
	}
	atexit(trace_off);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGSEGV, on_signal);
	signal(SIGABRT, on_signal);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	r = write_file(inst, "set_event_pid", pid, O_TRUNC);
	if (r == 0)
		r = write_file(inst, "events/kvmmmu/kvm_mmu_set_spte/enable", "1", 0);
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot enable the event in %s: %s", inst, strerror(-r));
		trace_off();
		return why;
	}
	return NULL;
}

static void trace_clear(void)
{
	write_file(inst, "trace", "", O_TRUNC);
}

/*
 * The memory type of every SPTE made since trace_clear(), per slot: one
 * value when all agree, MT_UNSEEN when none was made, MT_INCONSISTENT when
 * they differ. Also counts the SPTEs per slot.
 */
static void trace_collect(const uint64_t gpa[NSLOTS], int mt[NSLOTS], int count[NSLOTS])
{
	char path[160], line[512];
	FILE *f;

	for (int s = 0; s < NSLOTS; s++) {
		mt[s] = MT_UNSEEN;
		count[s] = 0;
	}
	snprintf(path, sizeof(path), "%s/trace", inst);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long gfn, spte;
		const char *p = strstr(line, "kvm_mmu_set_spte: gfn ");

		if (!p || sscanf(p, "kvm_mmu_set_spte: gfn %llx spte %llx", &gfn, &spte) != 2)
			continue;
		for (int s = 0; s < NSLOTS; s++) {
			int m = (int)((spte >> 3) & 0xf);

			if ((gfn << 12) < gpa[s] || (gfn << 12) >= gpa[s] + SLOT_LEN)
				continue;
			count[s]++;
			if (mt[s] == MT_UNSEEN)
				mt[s] = m;
			else if (mt[s] != m)
				mt[s] = MT_INCONSISTENT;
		}
	}
	fclose(f);
}

/* One VM with a plain and a second slot, a vCPU that can run the guest again. */
struct vm {
	int kvm, fd, vcpu, run_size;
	struct kvm_run *run;
	unsigned char *mem[NSLOTS];
	uint64_t gpa[NSLOTS];
	bool nc[NSLOTS];	    /* registered as non-coherent through the library */
	bool flagged[NSLOTS];	    /* ... by the memslot flag, which stays with the slot */
	bool checked, last[NSLOTS]; /* what the previous check expected */
};

static int vm_start(struct vm *v, int kvm)
{
	memset(v, 0, sizeof(*v));
	v->kvm = kvm;
	v->fd = t_create_vm(kvm);
	v->vcpu = -1;
	v->gpa[PLAIN] = 0;
	v->gpa[NC] = NC_GPA;
	for (int s = 0; s < NSLOTS; s++) {
		v->mem[s] = mmap(NULL, SLOT_LEN, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (v->mem[s] == MAP_FAILED)
			return -errno;
	}
	memcpy(v->mem[PLAIN] + CODE_GPA, guest_code, sizeof(guest_code));
	ioctl(v->fd, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	return 0;
}

static void vm_stop(struct vm *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->run_size);
	if (v->vcpu >= 0)
		close(v->vcpu);
	close(v->fd);
	for (int s = 0; s < NSLOTS; s++)
		if (v->mem[s] && v->mem[s] != MAP_FAILED)
			munmap(v->mem[s], SLOT_LEN);
}

static struct kvmnc_region vm_region(const struct vm *v, int s, bool nc)
{
	struct kvmnc_region r = {
		.sz = sizeof(r),
		.slot = (uint32_t)s,
		.guest_phys_addr = v->gpa[s],
		.memory_size = SLOT_LEN,
		.userspace_addr = (uintptr_t)v->mem[s],
		.kvmnc_flags = nc ? KVMNC_REGION_NONCOHERENT : 0,
	};
	return r;
}

/*
 * Registers slot @s through the library, non-coherent if @want_nc and the
 * library can; a refusal (-EOPNOTSUPP: nothing honors guest PAT) registers
 * it as plain memory, as a VMM would.
 */
static void vm_add(struct vm *v, struct kvmnc *h, int s, bool want_nc)
{
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct kvmnc_region r = vm_region(v, s, want_nc);
	int rc = kvmnc_set_region(h, &r);

	kvmnc_get_info(h, &info);
	if (want_nc && info.region_mechanism == KVMNC_MECH_NONE) {
		T_EQ(rc, -EOPNOTSUPP, "non-coherent region refused: no mechanism for regions");
		r.kvmnc_flags = 0;
		rc = kvmnc_set_region(h, &r);
		want_nc = false;
	}
	T_EQ(rc, 0, want_nc ? "non-coherent region through the library" : "plain region");
	v->nc[s] = want_nc && rc == 0;
	v->flagged[s] = v->nc[s] && info.region_mechanism == KVMNC_MECH_MEMSLOT_FLAG;
}

/*
 * Moves every slot away and back with raw ioctls (same flags), which zaps
 * its SPTEs, so that the next run makes new ones.
 */
static void vm_refresh(struct vm *v)
{
	for (int s = 0; s < NSLOTS; s++) {
		struct kvmnc_region m = {
			.sz = sizeof(m),
			.slot = (uint32_t)s,
			.guest_phys_addr = v->gpa[s] + (1ull << 30),
			.memory_size = SLOT_LEN,
			.userspace_addr = (uintptr_t)v->mem[s],
		};
		uint32_t flags = v->flagged[s] ? KVM_MEM_NON_COHERENT_DMA : 0;
		/* v2 where the kernel has it: Debian 12's own 6.1 has only v1. */
		int r = t_raw_region(v->fd, &m, flags);

		m.guest_phys_addr = v->gpa[s];
		if (r == 0)
			r = t_raw_region(v->fd, &m, flags);
		t_check(r == 0, "slot %d moved away and back, for new SPTEs: %s", s,
			r ? strerror(-r) : "done");
	}
}

/* KVM_RUN from the first instruction until the guest halts. */
static bool vm_run(struct vm *v)
{
	struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
	struct kvm_sregs sregs;

	if (v->vcpu < 0) {
		v->vcpu = ioctl(v->fd, KVM_CREATE_VCPU, 0);
		v->run_size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
		if (v->vcpu < 0 || v->run_size <= 0)
			return false;
		v->run = mmap(NULL, (size_t)v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			      v->vcpu, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			return false;
		}
	}
	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
		return false;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
		return false;
	return ioctl(v->vcpu, KVM_RUN, 0) == 0 && v->run->exit_reason == KVM_EXIT_HLT &&
	       v->mem[PLAIN][0x8000] == 0x11 && v->mem[NC][0] == 0x22;
}

static const char *mt_name(int mt)
{
	static char buf[32];

	if (mt == MT_UNSEEN)
		return "no SPTE made";
	if (mt == MT_INCONSISTENT)
		return "SPTEs disagree";
	snprintf(buf, sizeof(buf), "%#x", mt);
	return buf;
}

/*
 * Runs the guest and checks every slot's new SPTEs against @honored. Where
 * the rules changed since the previous check, KVM itself must have zapped
 * the old entries (the first registration of non-coherent DMA and the last
 * unregistration do); where they did not, the slots are moved to get new
 * ones.
 */
static void expect_memtypes(struct vm *v, const char *what, const bool honored[NSLOTS])
{
	int mt[NSLOTS], count[NSLOTS];
	static const char *const slot_name[NSLOTS] = {"plain slot", "second slot"};

	if (v->checked && !memcmp(v->last, honored, sizeof(v->last)))
		vm_refresh(v);
	v->checked = true;
	memcpy(v->last, honored, sizeof(v->last));
	trace_clear();
	t_check(vm_run(v), "%s: guest touches both slots and halts", what);
	trace_collect(v->gpa, mt, count);
	for (int s = 0; s < NSLOTS; s++) {
		int want = honored[s] ? MT_WB : MT_WB_IPAT;

		printf("# %s: %s (%s): %d SPTE(s), memory type %s\n", what, slot_name[s],
		       v->nc[s] ? "non-coherent" : "plain", count[s], mt_name(mt[s]));
		t_check(mt[s] == want, "%s: %s SPTEs are %#x (%s), got %s", what, slot_name[s],
			want, honored[s] ? "WB, guest PAT honored" : "WB|IPAT", mt_name(mt[s]));
	}
}

/*
 * Where the library says guest PAT is honored: VM-wide while it disabled
 * the quirk or holds a VIRTIO device; per slot where the memslot flag
 * carries it.
 */
static void library_says(const struct vm *v, struct kvmnc *h, bool honored[NSLOTS])
{
	struct kvmnc_handle_info i = {.sz = sizeof(i)};
	bool vm_wide;

	kvmnc_get_info(h, &i);
	vm_wide = i.quirk_disabled ||
		  (i.device_mechanism == KVMNC_MECH_VIRTIO_DEVICE && i.enabled_devices > 0) ||
		  (i.region_mechanism == KVMNC_MECH_VIRTIO_DEVICE && i.noncoherent_regions > 0);
	for (int s = 0; s < NSLOTS; s++)
		honored[s] = vm_wide || v->flagged[s];
}

static bool shadow_only;
static struct kvmnc_features probe = {.sz = sizeof(probe)};

static bool probe_says(int mech)
{
	switch (mech) {
	case KVMNC_MECH_MEMSLOT_FLAG:
		return probe.memslot_flag.supported == 1;
	case KVMNC_MECH_VIRTIO_DEVICE:
		return probe.virtio_device.supported == 1;
	case KVMNC_MECH_GUEST_PAT_QUIRK:
		return probe.guest_pat_quirk.supported == 1;
	}
	return probe.native.supported == 1;
}

/* Scope-chosen mechanism: plain + non-coherent region, devices on and off. */
static void scenario(int kvm, const char *name, int scope, int mech)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = scope, .mechanism = mech);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	bool honored[NSLOTS], quirk_was_off;
	struct kvmnc *h = NULL;
	char what[160];
	struct vm v;
	int r;

	if (vm_start(&v, kvm) < 0) {
		t_check(false, "%s: guest memory", name);
		vm_stop(&v);
		return;
	}
	r = kvmnc_open(v.fd, &o, &h);
	if (mech && r == -EOPNOTSUPP) {
		t_check(!probe_says(mech),
			"%s: forced open refused (-EOPNOTSUPP), as the probe says", name);
		vm_stop(&v);
		return;
	}
	T_EQ(r, 0, "open");
	if (mech)
		t_check(probe_says(mech), "%s: forced open works where the probe says so", name);
	if (r < 0) {
		vm_stop(&v);
		return;
	}
	kvmnc_get_info(h, &info);
	printf("# %s: regions use %s, devices use %s, quirk disabled %d\n", name,
	       kvmnc_mechanism_name(info.region_mechanism),
	       kvmnc_mechanism_name(info.device_mechanism), info.quirk_disabled);
	vm_add(&v, h, PLAIN, false);
	vm_add(&v, h, NC, true);
	if (shadow_only) {
		t_check(!v.nc[NC], "%s: shadow paging: the library makes no region non-coherent",
			name);
		T_EQ(kvmnc_device_enable(h, 7), -EOPNOTSUPP,
		     "shadow paging: no VM-wide mechanism for devices");
		printf("ok %d - %s: SPTE memory types # SKIP shadow paging (kvm_intel.ept=N) has "
		       "no EPT memory type\n",
		       ++t_num, name);
		goto out;
	}
	library_says(&v, h, honored);
	snprintf(what, sizeof(what), "%s, regions registered", name);
	expect_memtypes(&v, what, honored);

	/* A device model doing DMA anywhere, if the scope allows one. */
	kvmnc_get_info(h, &info);
	r = kvmnc_device_enable(h, 7);
	if (info.device_mechanism == KVMNC_MECH_NONE) {
		T_EQ(r, -EOPNOTSUPP, "device enable refused: no VM-wide mechanism in this scope");
	} else {
		T_EQ(r, 0, "device enable");
		library_says(&v, h, honored);
		snprintf(what, sizeof(what), "%s, device enabled (%s)", name,
			 kvmnc_mechanism_name(info.device_mechanism));
		expect_memtypes(&v, what, honored);
		T_EQ(kvmnc_device_disable(h, 7), 0, "device disable");
		library_says(&v, h, honored);
		snprintf(what, sizeof(what), "%s, device disabled", name);
		expect_memtypes(&v, what, honored);
		T_EQ(kvmnc_device_enable(h, 8), 0, "enable another device, then close the handle");
	}

	/*
	 * After close the VM keeps what cannot be undone (a disabled quirk,
	 * flagged slots); the library's devices are gone.
	 */
	kvmnc_get_info(h, &info);
	quirk_was_off = info.quirk_disabled;
	T_EQ(kvmnc_close(h), 0, "close");
	h = NULL;
	for (int s = 0; s < NSLOTS; s++)
		honored[s] = quirk_was_off || v.flagged[s];
	snprintf(what, sizeof(what), "%s, after kvmnc_close()", name);
	expect_memtypes(&v, what, honored);
out:
	if (h)
		T_EQ(kvmnc_close(h), 0, "close");
	vm_stop(&v);
}

/* The memslot flag, the device and the quirk, each forced where it exists. */
static void check_expectations(const struct t_expect *e, const struct kvmnc_features *f)
{
	if (!e)
		return;
	printf("# expecting %s\n", e->name);
	T_EQ(f->memslot_flag.supported, e->flag, "memslot_flag as expected");
	T_EQ(f->virtio_device.supported, e->device, "virtio_device as expected");
	T_EQ(f->guest_pat_quirk.supported, e->quirk, "guest_pat_quirk as expected");
}

static int cpu_has_vmx(void)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5))
			found = strstr(line, " vmx ") || strstr(line, " vmx\n");
	fclose(f);
	return found;
}

int main(void)
{
	const struct t_expect *e = t_expect();
	struct kvmnc_features f;
	bool vmx_run = e && e->module && !strcmp(e->module, "kvm_intel");
	const char *why;
	int kvm, fds;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!cpu_has_vmx()) {
		if (vmx_run)
			t_check(false,
				"KVMNC_EXPECT=%s is a VMX personality, but the CPU has no vmx",
				e->name);
		else
			t_skip("not an Intel VMX host (no vmx in /proc/cpuinfo): only EPT entries "
			       "carry the memory type this test reads");
		return t_done();
	}
	kvm = t_kvm_fd();
	if (kvmnc_probe(NULL, &probe) < 0)
		return T_EXIT_FAIL;
	f = probe;
	printf("# kernel %s: tdp %d, self-snoop %d, recommended %s\n", f.kernel_release, f.tdp,
	       f.self_snoop, kvmnc_mechanism_name(f.recommended));
	check_expectations(e, &f);
	shadow_only = f.tdp == 0;
	if (shadow_only && e && e->tdp == 1)
		t_check(false, "%s expects EPT, but kvm_intel uses shadow paging", e->name);
	if (!shadow_only) {
		why = trace_on();
		if (why && vmx_run) {
			t_check(false, "SPTE trace available on a VMX run: %s", why);
			return t_done();
		}
		if (why)
			t_skip(why);
	}
	fds = t_count_fds();

	scenario(kvm, "scope SLOT", KVMNC_SCOPE_SLOT, KVMNC_MECH_NONE);
	scenario(kvm, "scope VM", KVMNC_SCOPE_VM, KVMNC_MECH_NONE);
	scenario(kvm, "scope VM_IRREVERSIBLE", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_NONE);
	/* Each mechanism on its own, where the library can use it. */
	scenario(kvm, "memslot_flag", KVMNC_SCOPE_SLOT, KVMNC_MECH_MEMSLOT_FLAG);
	scenario(kvm, "virtio_device", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE);
	scenario(kvm, "guest_pat_quirk", KVMNC_SCOPE_VM_IRREVERSIBLE, KVMNC_MECH_GUEST_PAT_QUIRK);

	T_EQ(t_count_fds(), fds, "no fd left behind");
	trace_off();
	close(kvm);
	return t_done();
}
