// SPDX-License-Identifier: LGPL-2.1-or-later
// The public header from C++ (built as C++11 and C++17), against the library.
#include <kvmnc.h>

#include <cstdio>

int main()
{
	// No designated initializers before C++20: value-initialized, then sized.
	kvmnc_features f = KVMNC_OPTS_INIT(kvmnc_features);
	kvmnc_open_opts o = KVMNC_OPTS_INIT(kvmnc_open_opts);
	kvmnc_region_plan p = KVMNC_OPTS_INIT(kvmnc_region_plan);
	o.scope = KVMNC_SCOPE_VM;
	int r = kvmnc_probe("/nonexistent/kvm", &f);
	std::printf("libkvmnc %s from C++ (%ld): probe of a missing node: %s\n", kvmnc_version(),
		    static_cast<long>(__cplusplus), kvmnc_strerror(r));
	bool ok = r == -2 && f.sz == sizeof(f) && f.recommended == 0 && o.sz == sizeof(o) &&
		  o.flags == 0 && o.dev_path == nullptr && p.sz == sizeof(p) && p.flags == 0;
	return ok && kvmnc_version_major() == KVMNC_VERSION_MAJOR ? 0 : 1;
}
