// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * run-filtered: run a program under a seccomp filter that allows only the
 * system calls libkvmnc makes (docs/seccomp.md), the ioctls it issues, and
 * the minimal set a dynamically linked C program needs to start, print and
 * exit. No libseccomp: the BPF program is assembled here.
 *
 *   run-filtered [--errno | --log] [--] PROGRAM [ARGS...]
 *   run-filtered --check      exit 0 if this kernel can install the filter
 *   run-filtered --dump       print the BPF program and exit
 *
 * Anything outside the list kills the process (SIGSYS, SECCOMP_RET_KILL_PROCESS);
 * --errno makes it fail with EPERM instead and --log lets it through but has
 * the kernel log it (dmesg / audit), both for finding out what is missing.
 *
 * Exit status: the program's, or 125 the filter could not be installed, 126
 * the program could not be executed, 127 it was not found.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat-kvm.h"

#if !defined(__x86_64__) || defined(__ILP32__)
#error "run-filtered knows the x86_64 system call table only"
#endif

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
#ifndef SECCOMP_RET_LOG
#define SECCOMP_RET_LOG 0x7ffc0000U
#endif
#define X32_SYSCALL_BIT 0x40000000U

extern char **environ;

/* Allowed without looking at the arguments. */
static const struct {
	int nr;
	const char *name;
} plain[] = {
	/* libkvmnc (sys.c): the KVM node, sysfs, the probe's scratch page. */
	{__NR_close, "close"},
	{__NR_read, "read"},
	{__NR_mmap, "mmap"},
	{__NR_munmap, "munmap"},
	{__NR_uname, "uname"},
	{__NR_futex, "futex"}, /* pthread mutexes under contention */
	/* The dynamic loader and libc start-up. */
	{__NR_brk, "brk"},
	{__NR_mprotect, "mprotect"},
	{__NR_arch_prctl, "arch_prctl"},
	{__NR_set_tid_address, "set_tid_address"},
	{__NR_set_robust_list, "set_robust_list"},
	{__NR_rseq, "rseq"},
	{__NR_prlimit64, "prlimit64"},
	{__NR_newfstatat, "newfstatat"},
	{__NR_fstat, "fstat"},
	{__NR_pread64, "pread64"},
	{__NR_access, "access"},
	{__NR_readlink, "readlink"},   /* $ORIGIN in the build tree's RUNPATH */
	{__NR_getrandom, "getrandom"}, /* malloc's tcache / stack protector */
	/* Output and exit. */
	{__NR_write, "write"},
	{__NR_exit_group, "exit_group"},
	{__NR_exit, "exit"},
};

