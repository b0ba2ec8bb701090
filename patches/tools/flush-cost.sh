#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# flush-cost.sh SELFTEST [ARGS...]
#
# Measures, in the kernel, how long KVM's cache flushes for
# KVM_MEM_NON_COHERENT_DMA memory take: runs SELFTEST (normally
# noncoherent_dma_test) with the function_graph tracer timing
# clflush_cache_range() and the kvm_mmu_flush_noncoherent_dma event naming
# the size and the kind (installed/zapped) of each flush, then prints, per
# size and kind, the number of flushes and the minimum, median and maximum
# duration in microseconds.  Needs CONFIG_FUNCTION_GRAPH_TRACER and root;
# busybox sh and awk suffice.
T=/sys/kernel/tracing
[ -d "$T/events/kvmmmu" ] || { echo "flush-cost: no kvmmmu events in $T" >&2; exit 2; }
grep -qw function_graph "$T/available_tracers" ||
	{ echo "flush-cost: function_graph tracer unavailable (CONFIG_FUNCTION_GRAPH_TRACER)" >&2; exit 77; }
echo 0 >"$T/tracing_on"
echo nop >"$T/current_tracer"
echo >"$T/trace"
echo 8192 >"$T/buffer_size_kb"
echo clflush_cache_range >"$T/set_graph_function"
echo 1 >"$T/max_graph_depth"
echo function_graph >"$T/current_tracer"
echo 1 >"$T/events/kvmmmu/kvm_mmu_flush_noncoherent_dma/enable"
echo 1 >"$T/tracing_on"
"$@" >/dev/null 2>&1
rc=$?
echo 0 >"$T/tracing_on"
echo 0 >"$T/events/kvmmmu/kvm_mmu_flush_noncoherent_dma/enable"
echo "flush-cost: $* exited $rc"
# An event line names size and kind; the next clflush_cache_range() line on
# the same CPU carries its duration ("12.345 us |").
awk '
/kvm_mmu_flush_noncoherent_dma:/ {
	cpu = $1; sub(/\).*/, "", cpu)
	for (i = 1; i <= NF; i++) if ($i == "size") size = $(i + 1)
	kind[cpu] = size " " (index($0, "zapped") ? "zapped" : "installed")
	next
}
/clflush_cache_range\(\);/ {
	cpu = $1; sub(/\).*/, "", cpu)
	if (!(cpu in kind)) next
	for (i = 1; i <= NF; i++) if ($i == "us") { d = $(i - 1); break }
	gsub(/[^0-9.]/, "", d)
	k = kind[cpu]; delete kind[cpu]
	n[k]++; v[k, n[k]] = d + 0
}
END {
	for (k in n) {
		# insertion sort: a few hundred values at most
		for (i = 2; i <= n[k]; i++) {
			x = v[k, i]; j = i - 1
			while (j >= 1 && v[k, j] > x) { v[k, j + 1] = v[k, j]; j-- }
			v[k, j + 1] = x
		}
		split(k, a, " ")
		printf "flush-cost: size 0x%s %s: n=%d min=%.1f median=%.1f max=%.1f us\n",
			a[1], a[2], n[k], v[k, 1], v[k, int((n[k] + 1) / 2)], v[k, n[k]]
	}
}' "$T/trace"
echo nop >"$T/current_tracer"
echo >"$T/set_graph_function"
echo 0 >"$T/max_graph_depth"
exit $rc
