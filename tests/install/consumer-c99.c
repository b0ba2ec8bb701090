// SPDX-License-Identifier: LGPL-2.1-or-later
/* The public header from strict C99 (-std=c99 -pedantic -Werror): zeroed option structs. */
#include <kvmnc.h>
#include <stdio.h>

int main(void)
{
	/* No initializer at all: 1.0's macro needed a dummy field to avoid a warning. */
	KVMNC_OPTS(kvmnc_features, f);
	KVMNC_OPTS(kvmnc_open_opts, o, .scope = KVMNC_SCOPE_VM, .flags = KVMNC_OPEN_DEVICES);
	struct kvmnc_region_plan p = KVMNC_OPTS_INIT(kvmnc_region_plan);
	int r = kvmnc_probe("/nonexistent/kvm", &f);

	printf("libkvmnc %s from C99: probe of a missing node: %s\n", kvmnc_version(),
	       kvmnc_strerror(r));
	return r == -2 && f.sz == sizeof(f) && f.recommended == 0 && o.sz == sizeof(o) &&
			       o.scope == KVMNC_SCOPE_VM && o.kvm_fd == 0 && p.sz == sizeof(p) &&
			       p.flags == 0
		       ? 0
		       : 1;
}