/* ioctl request numbers allowed (the whole 64-bit argument must match). */
static const struct {
	uint32_t req;
	const char *name;
} ioctls[] = {
	/* System fd (/dev/kvm). */
	{KVM_GET_API_VERSION, "KVM_GET_API_VERSION"}, /* also tried on the VM fd */
	{KVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION"}, /* system and VM fd */
	{KVM_CREATE_VM, "KVM_CREATE_VM"},
	/* VM fd. */
	{KVM_CREATE_DEVICE, "KVM_CREATE_DEVICE"},
	{KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION"},
	{KVM_SET_USER_MEMORY_REGION2, "KVM_SET_USER_MEMORY_REGION2"},
	{KVM_ENABLE_CAP, "KVM_ENABLE_CAP"},
	/* Device fd. */
	{KVM_HAS_DEVICE_ATTR, "KVM_HAS_DEVICE_ATTR"},
	{KVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR"},
	/* The access trial (bit 3 without a capability that means the flag). */
	{KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE"},
	{KVM_CREATE_VCPU, "KVM_CREATE_VCPU"},
	{KVM_GET_SREGS, "KVM_GET_SREGS"},
	{KVM_SET_SREGS, "KVM_SET_SREGS"},
	{KVM_SET_REGS, "KVM_SET_REGS"},
	{KVM_RUN, "KVM_RUN"},
	/* libc: isatty() on stdout, to choose stdio buffering. */
	{TCGETS, "TCGETS"},
};

/* fcntl commands allowed: the library's check that a VM fd is open. */
static const uint32_t fcntl_cmds[] = {F_GETFD};

/*
 * A tiny assembler: jumps name a label, resolved to relative offsets once
 * the program is complete.
 */
#define MAX_INSNS 128
enum label { L_NEXT = 0, L_ALLOW, L_DENY, L_IOCTL, L_FCNTL, L_OPENAT, L_EXECVE, L_KILL, NLABELS };

struct asm_insn {
	uint16_t code;
	uint32_t k;
	enum label jt, jf;
};

struct prog {
	struct asm_insn in[MAX_INSNS];
	int n;
	int at[NLABELS];
};

static void emit(struct prog *p, uint16_t code, uint32_t k, enum label jt, enum label jf)
{
	if (p->n >= MAX_INSNS) {
		fprintf(stderr, "run-filtered: BPF program too long\n");
		exit(125);
	}
	p->in[p->n++] = (struct asm_insn){code, k, jt, jf};
}

static void label(struct prog *p, enum label l)
{
	p->at[l] = p->n;
}

#define LD_ABS(p, off)	   emit(p, BPF_LD | BPF_W | BPF_ABS, (uint32_t)(off), L_NEXT, L_NEXT)
#define JEQ(p, k, jt, jf)  emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(k), jt, jf)
#define JSET(p, k, jt, jf) emit(p, BPF_JMP | BPF_JSET | BPF_K, (uint32_t)(k), jt, jf)
#define JGE(p, k, jt, jf)  emit(p, BPF_JMP | BPF_JGE | BPF_K, (uint32_t)(k), jt, jf)
#define RET(p, k)	   emit(p, BPF_RET | BPF_K, (uint32_t)(k), L_NEXT, L_NEXT)

/* Little-endian halves of a 64-bit argument in struct seccomp_data. */
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t))
#define ARG_HI(i) (ARG_LO(i) + sizeof(uint32_t))

static int resolve(const struct prog *p, int i, enum label l)
{
	int off = l == L_NEXT ? 0 : p->at[l] - (i + 1);

	if (off < 0 || off > 255) {
		fprintf(stderr, "run-filtered: jump out of range at %d\n", i);
		exit(125);
	}
	return off;
}

static void build(struct prog *p, struct sock_filter *out, uint32_t deny, uint64_t exec_path)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	/* Only the x86_64 ABI: i386 and x32 numbers mean other calls. */
	LD_ABS(p, offsetof(struct seccomp_data, arch));
	JEQ(p, AUDIT_ARCH_X86_64, L_NEXT, L_KILL);
	LD_ABS(p, offsetof(struct seccomp_data, nr));
	JGE(p, X32_SYSCALL_BIT, L_KILL, L_NEXT);
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		JEQ(p, plain[i].nr, L_ALLOW, L_NEXT);
	JEQ(p, __NR_ioctl, L_IOCTL, L_NEXT);
	JEQ(p, __NR_fcntl, L_FCNTL, L_NEXT);
	JEQ(p, __NR_openat, L_OPENAT, L_NEXT);
	JEQ(p, __NR_execve, L_EXECVE, L_NEXT);
	RET(p, deny);

	/* ioctl(fd, req, arg): req in the list, its upper half zero. */
	label(p, L_IOCTL);
	LD_ABS(p, ARG_HI(1));
	JEQ(p, 0, L_NEXT, L_DENY);
	LD_ABS(p, ARG_LO(1));
	for (i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
		JEQ(p, ioctls[i].req, L_ALLOW, L_NEXT);
	RET(p, deny);

	/* fcntl(fd, cmd, ...): cmd in the list. */
	label(p, L_FCNTL);
	LD_ABS(p, ARG_HI(1));
	JEQ(p, 0, L_NEXT, L_DENY);
	LD_ABS(p, ARG_LO(1));
	for (i = 0; i < sizeof(fcntl_cmds) / sizeof(fcntl_cmds[0]); i++)
		JEQ(p, fcntl_cmds[i], L_ALLOW, L_NEXT);
	RET(p, deny);

	/* openat(dirfd, path, flags, mode): every fd is opened close-on-exec. */
	label(p, L_OPENAT);
	LD_ABS(p, ARG_LO(2));
	JSET(p, O_CLOEXEC, L_ALLOW, L_DENY);

	/*
	 * execve(path, ...): only with the very pointer this launcher passes,
	 * i.e. its own execve of the target. BPF cannot read the string.
	 */
	label(p, L_EXECVE);
	LD_ABS(p, ARG_HI(0));
	JEQ(p, (uint32_t)(exec_path >> 32), L_NEXT, L_DENY);
	LD_ABS(p, ARG_LO(0));
	JEQ(p, (uint32_t)exec_path, L_ALLOW, L_DENY);

	label(p, L_DENY);
	RET(p, deny);
	label(p, L_KILL);
	RET(p, SECCOMP_RET_KILL_PROCESS);
	label(p, L_ALLOW);
	RET(p, SECCOMP_RET_ALLOW);

	for (int j = 0; j < p->n; j++) {
		out[j].code = p->in[j].code;
		out[j].k = p->in[j].k;
		out[j].jt = (uint8_t)resolve(p, j, p->in[j].jt);
		out[j].jf = (uint8_t)resolve(p, j, p->in[j].jf);
	}
}

static int install(struct sock_filter *f, int n)
{
	struct sock_fprog fp = {.len = (unsigned short)n, .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("run-filtered: PR_SET_NO_NEW_PRIVS");
		return -1;
	}
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) == 0)
		return 0;
	if (errno == ENOSYS && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) == 0)
		return 0;
	perror("run-filtered: installing the seccomp filter");
	return -1;
}

