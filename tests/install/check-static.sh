#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# check-static.sh ARCHIVE MAP [NM]
#
# A static link against ARCHIVE must see the public API and nothing else:
# the global symbols it defines are exactly the names in the version script
# MAP. (1.0's archive also exported kvmnc_sys, kvmnc_grow and the other
# internals.) Prints TAP.
set -eu
archive=$1 map=$2 nm=${3:-nm}
want=$(sed -n 's/^[[:space:]]*\(kvmnc_[a-z0-9_]*\);/\1/p' "$map" | sort)
got=$("$nm" -g --defined-only "$archive" | awk 'NF == 3 { print $3 }' | sort)
if [ "$got" = "$want" ]; then
	echo "ok 1 - $(echo "$got" | wc -l) global symbols, all in the version script"
	echo "1..1"
	exit 0
fi
echo "not ok 1 - the archive's global symbols differ from the version script"
diff <(echo "$want") <(echo "$got") | sed 's/^/# /' || true
echo "1..1"
exit 1
