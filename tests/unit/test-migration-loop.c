// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * examples/migration-loop.c against the fake kernel, where the blob is a
 * non-coherent memslot (the memslot flag of patched-6.12): the example's
 * own KVM calls (the VM, the vCPU, KVM_GET_DIRTY_LOG) are played here, the
 * library's go to the fake, and userfaultfd is the real one. The vCPU is an
 * interpreter of the example's two real-mode programs that reaches guest
 * memory only through system calls, so that a post-copy page it touches
 * faults inside the kernel, as KVM's accesses do, and the example's handler
 * resolves it.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"

int migration_loop_main(void);

#define MIGRATION_LOOP_FAKE
#define main migration_loop_main
#include "../../examples/migration-loop.c"
#undef main

static uint64_t fake_dirty[NSLOTS][BM_WORDS];
static int pipefd[2] = {-1, -1};

static int kvm_node(void)
{
	return fake_open_system_fd();
}

static int vm_create(int kvm)
{
	(void)kvm;
	return fake_create_vm();
}

/* @n bytes of guest memory at @gpa, read by the kernel (a fault there goes to userfaultfd). */
static int guest_read(struct vm *vm, uint64_t gpa, void *buf, size_t n)
{
	const unsigned char *p = gpa_to_hva(vm, gpa, NULL);

	if (!p || write(pipefd[1], p, n) != (ssize_t)n || read(pipefd[0], buf, n) != (ssize_t)n)
		return -EFAULT;
	return 0;
}

static int vcpu_run(int kvm, struct vm *vm, uint64_t rip)
{
	unsigned char code[sizeof(prog_b)];
	uint16_t table, count;

	(void)kvm;
	if (guest_read(vm, rip, code, sizeof(code)) || code[0] != 0xbe)
		return -EIO;
	table = (uint16_t)(code[1] | code[2] << 8);
	if (guest_read(vm, table, &count, 2))
		return -EIO;
	for (uint16_t k = 0; k < count; k++) {
		unsigned char e[5];
		uint16_t seg, off;
		uint64_t gpa;
		int slot;

		if (guest_read(vm, table + 2u + 5u * k, e, 5))
			return -EIO;
		memcpy(&seg, e, 2);
		memcpy(&off, e + 2, 2);
		gpa = (uint64_t)seg * 16 + off;
		if (!gpa_to_hva(vm, gpa, &slot))
			return -EIO;
		if (code[13] == 0xaa) { /* program A: stosb */
			uint64_t pg = (gpa - vm->slots[slot].gpa) / PAGE;

			*gpa_to_hva(vm, gpa, NULL) = e[4];
			fake_dirty[slot][pg / 64] |= 1ULL << (pg % 64);
		} else if (guest_read(vm, gpa, e, 1)) { /* program B: a load */
			return -EIO;
		}
	}
	return 0;
}

static int dirty_log(struct vm *vm, const struct slot *s, uint64_t *bm)
{
	(void)vm;
	memcpy(bm, fake_dirty[s->id], sizeof(fake_dirty[s->id]));
	memset(fake_dirty[s->id], 0, sizeof(fake_dirty[s->id]));
	return 0;
}

static int traced[3];

static void trace(int op, const void *guest, size_t len)
{
	(void)guest;
	(void)len;
	traced[op]++;
}

/* Runs the example with its stdout in a file; returns its exit status, *out the text. */
static int run_example(char *out, size_t len)
{
	FILE *f = tmpfile();
	int saved = dup(STDOUT_FILENO), r;
	size_t n;

	assert_non_null(f);
	fflush(stdout);
	dup2(fileno(f), STDOUT_FILENO);
	r = migration_loop_main();
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(f);
	n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
	printf("%s", out);
	return r;
}

/* The example on a fresh fake kernel of @personality, with the maintenance trace. */
static int example_on(const char *personality, char *out, size_t len)
{
	int r;

	fake_reset(fake_personality(personality));
	assert_int_equal(pipe(pipefd), 0);
	memset(fake_dirty, 0, sizeof(fake_dirty));
	memset(traced, 0, sizeof(traced));
	kvmnc_migration_trace = trace;
	r = run_example(out, len);
	kvmnc_migration_trace = NULL;
	close(pipefd[0]);
	close(pipefd[1]);
	return r;
}

static void test_example_on_fake(void **state)
{
	static char out[8192];

	(void)state;
	assert_int_equal(example_on("patched-6.12", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "blob (slot 1): non-coherent\n"));
	assert_non_null(strstr(out, "pre-copy: 1 non-coherent range(s)"));
	assert_non_null(strstr(out, "policy: coherent helpers"));
	assert_non_null(strstr(out, "destination verified\n"));
	/* Every blob page through both helpers, the device's writes sent again at the end. */
	assert_true(traced[0] >= 2 * 64);
	assert_true(traced[1] >= 2 * 64);
	assert_int_equal(traced[0], traced[1] + (strstr(out, "post-copy: 256 pages") ? 64 : 0));
	if (strstr(out, "post-copy: skipped")) {
		print_message("post-copy not run here: %s", strstr(out, "post-copy: skipped"));
		return;
	}
	assert_non_null(strstr(out, "post-copy: 256 pages placed"));
	/* Each blob page flushed once between its UFFDIO_COPY and its UFFDIO_WAKE. */
	assert_int_equal(traced[2], 64);
}

/* The same program where nothing is non-coherent: memcpy for every page. */
static void test_example_plain(void **state)
{
	static char out[8192];

	(void)state;
	assert_int_equal(example_on("stable-6.12-intel", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "blob (slot 1): plain"));
	assert_non_null(strstr(out, "0 pages with the coherent helpers"));
	assert_int_equal(traced[0] + traced[1] + traced[2], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_example_on_fake, teardown_fake),
		cmocka_unit_test_teardown(test_example_plain, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
