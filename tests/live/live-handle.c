// SPDX-License-Identifier: LGPL-2.1-or-later
/* Handles on real VM fds, and every kind of fd that is not one. */
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../../libkvmnc/compat-kvm.h"
#include "live.h"

/*
 * 1.3: WBINVD emulation only on request, on the kernel's word, with nothing
 * left where it is refused; no VM-wide mechanism with a UC-VRAM display.
 */
static void open_flags_13(int kvm)
{
	KVMNC_OPTS(kvmnc_open_opts, wb, .flags = KVMNC_OPEN_WBINVD);
	KVMNC_OPTS(kvmnc_open_opts, uc, .scope = KVMNC_SCOPE_VM_IRREVERSIBLE,
		   .flags = KVMNC_OPEN_UC_VRAM_DISPLAY);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct kvmnc_features f = {.sz = sizeof(f)};
	struct kvmnc *h = NULL;
	int vm = t_create_vm(kvm), vm2 = t_create_vm(kvm), vcpu, r, fds;
	long raw = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_X86_EMULATE_WBINVD);

	fds = t_count_fds();
	r = kvmnc_open(vm, &wb, &h);
	printf("# KVMNC_OPEN_WBINVD: %d (%s); capability 251 on a VM: %ld\n", r, kvmnc_strerror(r),
	       raw);
	if (raw > 0) {
		T_EQ(r, 0, "WBINVD emulation where the VM answers 251");
		T_EQ(kvmnc_get_info(h, &info), 0, "get_info");
		T_EQ(info.wbinvd_emulation, 1, "the handle says it is on");
		T_EQ(kvmnc_close(h), 0, "close");
		/* KVM refuses it once a vCPU exists: nothing done. */
		vcpu = ioctl(vm2, KVM_CREATE_VCPU, 0);
		t_check(vcpu >= 0, "a vCPU first");
		T_EQ(kvmnc_open(vm2, &wb, &h), -EBUSY, "too late with a vCPU");
		close(vcpu);
	} else {
		T_EQ(r, -EOPNOTSUPP, "no WBINVD emulation where capability 251 answers 0");
		t_check(h == NULL, "no handle");
	}
	T_EQ(t_count_fds(), fds, "nothing left open");

	vm2 = (close(vm2), t_create_vm(kvm));
	uc.mechanism = KVMNC_MECH_GUEST_PAT_QUIRK;
	T_EQ(kvmnc_open(vm2, &uc, &h), -EINVAL, "a UC-VRAM display forbids a forced quirk");
	uc.mechanism = KVMNC_MECH_NONE;
	T_EQ(kvmnc_open(vm2, &uc, &h), 0, "a UC-VRAM display: automatic choice");
	T_EQ(kvmnc_get_info(h, &info), 0, "get_info");
	T_EQ(kvmnc_get_features(h, &f), 0, "get_features");
	printf("# UC-VRAM display: regions %s, devices %s\n",
	       kvmnc_mechanism_name(info.region_mechanism),
	       kvmnc_mechanism_name(info.device_mechanism));
	T_EQ(info.quirk_disabled, 0, "the quirk stays on");
	t_check(info.region_mechanism != KVMNC_MECH_VIRTIO_DEVICE &&
			info.region_mechanism != KVMNC_MECH_GUEST_PAT_QUIRK &&
			info.device_mechanism != KVMNC_MECH_VIRTIO_DEVICE &&
			info.device_mechanism != KVMNC_MECH_GUEST_PAT_QUIRK,
		"no VM-wide mechanism");
	t_check(f.virtio_device.supported == 0 && f.guest_pat_quirk.supported == 0,
		"the VM-wide answers read no (%s / %s)", f.virtio_device.reason,
		f.guest_pat_quirk.reason);
	T_EQ(kvmnc_close(h), 0, "close");
	close(vm);
	close(vm2);
}

