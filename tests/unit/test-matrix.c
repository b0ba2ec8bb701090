// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The support matrix the docs are generated from (docs/support-matrix.tsv):
 * every row that names a fake-kernel personality is what the library must
 * answer on that kernel. A row the library contradicts fails here, so the
 * README and the mechanism pages cannot promise what the probe does not do.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake-kernel.h"
#include "internal.h"

#define NCOLS 10

enum { C_PERS, C_QUERY, C_KERNEL, C_NATIVE, C_FLAG, C_DEVICE, C_QUIRK, C_REC, C_CHECKED };

static const char *matrix_path;

static const struct {
	const char *name;
	int value;
} errnos[] = {
	{"EPERM", EPERM},   {"EACCES", EACCES},		{"EINVAL", EINVAL},
	{"ENOENT", ENOENT}, {"EPROTO", EPROTO},		{"EMFILE", EMFILE},
	{"ENOMEM", ENOMEM}, {"EOPNOTSUPP", EOPNOTSUPP}, {"ENODATA", ENODATA},
};

static int errno_value(const char *name, const char *where)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (!strcmp(errnos[i].name, name))
			return errnos[i].value;
	fail_msg("%s: unknown errno %s", where, name);
	return 0;
}

static int mechanism_value(const char *name, const char *where)
{
	if (!strcmp(name, "none"))
		return KVMNC_MECH_NONE;
	for (int m = KVMNC_MECH_NATIVE; m <= KVMNC_MECH_GUEST_PAT_QUIRK; m++)
		if (!strcmp(kvmnc_mechanism_name(m), name))
			return m;
	fail_msg("%s: unknown mechanism %s", where, name);
	return -1;
}

/* Splits @line at tabs in place; the number of cells. */
static int split(char *line, char **cells, int max)
{
	int n = 0;

	line[strcspn(line, "\n")] = '\0';
	for (char *c = line; n < max;) {
		cells[n++] = c;
		c = strchr(c, '\t');
		if (!c)
			break;
		*c++ = '\0';
	}
	return n;
}

/* "yes" / "no" / "unknown(ERRNO)", optionally ": keyword", against one answer. */
static void check_answer(const char *cell, const struct kvmnc_mech_status *st, const char *mech,
			 const char *where)
{
	char answer[64], errname[32];
	const char *keyword = strstr(cell, ": ");
	size_t len = keyword ? (size_t)(keyword - cell) : strlen(cell);
	int want = 0;

	if (len >= sizeof(answer))
		fail_msg("%s: %s: answer '%s' too long", where, mech, cell);
	memcpy(answer, cell, len);
	answer[len] = '\0';
	if (!strcmp(answer, "yes"))
		want = 1;
	else if (!strcmp(answer, "no"))
		want = 0;
	else if (sscanf(answer, "unknown(%31[A-Z])", errname) == 1)
		want = -errno_value(errname, where);
	else
		fail_msg("%s: %s: answer '%s' is not yes, no or unknown(ERRNO)", where, mech, cell);
	if (st->supported != want)
		fail_msg("%s: %s is %d (\"%s\"), the table says %s", where, mech, st->supported,
			 st->reason, cell);
	if (keyword && !strstr(st->reason, keyword + 2))
		fail_msg("%s: %s reason \"%s\" lacks \"%s\"", where, mech, st->reason, keyword + 2);
}

/* The answer the row is about: the probe's, or a handle's on a VM of type N. */
static int query(const char *q, struct kvmnc_features *f, const char *where)
{
	struct kvmnc *h = NULL;
	unsigned long type;
	int vm, r;

	if (!strcmp(q, "probe"))
		return kvmnc_probe(NULL, f);
	if (sscanf(q, "vm:%lu", &type) != 1)
		fail_msg("%s: query '%s' is not probe or vm:N", where, q);
	vm = type ? fake_create_vm_type(type) : fake_create_vm();
	assert_true(vm >= 0);
	r = kvmnc_open(vm, NULL, &h);
	if (r == 0) {
		assert_int_equal(kvmnc_get_features(h, f), 0);
		assert_int_equal(kvmnc_close(h), 0);
	}
	fake_close(vm);
	return r;
}

static void check_row(char **c, const char *where)
{
	const struct fake_personality *p = fake_personality(c[C_PERS]);
	KVMNC_OPTS(kvmnc_features, f, .recommended = -1);
	char errname[32];
	int r;

	if (!p)
		fail_msg("%s: no fake-kernel personality '%s'", where, c[C_PERS]);
	if (!strstr(c[C_CHECKED], "unit"))
		fail_msg("%s: a row with a personality must be checked by unit", where);
	fake_reset(p);
	r = query(c[C_QUERY], &f, where);
	if (sscanf(c[C_REC], "error(%31[A-Z])", errname) == 1) {
		if (r != -errno_value(errname, where))
			fail_msg("%s: %s returned %d, the table says -%s", where, c[C_QUERY], r,
				 errname);
	} else {
		if (r != 0)
			fail_msg("%s: %s returned %d (%s)", where, c[C_QUERY], r,
				 kvmnc_strerror(r));
		check_answer(c[C_NATIVE], &f.native, "native", where);
		check_answer(c[C_FLAG], &f.memslot_flag, "memslot_flag", where);
		check_answer(c[C_DEVICE], &f.virtio_device, "virtio_device", where);
		check_answer(c[C_QUIRK], &f.guest_pat_quirk, "guest_pat_quirk", where);
		if (f.recommended != mechanism_value(c[C_REC], where))
			fail_msg("%s: recommended %s, the table says %s", where,
				 kvmnc_mechanism_name(f.recommended), c[C_REC]);
	}
	/* Nothing the probe or the handle opened is left behind. */
	assert_int_equal(fake_open_fds(), 0);
	assert_int_equal(fake_open_maps(), 0);
}

static void test_matrix(void **state)
{
	char line[1024], where[256], *c[NCOLS + 1];
	int lineno = 0, rows = 0, header = 0;
	FILE *f;

	(void)state;
	f = fopen(matrix_path, "re");
	if (!f)
		fail_msg("%s: %s", matrix_path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		snprintf(where, sizeof(where), "%s:%d", matrix_path, lineno);
		if (split(line, c, NCOLS + 1) != NCOLS)
			fail_msg("%s: want %d tab-separated columns", where, NCOLS);
		if (!header++) {
			if (strcmp(c[C_PERS], "personality"))
				fail_msg("%s: the first row is the header", where);
			continue;
		}
		if (!strcmp(c[C_PERS], "-"))
			continue; /* the kernel tier's alone */
		print_message("%s: %s, %s\n", where, c[C_PERS], c[C_QUERY]);
		check_row(c, where);
		rows++;
	}
	fclose(f);
	print_message("%d rows of the support matrix match the library\n", rows);
	assert_true(rows > 0);
}

static int teardown(void **state)
{
	(void)state;
	fake_uninstall();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_matrix, teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s docs/support-matrix.tsv\n", argv[0]);
		return 2;
	}
	matrix_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
