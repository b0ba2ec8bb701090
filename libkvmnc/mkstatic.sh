#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# mkstatic.sh OUT.a IN.a LD OBJCOPY AR
#
# The installed static archive: every object of IN.a linked into one
# relocatable object whose hidden symbols are then made local, so that a
# static link sees the public API and nothing else (the shared library gets
# the same from the version script).
set -eu
out=$1 in=$2 ld=$3 objcopy=$4 ar=$5
tmp=$(dirname "$out")/libkvmnc.o
rm -f "$out" "$tmp"
"$ld" -r --whole-archive "$in" -o "$tmp"
"$objcopy" --localize-hidden "$tmp"
"$ar" rcs "$out" "$tmp"
rm -f "$tmp"