int main(void)
{
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct kvmnc *h = NULL, *h2 = NULL;
	int kvm = t_kvm_fd(), vm, vm2, dupvm, vcpu, closed, pipefd[2], devnull, fds;

	vm = t_create_vm(kvm);
	vm2 = t_create_vm(kvm);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	t_check(vcpu >= 0, "a vCPU for the bad-fd checks");
	if (pipe2(pipefd, O_CLOEXEC) < 0 || (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return T_EXIT_FAIL;
	closed = dup(devnull);
	close(closed);

	fds = t_count_fds();
	T_EQ(kvmnc_open(pipefd[0], &o, &h), -ENOTTY, "a pipe is not a VM");
	T_EQ(kvmnc_open(devnull, &o, &h), -ENOTTY, "/dev/null is not a VM");
	T_EQ(kvmnc_open(closed, &o, &h), -EBADF, "a closed fd");
	T_EQ(kvmnc_open(-1, &o, &h), -EBADF, "fd -1");
	T_EQ(kvmnc_open(kvm, &o, &h), -ENOTTY, "the KVM system fd is not a VM");
	T_EQ(kvmnc_open(vcpu, &o, &h), -ENOTTY, "a vCPU fd is not a VM");
	t_check(h == NULL, "no handle came back from the failures");
	T_EQ(t_count_fds(), fds, "failed opens leave no fd");

	T_EQ(kvmnc_open(vm, &o, &h), 0, "open on the VM fd");
	T_EQ(kvmnc_open(vm, &o, &h2), -EISCONN, "a second handle on the same VM is refused");
	dupvm = fcntl(vm, F_DUPFD_CLOEXEC, 0);
	/* Only kcmp() can tell two fds of one file apart from two VMs (all VM
	 * fds share one anonymous inode); a kernel without CONFIG_KCMP, such
	 * as the kernel tier's minimal build, leaves the check to fd numbers,
	 * as docs/errors.md says. */
	if (syscall(SYS_kcmp, (long)getpid(), (long)getpid(), 0 /* KCMP_FILE */, (long)vm,
		    (long)dupvm) < 0 &&
	    errno == ENOSYS) {
		printf("# kcmp() is not in this kernel: another fd of the VM cannot be told "
		       "apart\n");
		T_EQ(kvmnc_open(dupvm, &o, &h2), 0,
		     "without kcmp, another fd of the same VM is not detected (documented)");
		T_EQ(kvmnc_close(h2), 0, "close that handle");
	} else {
		T_EQ(kvmnc_open(dupvm, &o, &h2), -EISCONN,
		     "and through another fd of the same VM (kcmp)");
	}
	close(dupvm);
	T_EQ(kvmnc_open(vm2, &o, &h2), 0, "a handle on another VM");
	T_EQ(kvmnc_get_info(h, &info), 0, "get_info");
	printf("# regions use %s, devices use %s\n", kvmnc_mechanism_name(info.region_mechanism),
	       kvmnc_mechanism_name(info.device_mechanism));
	T_EQ(kvmnc_is_noncoherent(h), 0, "a fresh VM holds no non-coherent state");
	T_EQ(kvmnc_close(h), 0, "close");
	T_EQ(kvmnc_close(h), -EBADF, "double close");
	T_EQ(kvmnc_get_info(h, &info), -EBADF, "use after close");
	T_EQ(kvmnc_close(h2), 0, "close the second handle");
	T_EQ(t_count_fds(), fds, "closing leaves no fd");
	t_check(fcntl(vm, F_GETFD) >= 0, "the caller's VM fd stays open");

	/*
	 * KVM serves a VM only to the process that created it: a child after
	 * fork gets EIO, and the library says so instead of "not a VM".
	 */
	T_EQ(kvmnc_open(vm, &o, &h), 0, "a handle the child inherits");
	pid_t pid = fork();
	if (pid == 0) {
		struct kvmnc *c = NULL;
		int r = kvmnc_open(vm, &o, &c);

		/* What the child may do with the inherited handle: close it. */
		_exit(r == -EIO && c == NULL && kvmnc_close(h) == 0 ? 0 : 1);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	t_check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"a forked child gets -EIO on the parent's VM and can close the inherited handle");
	T_EQ(kvmnc_is_noncoherent(h), 0, "the parent's handle still works");
	T_EQ(kvmnc_close(h), 0, "parent closes its handle");

	close(vcpu);
	close(vm);
	open_flags_13(kvm);
	close(kvm);
	return t_done();
}
