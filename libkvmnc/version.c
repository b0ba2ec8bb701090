// SPDX-License-Identifier: LGPL-2.1-or-later
/* The library's version at run time. */
#include "internal.h"

#define STR_(x) #x
#define STR(x)	STR_(x)

KVMNC_API const char *kvmnc_version(void)
{
	return STR(KVMNC_VERSION_MAJOR) "." STR(KVMNC_VERSION_MINOR) "." STR(KVMNC_VERSION_PATCH);
}

KVMNC_API unsigned int kvmnc_version_major(void)
{
	return KVMNC_VERSION_MAJOR;
}

KVMNC_API unsigned int kvmnc_version_minor(void)
{
	return KVMNC_VERSION_MINOR;
}

KVMNC_API unsigned int kvmnc_version_patch(void)
{
	return KVMNC_VERSION_PATCH;
}
