#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds kvmnc-vmm-example statically (libkvmnc.a and glibc's static
# libraries) and copies it to OUTPUT, for Meson: cargo names its output
# after the target triple and, before 1.79, has no stable way to put it
# elsewhere.
#   build-static.sh CARGO MANIFEST OUTPUT LIBDIR TARGET_DIR
set -eu
cargo=$1 manifest=$2 output=$3 libdir=$4 target_dir=$5
host=$("$cargo" -vV | sed -n 's/^host: //p')
# --target keeps the build scripts dynamic; only the example is static.
KVMNC_LIB_DIR=$libdir KVMNC_STATIC=1 CARGO_TARGET_DIR=$target_dir \
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
	"$cargo" build --quiet --offline --locked --release --manifest-path "$manifest" \
	-p kvmnc-vmm-example --target "$host"
cp "$target_dir/$host/release/kvmnc-vmm-example" "$output"