/* PATH lookup before the filter is in, so that one execve() with one pointer follows. */
static const char *find_program(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/'))
		return name;
	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, len, "%.*s%s%s", (int)n, path, n ? "/" : "./", name);
		if (access(buf, X_OK) == 0)
			return buf;
		path += n + (path[n] == ':');
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: run-filtered [--errno | --log] [--] PROGRAM [ARGS...]\n"
		   "       run-filtered --check | --dump\n");
}

int main(int argc, char **argv)
{
	static struct sock_filter filter[MAX_INSNS];
	static char pathbuf[4096];
	uint32_t deny = SECCOMP_RET_KILL_PROCESS;
	bool check = false, dump = false;
	const char *prog;
	struct prog p;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--errno")) {
			deny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
		} else if (!strcmp(argv[i], "--log")) {
			deny = SECCOMP_RET_LOG;
		} else if (!strcmp(argv[i], "--check")) {
			check = true;
		} else if (!strcmp(argv[i], "--dump")) {
			dump = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 125;
		}
	}

	if (dump) {
		build(&p, filter, deny, 0);
		for (int j = 0; j < p.n; j++)
			printf("%3d: code 0x%04x jt %3u jf %3u k 0x%08x\n", j, filter[j].code,
			       filter[j].jt, filter[j].jf, filter[j].k);
		return 0;
	}
	if (check) {
		/* In a child: the filter cannot be removed once in. */
		pid_t pid = fork();
		int st;

		if (pid < 0) {
			perror("run-filtered: fork");
			return 125;
		}
		if (pid == 0) {
			build(&p, filter, deny, 0);
			_exit(install(filter, p.n) < 0 ? 125 : 0);
		}
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
			return 125;
		return WEXITSTATUS(st);
	}
	if (i >= argc) {
		usage(stderr);
		return 125;
	}

	prog = find_program(argv[i], pathbuf, sizeof(pathbuf));
	if (!prog) {
		fprintf(stderr, "run-filtered: %s: not found\n", argv[i]);
		return 127;
	}
	build(&p, filter, deny, (uint64_t)(uintptr_t)prog);
	if (install(filter, p.n) < 0)
		return 125;
	execve(prog, &argv[i], environ);
	/* write() and exit_group() are allowed. */
	fprintf(stderr, "run-filtered: %s: %s\n", prog, strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
