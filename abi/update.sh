#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regenerate abi/libkvmnc.abi from a build (default ./build). Only together
# with a new LIBKVMNC_x.y node in libkvmnc/libkvmnc.map: see README "ABI".
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
abidw --headers-dir "$top/include" --no-corpus-path --no-show-locs \
	"$(readlink -f "$build/libkvmnc/libkvmnc.so")" > "$top/abi/libkvmnc.abi"
echo "wrote $top/abi/libkvmnc.abi"
