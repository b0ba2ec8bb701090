// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Post-copy on the real kernel: a VM starts with none of its memory, a
 * real-mode guest reads every page, and each fault KVM takes is resolved by
 * a userfaultfd handler in the header's order: UFFDIO_COPY with
 * UFFDIO_COPY_MODE_DONTWAKE, kvmnc_flush() on the page, UFFDIO_WAKE. The
 * memslot is non-coherent in the library's view: on a kernel with the
 * memslot flag through the VMM-owned path for real; on a host with no
 * mechanism (this test's usual one) the handle's region mechanism is set
 * to the flag and the VMM's ioctl leaves the bit out, which KVM would
 * ignore for its memory types here anyway. Then examples/migration-loop
 * (argv[1]) runs on /dev/kvm.
 *
 * Skips with the reason where userfaultfd is not permitted
 * (vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE, seccomp, no
 * CONFIG_USERFAULTFD).
 */
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "internal.h"
#include "live.h"

#define MEM	 (256u << 10)
#define PAGES	 (MEM / 4096)
#define CODE	 0x1000
#define TABLE	 0x2000
#define MAXEV	 (4 * (int)PAGES)
#define EV_COPY	 'C'
#define EV_FLUSH 'F'
#define EV_WAKE	 'W'

/*
 * mov si,TABLE; lodsw; mov cx,ax; 1: lodsw; mov es,ax; lodsw; mov di,ax;
 * mov al,es:[di]; loop 1b; hlt. The table: a count, then (segment, offset).
 */
static const unsigned char reader[] = {0xbe, TABLE & 0xff, TABLE >> 8, 0xad, 0x89, 0xc1,
				       0xad, 0x8e,	   0xc0,       0xad, 0x89, 0xc7,
				       0x26, 0x8a,	   0x05,       0xe2, 0xf5, 0xf4};

struct event {
	char kind;
	uintptr_t addr;
	size_t len;
};

static struct event ev[MAXEV];
static int nev;
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_event(char kind, uintptr_t addr, size_t len)
{
	pthread_mutex_lock(&ev_lock);
	if (nev < MAXEV)
		ev[nev++] = (struct event){kind, addr, len};
	pthread_mutex_unlock(&ev_lock);
}

static void on_maintenance(int op, const void *guest, size_t len)
{
	if (op == 2)
		log_event(EV_FLUSH, (uintptr_t)guest, len);
}

struct handler {
	int uffd, stop;
	struct kvmnc *h;
	unsigned char *src, *dst;
	int err, flush_err, stopped;
};

/*
 * A handler that leaves before it is told to would strand the vCPU in its
 * fault for ever (KVM_RUN does not return): hand the range back to the
 * kernel, which wakes the fault and fills the rest with zeroes, so the
 * guest halts and the checks after it fail instead of the test hanging.
 */
static void *handler_quit(struct handler *hd, int err)
{
	struct uffdio_range all = {.start = (uintptr_t)hd->dst, .len = MEM};

	hd->err = err;
	ioctl(hd->uffd, UFFDIO_UNREGISTER, &all);
	return NULL;
}

static void *handler_main(void *arg)
{
	static unsigned char page[4096] __attribute__((aligned(4096)));
	struct handler *hd = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = hd->uffd, .events = POLLIN},
				      {.fd = hd->stop, .events = POLLIN}};
		struct uffd_msg m;
		uintptr_t a;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return handler_quit(hd, -errno);
		}
		if (p[1].revents) {
			hd->stopped = 1;
			return NULL;
		}
		if (read(hd->uffd, &m, sizeof(m)) != sizeof(m) || m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		a = (uintptr_t)m.arg.pagefault.address & ~(uintptr_t)4095;
		memcpy(page, hd->src + (a - (uintptr_t)hd->dst), 4096);

		struct uffdio_copy c = {.dst = a,
					.src = (uintptr_t)page,
					.len = 4096,
					.mode = UFFDIO_COPY_MODE_DONTWAKE};
		struct uffdio_range w = {.start = a, .len = 4096};

		if (ioctl(hd->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
			return handler_quit(hd, -errno);
		log_event(EV_COPY, a, 4096);
		if (kvmnc_flush(hd->h, (void *)a, 4096) < 0)
			hd->flush_err++;
		if (ioctl(hd->uffd, UFFDIO_WAKE, &w) < 0)
			return handler_quit(hd, -errno);
		log_event(EV_WAKE, a, 4096);
	}
}

/* A userfaultfd that also takes the kernel's faults (KVM's), or -1 and why not in @why. */
static int uffd_open(char *why, size_t len)
{
	char knob[8] = "?";
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), e = errno;
	struct uffdio_api api = {.api = UFFD_API};
	FILE *f;

	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0)
		return fd;
	if (fd >= 0) {
		e = errno;
		close(fd);
	}
	f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "re");
	if (f) {
		if (!fgets(knob, sizeof(knob), f))
			strcpy(knob, "?");
		knob[strcspn(knob, "\n")] = '\0';
		fclose(f);
	}
	if (e == EPERM)
		snprintf(why, len,
			 "userfaultfd for kernel faults: %s (vm.unprivileged_userfaultfd=%s, uid "
			 "%d; "
			 "needs CAP_SYS_PTRACE when it is 0)",
			 strerror(e), knob, (int)getuid());
	else
		snprintf(why, len,
			 "userfaultfd: %s (not in this kernel, or not emulated: valgrind)",
			 strerror(e));
	return -1;
}

