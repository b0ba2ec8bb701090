// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Sandboxed VMMs on the real kernel. A VMM that created its VM and then
 * dropped privileges (the node no longer opens), and one whose seccomp
 * filter denies KVM_CREATE_VM (no scratch VM), must still open a handle and
 * get definitive answers, tried on their own VM, equal to what an
 * unsandboxed process is told (1.0: -EACCES, and "could not tell").
 */
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#if defined(__x86_64__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#endif

#include "../../libkvmnc/compat-kvm.h"
#include "live.h"

struct answer {
	int open_rc;
	int supported[4];
	int probed_on;
	int slots_left;
};

static void collect(int vm, struct answer *a)
{
	KVMNC_OPTS(kvmnc_features, f);
	struct kvmnc *h = NULL;

	a->open_rc = kvmnc_open(vm, NULL, &h);
	if (a->open_rc == 0 && kvmnc_get_features(h, &f) == 0) {
		a->supported[0] = f.native.supported;
		a->supported[1] = f.memslot_flag.supported;
		a->supported[2] = f.virtio_device.supported;
		a->supported[3] = f.guest_pat_quirk.supported;
		a->probed_on = f.probed_on;
	}
	kvmnc_close(h);
	/* The trial slot must be gone: creating the same slot plain works. */
	{
		static char page[4096] __attribute__((aligned(4096)));
		struct kvm_userspace_memory_region m = {
			.slot = f.memslots ? f.memslots - 1 : 0,
			.guest_phys_addr = (1ULL << 36) - 4096,
			.memory_size = 4096,
			.userspace_addr = (uintptr_t)page,
		};

		a->slots_left = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m) < 0;
	}
}

#if defined(__x86_64__)
static int deny_create_vm(void)
{
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_CREATE_VM, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fp = {.len = sizeof(prog) / sizeof(prog[0]), .filter = prog};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0 ? -errno : 0;
}
#else
static int deny_create_vm(void)
{
	return -EOPNOTSUPP;
}
#endif

enum { SANDBOX_SECCOMP, SANDBOX_UNPRIVILEGED };

/* In a child (its own probe cache): make the VM, enter the sandbox, open. */
static int sandboxed(int how, struct answer *a, char *why, size_t len)
{
	int p[2], st = 0;
	pid_t pid;

	if (pipe(p) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		struct answer mine = {.open_rc = -1};
		int kvm = t_kvm_fd(), vm = t_create_vm(kvm), r;

		close(kvm);
		if (how == SANDBOX_SECCOMP) {
			r = deny_create_vm();
		} else {
			r = setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0
				    ? -errno
				    : 0;
			/* Where /dev/kvm is world-accessible the fallback is not needed. */
			if (r == 0 && access("/dev/kvm", R_OK | W_OK) == 0)
				r = -EEXIST;
		}
		if (r == 0)
			collect(vm, &mine);
		else
			mine.open_rc = 1000 - r; /* the sandbox could not be entered */
		if (write(p[1], &mine, sizeof(mine)) != sizeof(mine))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], a, sizeof(*a)) != sizeof(*a))
		a->open_rc = -EPIPE;
	close(p[0]);
	waitpid(pid, &st, 0);
	if (a->open_rc >= 1000) {
		snprintf(why, len, "could not enter the sandbox: %s", strerror(a->open_rc - 1000));
		return 1;
	}
	return 0;
}

int main(void)
{
	static const char *const names[] = {"native", "memslot_flag", "virtio_device",
					    "guest_pat_quirk"};
	static const char *const how[] = {"seccomp denies KVM_CREATE_VM",
					  "privileges dropped after KVM_CREATE_VM"};
	KVMNC_OPTS(kvmnc_features, ref);
	struct answer a[2];
	char why[2][128];
	int kvm = t_kvm_fd(), skipped[2];

	close(kvm);
	/* The children first: they must not inherit a filled probe cache. */
	for (int i = 0; i < 2; i++)
		skipped[i] = sandboxed(i, &a[i], why[i], sizeof(why[i]));
	T_EQ(kvmnc_probe(NULL, &ref), 0, "unsandboxed probe");
	for (int i = 0; i < 2; i++) {
		if (skipped[i] || (i == SANDBOX_UNPRIVILEGED && geteuid() != 0)) {
			printf("ok %d - %s # SKIP %s\n", ++t_num, how[i],
			       skipped[i] ? why[i] : "needs root to drop privileges");
			continue;
		}
		T_EQ(a[i].open_rc, 0, how[i]);
		T_EQ(a[i].probed_on, KVMNC_PROBED_CALLER_VM, "tried on the caller's VM");
		T_EQ(a[i].slots_left, 0, "the trial slot was deleted again");
		for (int m = 0; m < 4; m++) {
			int want = m == 0   ? ref.native.supported
				   : m == 1 ? ref.memslot_flag.supported
				   : m == 2 ? ref.virtio_device.supported
					    : ref.guest_pat_quirk.supported;

			t_check(a[i].supported[m] >= 0 && a[i].supported[m] == want,
				"%s: %s definitive and as unsandboxed (%d, want %d)", how[i],
				names[m], a[i].supported[m], want);
		}
	}
	return t_done();
}
