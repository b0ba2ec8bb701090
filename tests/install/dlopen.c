// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The shared library loads with dlopen() (a plugin VMM, a language binding):
 * no static TLS it could not get, every 1.1 and 1.2 symbol at its version.
 *
 *   dlopen PATH-TO-libkvmnc.so
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	static const char *const syms[] = {
		"kvmnc_region_prepare",	    "kvmnc_region_complete",	"kvmnc_region_removed",
		"kvmnc_hva_is_noncoherent", "kvmnc_gpa_is_noncoherent", "kvmnc_snapshot_take",
		"kvmnc_snapshot_stale",	    "kvmnc_snapshot_free",	"kvmnc_migration_advise",
	};
	static const char *const syms12[] = {
		"kvmnc_vm_wide_arm",   "kvmnc_vm_wide_disarm", "kvmnc_region_abort",
		"kvmnc_region_resync", "kvmnc_snapshot_range", "kvmnc_set_handle_log",
		"kvmnc_reason_name",
	};
	const char *(*version)(void);
	void *lib;

	if (argc != 2)
		return 2;
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	*(void **)&version = dlvsym(lib, "kvmnc_version", "LIBKVMNC_1.0");
	if (!version || strcmp(version(), "1.2.0") < 0) {
		fprintf(stderr, "kvmnc_version@LIBKVMNC_1.0 missing or old\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		if (!dlvsym(lib, syms[i], "LIBKVMNC_1.1")) {
			fprintf(stderr, "%s@LIBKVMNC_1.1 missing\n", syms[i]);
			return 1;
		}
	}
	for (size_t i = 0; i < sizeof(syms12) / sizeof(syms12[0]); i++) {
		if (!dlvsym(lib, syms12[i], "LIBKVMNC_1.2")) {
			fprintf(stderr, "%s@LIBKVMNC_1.2 missing\n", syms12[i]);
			return 1;
		}
	}
	printf("dlopen(%s): libkvmnc %s\n", argv[1], version());
	return dlclose(lib) == 0 ? 0 : 1;
}
