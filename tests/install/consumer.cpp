// SPDX-License-Identifier: LGPL-2.1-or-later
// The public header from C++, against the installed library (CI).
#include <kvmnc.h>

#include <cstdio>

int main()
{
	kvmnc_features f{};
	f.sz = sizeof(f);
	int r = kvmnc_probe("/nonexistent/kvm", &f);
	std::printf("libkvmnc %s from C++: probe of a missing node: %s\n", kvmnc_version(),
		    kvmnc_strerror(r));
	return r == -2 && kvmnc_version_major() == KVMNC_VERSION_MAJOR ? 0 : 1;
}