/* Every page: copied, then flushed whole, then woken, in that order, once each. */
static void check_order(unsigned char *dst)
{
	int state[PAGES] = {0}, flushed = 0, bad = 0;

	for (int i = 0; i < nev; i++) {
		size_t pg = (ev[i].addr - (uintptr_t)dst) / 4096;

		if (ev[i].addr < (uintptr_t)dst || pg >= PAGES) {
			bad++;
			continue;
		}
		if (ev[i].kind == EV_COPY)
			bad += state[pg] != 0, state[pg] = 1;
		else if (ev[i].kind == EV_FLUSH)
			bad += state[pg] != 1 || ev[i].len != 4096 ||
			       ev[i].addr != (uintptr_t)dst + pg * 4096,
				state[pg] = 2, flushed++;
		else
			bad += state[pg] != 2, state[pg] = 3;
	}
	for (size_t pg = 0; pg < PAGES; pg++)
		bad += state[pg] != 3;
	T_EQ(flushed, PAGES, "each page flushed (the non-coherent memslot's parts only)");
	T_EQ(bad, 0, "every page: UFFDIO_COPY (DONTWAKE), then kvmnc_flush, then UFFDIO_WAKE");
}

static void postcopy_order(int kvm)
{
	KVMNC_OPTS(kvmnc_handle_info, info);
	struct kvmnc_region_plan plan = KVMNC_OPTS_INIT(kvmnc_region_plan);
	struct handler hd = {.uffd = -1};
	unsigned char *src =
		mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *dst =
		mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = {.range = {(uintptr_t)dst, MEM},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	int vm = t_create_vm(kvm), stop[2], r;
	struct kvmnc_region nr = t_region(0, 0, MEM, dst, true);
	uint16_t n = PAGES;
	pthread_t t;

	char why[256];

	hd.uffd = uffd_open(why, sizeof(why));
	if (hd.uffd < 0) {
		/* The example's pre-copy still runs; its post-copy skips the same way. */
		printf("ok %d - post-copy order # SKIP %s\n", ++t_num, why);
		fprintf(stderr, "SKIP: %s\n", why);
		close(vm);
		munmap(src, MEM);
		munmap(dst, MEM);
		return;
	}
	/* The source image: the reader, a table naming every page, a pattern. */
	for (size_t i = 0; i < MEM; i++)
		src[i] = (unsigned char)(i * 13 + (i >> 12));
	memcpy(src + CODE, reader, sizeof(reader));
	memcpy(src + TABLE, &n, 2);
	for (uint16_t pg = 0; pg < PAGES; pg++) {
		uint16_t seg = (uint16_t)(pg * 256), off = (uint16_t)(pg * 3 % 4000);
		unsigned char *e = src + TABLE + 2 + 4 * pg;

		memcpy(e, &seg, 2);
		memcpy(e + 2, &off, 2);
	}

	T_EQ(kvmnc_open(vm, NULL, &hd.h), 0, "open");
	kvmnc_get_info(hd.h, &info);
	if (info.region_mechanism == KVMNC_MECH_NONE) {
		printf("# no mechanism here: the library's view is set to the memslot flag's\n");
		kvmnc_handle_pretend_mechanism(hd.h, KVMNC_MECH_MEMSLOT_FLAG);
	}
	T_EQ(ioctl(hd.uffd, UFFDIO_REGISTER, &reg), 0,
	     "UFFDIO_REGISTER before KVM sees the memory");
	T_EQ(kvmnc_region_prepare(hd.h, &nr, &plan), 0, "plan the non-coherent memslot");
	r = t_raw_region(vm, &nr,
			 info.region_mechanism == KVMNC_MECH_NONE
				 ? plan.flags & ~KVMNC_MEM_NON_COHERENT_DMA
				 : plan.flags);
	T_EQ(r, 0, "the VMM's own memslot ioctl");
	T_EQ(kvmnc_region_complete(hd.h, 0, r), 0, "report KVM's answer");
	T_EQ(kvmnc_hva_is_noncoherent(hd.h, dst, MEM), 1, "the memslot is non-coherent");

	hd.src = src;
	hd.dst = dst;
	kvmnc_migration_trace = on_maintenance;
	/*
	 * The stop fd is the handler's before it starts: set after
	 * pthread_create, the handler could read the 0 of the initializer and
	 * poll stdin, which under meson (/dev/null) is always readable.
	 */
	if (pipe(stop)) {
		t_check(false, "stop pipe");
		return;
	}
	hd.stop = stop[0];
	if (pthread_create(&t, NULL, handler_main, &hd)) {
		t_check(false, "fault handler");
		return;
	}
	T_EQ(t_run_guest(kvm, vm, CODE), KVM_EXIT_HLT, "the guest reads every page and halts");
	T_EQ(write(stop[1], "x", 1), 1, "stop the handler");
	pthread_join(t, NULL);
	kvmnc_migration_trace = NULL;
	T_EQ(hd.stopped, 1, "the handler served faults until it was told to stop");
	T_EQ(hd.err, 0, "every UFFDIO_COPY and UFFDIO_WAKE succeeded");
	T_EQ(hd.flush_err, 0, "kvmnc_flush on each placed page");
	check_order(dst);
	T_EQ(memcmp(src, dst, MEM), 0, "the destination holds the source's memory");

	close(stop[0]);
	close(stop[1]);
	T_EQ(kvmnc_close(hd.h), 0, "close");
	close(hd.uffd);
	close(vm);
	munmap(src, MEM);
	munmap(dst, MEM);
}

/* examples/migration-loop on this host: pre-copy and post-copy, verified. */
static void example(const char *path)
{
	char cmd[4096], out[8192];
	size_t n = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' 2>&1", path);
	p = popen(cmd, "r");
	if (!p) {
		t_check(false, "run %s", path);
		return;
	}
	while (n < sizeof(out) - 1 && fgets(out + n, (int)(sizeof(out) - n), p)) {
		printf("# %s", out + n);
		n += strlen(out + n);
	}
	st = pclose(p);
	T_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, "migration-loop exits 0");
	t_check(strstr(out, "pre-copy: ") && strstr(out, "destination verified"),
		"migration-loop: pre-copy verified");
	t_check(strstr(out, "post-copy: skipped") ||
			(strstr(out, "pages placed") &&
			 strstr(strstr(out, "pages placed"), "verified")),
		"migration-loop: post-copy verified, or skipped with the reason");
}

int main(int argc, char **argv)
{
	int kvm = t_kvm_fd();

	postcopy_order(kvm);
	if (argc > 1)
		example(argv[1]);
	close(kvm);
	return t_done();
}
