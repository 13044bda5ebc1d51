#!/bin/bash
# make bench: the vss benchmarks, in one test VM.
#
#   scripts/bench.sh [--kernel 6.1|6.12] [--quick] [--only PHASES] [--report-only]
#
# Boots one VM (scripts/vm-run) with two scratch disks, runs
# scripts/bench-guest.sh there (every measurement in that one boot, so each
# ratio compares figures taken together), keeps the results in
# results/bench/<kernel>.json (fio's own JSON under <kernel>.json.d/), then
# prints the table and a PASS/MISS line per target and draws
# Documentation/performance.png. See Documentation/performance.rst.
#
#   --kernel K      guest kernel series (default: $VSS_KERNEL, else 6.12)
#   --quick         a short pass (64 MiB region, one repetition) to try things
#   --only PHASES   only these phases (quoted, space-separated, from: precond
#                   matrix chunks sparse seq read hold mem cbt pairs writers
#                   pgbench samevol), e.g. --only
#                   "precond read" while working on image reads; results go
#                   to results/bench/<kernel>-only-<phases>.*, never to the
#                   documented plot
#   --report-only   no VM: table and plot from the existing results
#   --no-plot       do not draw Documentation/performance.png
#
# Environment: VSS_BENCH_* variables go to the guest (see bench-guest.sh);
# VSS_BENCH_TMPDIR is where the scratch disks live (default: a folder in
# /dev/shm when it has room, so the host's disk plays no part).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
series=${VSS_KERNEL:-6.12}
report_only=
plot=1
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) series=${2:?--kernel needs 6.1 or 6.12}; shift 2 ;;
	--kernel=*) series=${1#*=}; shift ;;
	--quick) export VSS_BENCH_QUICK=1; shift ;;
	--only) export VSS_BENCH_ONLY=${2:?--only needs a list of phases}; shift 2 ;;
	--only=*) export VSS_BENCH_ONLY=${1#*=}; shift ;;
	--report-only) report_only=1; shift ;;
	--no-plot) plot=; shift ;;
	-h|--help) sed -n '2,25s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "bench: unknown option '$1'" >&2; exit 2 ;;
	esac
done
case $series in 6.1|6.12) ;; *) echo "bench: --kernel takes 6.1 or 6.12" >&2; exit 2 ;; esac

outdir=$repo/results/bench
# A partial run keeps its own files: the full run's stay as they were.
name=$series
if [ -n "${VSS_BENCH_ONLY:-}" ]; then
	for phase in $VSS_BENCH_ONLY; do
		case $phase in
		precond|matrix|chunks|sparse|seq|read|hold|mem|cbt|pairs|writers|pgbench|samevol) ;;
		*) echo "bench: unknown phase '$phase' (precond matrix chunks sparse seq read hold mem cbt pairs writers pgbench samevol)" >&2; exit 2 ;;
		esac
	done
	name=$series-only-$(tr -s ' ' '-' <<<"$VSS_BENCH_ONLY" | sed 's/^-//; s/-$//')
fi
json=$outdir/$name.json
mkdir -p "$outdir"
py=/usr/bin/python3	# Debian's, which has matplotlib (python3 may be pyenv's)

if [ -z "$report_only" ]; then
	vssctl=${VSS_BENCH_VSSCTL:-$repo/build/bin/vssctl}
	[ -x "$vssctl" ] || { echo "bench: no $vssctl: build it first (make tools)" >&2; exit 1; }
	# The writers phase runs the test writer and requester.
	make -s -C "$repo/selftests" O="$repo/build" >/dev/null ||
		{ echo "bench: cannot build the selftests (make -C selftests)" >&2; exit 1; }
	for tool in fio lvcreate jq; do
		command -v "$tool" >/dev/null || {
			echo "bench: needs fio, lvm2 and jq (scripts/deps.sh installs them)" >&2; exit 1; }
	done

	# The disks: 1.75 GiB (origin LVs) and 5.5 GiB (vss storage and the
	# dm-snapshot exception stores), about 7.25 GiB written in all. In
	# /dev/shm they cost host memory but no host disk I/O, which would
	# otherwise add its own noise.
	need_kb=$((7 * 1024 * 1024 + 768 * 1024))
	if [ -n "${VSS_BENCH_TMPDIR:-}" ]; then
		tmpbase=$VSS_BENCH_TMPDIR
	elif [ "$(df --output=avail -k /dev/shm 2>/dev/null | tail -n1)" -gt "$need_kb" ] 2>/dev/null &&
		[ "$(awk '/MemAvailable/ {print $2}' /proc/meminfo)" -gt $((need_kb + 4 * 1024 * 1024)) ]; then
		tmpbase=/dev/shm
	else
		tmpbase=${TMPDIR:-/tmp}
	fi
	tmp=$(mktemp -d "$tmpbase/vss-bench.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT

	log=$outdir/$name.log
	echo "bench: kernel $series, scratch disks in $tmpbase, log in ${log#"$repo"/}"
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	t0=$(date +%s)
	rc=0
	TMPDIR=$tmp VSS_BENCH_VSSCTL=$vssctl scripts/vm-run --kernel "$series" \
		--disk 1792M --disk 5632M --timeout 9000 \
		--log "$outdir/$name.dmesg" \
		-- "$repo/scripts/bench-guest.sh" "$json" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
	t1=$(date +%s)
	load1=$(cut -d' ' -f1-3 /proc/loadavg)
	if [ "$rc" != 0 ] || [ ! -s "$json" ]; then
		echo "bench: the benchmark VM failed (status $rc); see ${log#"$repo"/}" >&2
		exit 1
	fi
	accel=$(sed -n 's/^vm-run: .*(\(kvm\|tcg\)).*/\1/p' "$log" | tail -n1)
	jq --arg accel "${accel:-unknown}" --arg series "$series" \
		--arg load0 "$load0" --arg load1 "$load1" --argjson wall $((t1 - t0)) \
		--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg host_cpus "$(nproc)" \
		--arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		--arg host_cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" \
		'.host = {series: $series, accel: $accel, date: $date, commit: $commit,
			  cpus: ($host_cpus | tonumber), cpu: $host_cpu, loadavg_before: $load0,
			  loadavg_after: $load1, wall_s: $wall}' "$json" >"$json.tmp"
	mv "$json.tmp" "$json"
fi

[ -s "$json" ] || { echo "bench: no results in $json" >&2; exit 1; }

# The documented plot is the default kernel's; another kernel's goes next
# to its results.
png=$outdir/$name.png
[ "$name" != 6.12 ] || png=$repo/Documentation/performance.png
"$py" - "$json" "${plot:+$png}" <<'PY'
import json, statistics, sys

path, png = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
doc = json.load(open(path))
recs = doc["records"]
env = next((r for r in recs if r["kind"] == "env"), {})
host = doc.get("host", {})
K = 1024

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fio(test, impl=None, snaps=None, chunk=None, phase=None):
    return [r for r in recs if r["kind"] == "fio" and r["test"] == test
            and (impl is None or r["impl"] == impl)
            and (snaps is None or r["snaps"] == snaps)
            and (chunk is None or r["chunk"] == chunk)
            and (phase is None or r["phase"] == phase)]

def val(test, impl, snaps, chunk, phase, key="iops"):
    return med([r[key] for r in fio(test, impl, snaps, chunk, phase)])

def ratio(a, b):
    return a / b if a is not None and b else None

def fmt(x, unit=""):
    if x is None:
        return "-"
    if x >= 10000:
        return f"{x / 1000:.1f}k{unit}"
    if x >= 100:
        return f"{x:.0f}{unit}"
    return f"{x:.2f}{unit}"

def pct(x):
    return "-" if x is None else f"{100 * x:.0f}%"

S = {}   # the summary, stored back into the JSON
base = val("randwrite", "none", 0, 0, "rewrite")
bases = [r["iops"] for r in fio("randwrite", "none")]
S["randwrite_none_iops"] = base
S["randwrite_none_runs"] = len(bases)
S["randwrite_none_min_max"] = [min(bases), max(bases)] if bases else None

out = []
p = out.append
p(f"vss benchmarks: kernel {env.get('kver', '?')} ({host.get('accel', '?')}), "
  f"{env.get('cpus', '?')} vCPUs, region {env.get('region', 0) >> 20} MiB, "
  f"{host.get('date', '')}")
if base:
    p(f"no snapshot, 4k random writes: {fmt(base)} IOPS "
      f"(median of {len(bases)} runs, {fmt(min(bases))}..{fmt(max(bases))})")

incomplete = [r["file"] for r in recs if r["kind"] == "fio" and not r["complete"]]

# Each random-write run also against the baseline run taken just before
# its configuration (the baselines follow the host's drift through the run).
last_base = None
for r in recs:
    if r["kind"] == "fio" and r["test"] == "randwrite":
        if r["impl"] == "none":
            last_base = r["iops"]
        elif last_base:
            r["adjacent_ratio"] = r["iops"] / last_base
chunks = sorted({r["chunk"] for r in fio("randwrite") if r["impl"] in ("vss", "dm")})
S["randwrite"] = {}
for c in sorted({r["chunk"] for r in fio("randwrite", "dm")} | {65536, 4096}, reverse=True):
    if not fio("randwrite", chunk=c):
        continue
    p("")
    p(f"4k random writes, iodepth 16, chunk {c // K}K: IOPS (vs no snapshot)")
    p(f"  {'':18}{'first writes':>20}{'rewrites':>20}")
    for impl in ("vss", "dm"):
        for n in (1, 4, 16):
            f = val("randwrite", impl, n, c, "first")
            w = val("randwrite", impl, n, c, "rewrite")
            if f is None and w is None:
                continue
            S["randwrite"][f"{impl}-{n}-{c}"] = {"first": f, "rewrite": w,
                "first_ratio": ratio(f, base), "rewrite_ratio": ratio(w, base),
                "first_adjacent_ratio": val("randwrite", impl, n, c, "first", "adjacent_ratio"),
                "rewrite_adjacent_ratio": val("randwrite", impl, n, c, "rewrite", "adjacent_ratio"),
                "first_runs": len(fio("randwrite", impl, n, c, "first")),
                "rewrite_runs": len(fio("randwrite", impl, n, c, "rewrite")),
                "first_p99_us": val("randwrite", impl, n, c, "first", "lat_p99_us")}
            name = f"{'vss' if impl == 'vss' else 'dm-snapshot'} {n} snap{'s' if n > 1 else ''}"
            p(f"  {name:18}{fmt(f):>12} ({pct(ratio(f, base)):>4}){fmt(w):>12} ({pct(ratio(w, base)):>4})")

sweep = sorted({r["chunk"] for r in fio("randwrite", "vss", 1)})
if sweep:
    p("")
    p("chunk size, vss 1 snapshot: 4k random writes (IOPS), 1M sequential first writes, exception table per chunk")
    S["chunks"] = {}
    for c in sweep:
        f = val("randwrite", "vss", 1, c, "first")
        w = val("randwrite", "vss", 1, c, "rewrite")
        # memory: rand-created -> rand-written of the first repetition
        mc = [r for r in recs if r["kind"] == "mem" and r.get("impl") == "vss"
              and r.get("snaps") == 1 and r.get("chunk") == c and r.get("rep") == 1]
        a = next((r for r in mc if r["label"] == "rand-created"), None)
        b = next((r for r in mc if r["label"] == "rand-written"), None)
        per = xa = None
        if a and b and b.get("chunks_copied"):
            per = (b["slab_kb"] - a["slab_kb"]) * K / b["chunks_copied"]
            xa = (b["radix_tree_node_bytes"] - a["radix_tree_node_bytes"]) / b["chunks_copied"]
        sq = val("seqwrite", "vss", 1, c, "first", "bw_bytes")
        S["chunks"][str(c)] = {"first": f, "rewrite": w, "slab_bytes_per_chunk": per,
                               "xarray_bytes_per_chunk": xa,
                               "first_p99_us": val("randwrite", "vss", 1, c, "first", "lat_p99_us"),
                               "seq_first_mib_s": sq and sq / 2**20,
                               "chunks_copied": b and b.get("chunks_copied")}
        p(f"  {c // K:>5}K  first {fmt(f):>6} ({pct(ratio(f, base)):>4})  rewrite {fmt(w):>6} "
          f"({pct(ratio(w, base)):>4})  seq 1M first {fmt(sq and sq / 2**20):>5} MiB/s  "
          f"xarray/chunk {('-' if xa is None else f'{xa:.0f} B'):>6} ({b and b.get('chunks_copied')} chunks)")
    best = max(sweep, key=lambda c: S["chunks"][str(c)]["first"] or 0)
    S["best_chunk_dense"] = best
    p(f"  best first-write IOPS when every chunk ends up copied: {best // K}K")

sp = [r for r in recs if r["kind"] == "fio" and r["test"] == "sparse"]
if sp:
    p("")
    p("sparse first writes: 4k random writes to 1/16 of the blocks of 1 GiB, 1 snapshot")
    S["sparse"] = {}
    for r in sp:
        key = f"{r['impl']}-{r['chunk']}"
        st = next((x for x in recs if x["kind"] in ("vss_state", "dm_state")
                   and x["what"] == f"sparse {r['chunk']}" and x["kind"].startswith(r["impl"])), None)
        used = None
        if st and st["kind"] == "vss_state":
            used = st["storage_used"]
        elif st:
            used = st["max_percent"] / 100 * st["cow_size"]
        amp = used / r["io_bytes"] if used and r["io_bytes"] else None
        S["sparse"][key] = {"iops": r["iops"], "p99_us": r["lat_p99_us"], "store_bytes": used,
                            "written_bytes": r["io_bytes"], "amplification": amp}
        name = "vss" if r["impl"] == "vss" else "dm-snapshot"
        p(f"  {name:12}{r['chunk'] // K:>5}K  {fmt(r['iops']):>6} IOPS ({pct(ratio(r['iops'], base)):>4})  "
          f"p99 {r['lat_p99_us'] / 1000:5.1f} ms  store {('-' if used is None else f'{used / 2**20:.0f} MiB'):>9} "
          f"for {r['io_bytes'] >> 20} MiB written ({'-' if amp is None else f'{amp:.1f}x'})")

seq = {}
for impl in ("none", "vss", "dm"):
    for phase in ("first", "rewrite"):
        v = val("seqwrite", impl, None, 0 if impl == "none" else 65536,
                phase if impl != "none" else "rewrite", "bw_bytes")
        if v is not None:
            seq[f"{impl}-{phase}"] = v / 2**20
if seq:
    S["seqwrite_mib_s"] = seq
    p("")
    p("sequential 1M writes, iodepth 4, 1 snapshot, chunk 64K: MiB/s")
    nb = seq.get("none-rewrite")
    p(f"  no snapshot {fmt(nb)}")
    for impl, name in (("vss", "vss"), ("dm", "dm-snapshot")):
        f, w = seq.get(f"{impl}-first"), seq.get(f"{impl}-rewrite")
        p(f"  {name:12} first writes {fmt(f):>6} ({pct(ratio(f, nb))}), rewrites {fmt(w):>6} ({pct(ratio(w, nb))})")

# Image reads: each image run against the origin run just before it
# ("paired"), and the medians of both sides.
READS = (("image", "read", "block store, half the chunks rewritten"),
         ("image-file", "read-file", "file store, half the chunks rewritten"),
         ("image-untouched", "untouched", "nothing rewritten"),
         ("image-dm", "read-dm", "dm-snapshot, half the chunks rewritten"))
last_origin, pairs = {}, {}
for r in recs:
    if r["kind"] != "fio" or r["test"] not in ("seqread", "randread"):
        continue
    if r["impl"] == "origin":
        last_origin[(r["test"], r["phase"])] = r["bw_bytes"]
    elif (r["test"], r["phase"]) in last_origin:
        pairs.setdefault((r["test"], r["impl"]), []).append(
            r["bw_bytes"] / last_origin[(r["test"], r["phase"])])
reads = {}
for t in ("seqread", "randread"):
    for what, phase, _ in READS:
        # Results from before the untouched image had origin runs of its
        # own compare with the origin runs of the half-rewritten image.
        ophase = phase if fio(t, "origin", phase=phase) else "read"
        o = val(t, "origin", None, None, ophase, "bw_bytes")
        i = val(t, what, None, None, phase, "bw_bytes")
        if o is None or i is None:
            continue
        reads[f"{t}-{what}"] = {"mib_s": i / 2**20, "iops": val(t, what, None, None, phase, "iops"),
                                "origin_mib_s": o / 2**20,
                                "origin_iops": val(t, "origin", None, None, ophase, "iops"),
                                "ratio": i / o, "paired_ratio": med(pairs.get((t, what), [])),
                                "paired_min_max": [min(pairs[(t, what)]), max(pairs[(t, what)])]
                                if pairs.get((t, what)) else None,
                                "runs": len(fio(t, what, phase=phase))}
sq64 = val("seqread64k", "origin", None, None, "read", "bw_bytes")
if sq64 is not None:
    S["seqread64k_origin_mib_s"] = sq64 / 2**20
if reads:
    S["reads"] = reads
    p("")
    p("image reads vs origin reads (medians; paired: each image run against the origin run before it)")
    for t, name in (("seqread", "sequential 1M, iodepth 4"), ("randread", "random 4k, iodepth 16")):
        for what, _, desc in READS:
            x = reads.get(f"{t}-{what}")
            if not x:
                continue
            pr = x["paired_min_max"]
            p(f"  {name:26} {desc:40} origin {fmt(x['origin_mib_s'])} MiB/s, image {fmt(x['mib_s'])} MiB/s "
              f"({pct(x['ratio'])}; paired {pct(x['paired_ratio'])}"
              + (f", {pct(pr[0])}..{pct(pr[1])}" if pr else "") + f"; {x['runs']} runs)")
    if sq64 is not None:
        p(f"  origin read as 64k requests, iodepth 64 (the I/O a 1M image read made before bridged reads): {fmt(sq64 / 2**20)} MiB/s")

# Side by side: two devices written at the same time by one fio, so that
# the host slows both alike; each run's figure is the ratio of the two.
def side_by_side(runs, name, dev_key, a_key, b_key):
    rs = sorted(r["ratio"] for r in runs)
    return {"name": name, "ratio": med(rs), "mean": statistics.mean(rs),
            "sem": statistics.stdev(rs) / len(rs) ** 0.5 if len(rs) > 1 else None,
            "min_max": [rs[0], rs[-1]], "runs": len(rs),
            "per_device": {d: med([r["ratio"] for r in runs if r[dev_key] == d])
                           for d in sorted({r[dev_key] for r in runs})},
            a_key: med([r[a_key] for r in runs]), b_key: med([r[b_key] for r in runs])}

def side_by_side_line(x, what, device):
    return (f"  {x['name']:32} {what} median {pct(x['ratio'])}, mean {100 * x['mean']:.1f}%"
            + (f" +- {100 * x['sem']:.1f}% (standard error)" if x["sem"] else "")
            + f", {pct(x['min_max'][0])}..{pct(x['min_max'][1])} over {x['runs']} runs; by {device} "
            + ", ".join(f"{d} {pct(v)}" for d, v in x["per_device"].items()))

# The side-by-side summaries of the records of @kind, by test.
def side_by_side_tests(kind, tests, dev_key, a_key, b_key):
    found = {}
    for test, name in tests:
        runs = [r for r in recs if r["kind"] == kind and r["test"] == test]
        if runs:
            found[test] = side_by_side(runs, name, dev_key, a_key, b_key)
    return found

# Changed-block tracking: a tracked and an untracked device.
cbt = side_by_side_tests("cbt", (("randwrite", "4k random writes, iodepth 16"),
                                 ("seqwrite", "1M sequential writes, iodepth 4")),
                         "tracked_dev", "tracked_iops", "untracked_iops")
if cbt:
    S["cbt"] = cbt
    p("")
    p("changed-block tracking, no snapshot: a tracked and an untracked device written side by side")
    for x in cbt.values():
        p(side_by_side_line(x, "tracked/untracked", "tracked device"))

# vss against no snapshot (rewrites) and against dm-snapshot (first writes).
PAIRS = (("rewrite-1", "rewrites, 1 snapshot, 64K", "vss/no snapshot"),
         ("rewrite-16", "rewrites, 16 snapshots, 64K", "vss/no snapshot"),
         ("first-4k", "first writes, 1 snapshot, 4K", "vss/dm-snapshot"))
paired = side_by_side_tests("pair", [(test, name) for test, name, _ in PAIRS],
                            "a_dev", "a_iops", "b_iops")
if paired:
    S["pairs"] = paired
    p("")
    p("vss written side by side with no snapshot or dm-snapshot, 4k random writes, iodepth 16")
    for test, _, what in PAIRS:
        if test in paired:
            p(side_by_side_line(paired[test], what, "device vss snapshots"))

hold = {}
for r in recs:
    if r["kind"] == "hold":
        hold.setdefault(f"{r['devices']}-{r['load']}-{r['mode']}", []).append(r["hold_us"])
if hold:
    S["hold_us"] = {k: {"median": med(v), "max": max(v), "runs": len(v)} for k, v in hold.items()}
    p("")
    p("hold time (writes held during the commit), microseconds: median (max) of runs")
    for k in sorted(hold, key=lambda k: (int(k.split('-')[0]), k)):
        nd, load, mode = k.split("-")
        desc = {"idle": "idle", "fio": "fio 4k writers"}[load] + ("" if mode == "single" else ", sets stacked")
        p(f"  {nd} device{'s' if nd != '1' else ''}, {desc:30} {med(hold[k]):>8.0f} ({max(hold[k])}) over {len(hold[k])}")

mem = {r["label"]: r for r in recs if r["kind"] == "mem" and r["label"].startswith("mem-")}
if {"mem-before", "mem-created", "mem-written"} <= set(mem):
    b, c, w = mem["mem-before"], mem["mem-created"], mem["mem-written"]
    n = c["snaps"]
    chunks_copied = w["chunks_copied"]
    def kern(m):
        return (m["slab_kb"] + m["percpu_kb"] + m["vmalloc_kb"] + m["kernel_stack_kb"]
                + m["page_tables_kb"])
    M = {
        "slab_kb_per_snapshot": (c["slab_kb"] - b["slab_kb"]) / n,
        "kernel_kb_per_snapshot": (kern(c) - kern(b)) / n,
        "memfree_kb_per_snapshot": (b["mem_free_kb"] - c["mem_free_kb"]) / n,
        "slab_bytes_per_chunk": (w["slab_kb"] - c["slab_kb"]) * K / chunks_copied,
        "memfree_bytes_per_chunk": (c["mem_free_kb"] - w["mem_free_kb"]) * K / chunks_copied,
        "xarray_bytes_per_chunk": (w["radix_tree_node_bytes"] - c["radix_tree_node_bytes"]) / chunks_copied,
        "chunks_copied": chunks_copied,
    }
    if "mem-idle" in mem:
        M["slab_kb_noise"] = mem["mem-idle"]["slab_kb"] - b["slab_kb"]
    if "mem-deleted" in mem:
        d = mem["mem-deleted"]
        M["slab_kb_left_after_delete"] = d["slab_kb"] - b["slab_kb"]
        M["memfree_kb_lost_after_delete"] = b["mem_free_kb"] - d["mem_free_kb"]
    S["memory"] = M
    p("")
    p(f"kernel memory: {n} snapshots (chunk 64K), then {chunks_copied} chunks copied")
    p(f"  per snapshot at rest: slab {M['slab_kb_per_snapshot']:.1f} kB, slab+percpu+vmalloc+stacks "
      f"{M['kernel_kb_per_snapshot']:.1f} kB")
    p(f"  per copied chunk: slab {M['slab_bytes_per_chunk']:.1f} B (of which xarray nodes "
      f"{M['xarray_bytes_per_chunk']:.1f} B)")
    if "slab_kb_noise" in M:
        p(f"  noise floor: slab {M['slab_kb_noise']:+d} kB between two readings with nothing done")
    if "slab_kb_left_after_delete" in M:
        p(f"  after deleting them all: slab {M['slab_kb_left_after_delete']:+d} kB vs before")

# Writers: request to commit and frozen time, through vsswriterd.
wr = [r for r in recs if r["kind"] == "writers_run" and not r.get("warmup")]
if wr:
    W = {}
    names = {"direct": "vss_create_set(), no vsswriterd", "none": "vsswriterd, 0 writers",
             "proc-1": "1 writer process", "proc-8": "8 writer processes",
             "hook-1": "1 hook", "hook-8": "8 hooks"}
    p("")
    p("writers: a 1-device set, request to commit (client side) and the writers' frozen time, medians (ms)")
    direct = med([r["request_to_commit_us"] for r in wr if r["config"] == "direct"])
    for cfg in ("direct", "none", "proc-1", "proc-8", "hook-1", "hook-8"):
        rs = [r for r in wr if r["config"] == cfg]
        if not rs:
            continue
        rc = med([r["request_to_commit_us"] for r in rs])
        # Each configuration against the direct runs that alternated with it.
        dr = med([r["request_to_commit_us"] for r in wr if r["config"] == "direct"
                  and str(r["rep"]).startswith(cfg + "-")]) if cfg != "direct" else rc
        fz = [r["frozen_us"] for r in recs if r["kind"] == "writers_frozen" and r["config"] == cfg]
        sq = med([r.get("sequence_to_commit_us") for r in rs])
        dsq = med([r.get("sequence_to_commit_us") for r in wr if r["config"] == "direct"
                   and str(r["rep"]).startswith(cfg + "-")]) if cfg != "direct" else sq
        W[cfg] = {"request_to_commit_us": rc, "runs": len(rs),
                  "sequence_to_commit_us": sq,
                  "sequence_added_us": None if sq is None or dsq is None else sq - dsq,
                  "direct_alternating_us": dr, "added_us": None if dr is None or rc is None else rc - dr,
                  "reply_us": med([r["reply_us"] for r in rs]),
                  "daemon_frozen_us": med([r.get("daemon_frozen_us") for r in rs]),
                  "frozen_us": med(fz), "frozen_max_us": max(fz) if fz else None,
                  "frozen_samples": len(fz), "hold_us": med([r["hold_us"] for r in rs])}
        x = W[cfg]
        extra = ""
        if cfg != "direct":
            extra = f", adds {x['added_us'] / 1000:.1f} vs direct"
            if sq is not None and x["sequence_added_us"] is not None:
                extra += f"; whole sequence {sq / 1000:.1f}, adds {x['sequence_added_us'] / 1000:.1f}"
        if fz:
            extra += f"; frozen {x['frozen_us'] / 1000:.1f} (max {x['frozen_max_us'] / 1000:.1f}, {len(fz)} samples)"
        p(f"  {names[cfg]:34} request to commit {rc / 1000:6.1f}{extra}; reply {x['reply_us'] / 1000:.1f}; {len(rs)} runs")
    S["writers"] = W

# pgbench: a database through a backup with its writer, against no backup.
def fmt_or(v, unit, spec):
    return "-" if v is None else format(v / unit, spec)
pg = [r for r in recs if r["kind"] == "pgbench"]
if pg:
    G = {}
    p("")
    p("pgbench (PostgreSQL 15, TPC-B-like, 4 clients): no backup; backups (vssctl exec + tar) and sets held "
      "as long with no copy, through the writer (its default spread checkpoint, or --checkpoint=fast) or "
      "without it; medians over the runs, each over vssctl exec's window")
    modes = (("none", "no backup"), ("around", "backup run, outside"),
             ("backup", "backup (spread, --idle)"),
             ("fast-backup", "backup (fast, tar)"), ("fast-hold", "hold (fast)"),
             ("nw-hold", "hold (--no-writers)"),
             ("live-idle", "tar of the live data"))
    for mode, name in modes:
        rs = [r for r in pg if r["mode"] == mode]
        if not rs:
            continue
        G[mode] = {k: med([r.get(k) for r in rs]) for k in
                   ("tps", "lat_p50_us", "lat_p99_us", "lat_max_us", "max_gap_us", "window_us",
                    "writes_held_us", "writers_frozen_us", "set_us", "command_us")}
        ck = [r["checkpoint"] for r in rs if r.get("checkpoint")]
        G[mode]["checkpoint_buffers"] = med([c.get("buffers") for c in ck])
        G[mode]["checkpoint_write_s"] = med([c.get("write_s") for c in ck])
        G[mode]["checkpoint_kinds"] = sorted(set(c.get("kind") for c in ck))
        G[mode]["runs"] = len(rs)
        x = G[mode]
        extra = ""
        if mode not in ("none", "around", "live-idle"):
            ms = lambda v: "-" if v is None else f"{v / 1000:.1f}"
            extra = (f"; window {x['window_us'] / 1e6:.1f} s (set {ms(x['set_us'])} ms, COMMAND "
                     f"{fmt_or(x['command_us'], 1e6, '.1f')} s), writes held {fmt_or(x['writes_held_us'], 1, '.0f')} us, "
                     f"writer frozen {ms(x['writers_frozen_us'])} ms; checkpoint "
                     f"{'/'.join(x['checkpoint_kinds']) or '-'}, {fmt_or(x['checkpoint_buffers'], 1, '.0f')} buffers "
                     f"in {fmt_or(x['checkpoint_write_s'], 1, '.1f')} s")
        if mode.endswith("backup") or mode == "live-idle":
            extra += (f", tar {(med([r.get('tar_bytes') for r in rs]) or 0) / 2**20:.0f} MiB, "
                      f"backup_label in {sum(1 for r in rs if r.get('backup_label'))}/{len(rs)}")
        p(f"  {name:24} {x['tps']:7.1f} tps, latency p50 {x['lat_p50_us'] / 1000:6.1f} ms, "
          f"p99 {x['lat_p99_us'] / 1000:6.1f} ms, max {x['lat_max_us'] / 1000:6.1f} ms, "
          f"longest gap {x['max_gap_us'] / 1000:6.1f} ms; {len(rs)} runs{extra}")
    for mode, name in modes[2:]:
        if "none" not in G or mode not in G:
            continue
        # Each run against the no-backup run of its repetition.
        pairs = [(a, b) for a in pg if a["mode"] == "none" for b in pg
                 if b["mode"] == mode and b["rep"] == a["rep"]]
        G[mode]["lost"] = 1 - G[mode]["tps"] / G["none"]["tps"] if G["none"]["tps"] else None
        G[mode]["stall_p99_us"] = G[mode]["lat_p99_us"] - G["none"]["lat_p99_us"]
        G[mode]["lost_paired"] = med([1 - b["tps"] / a["tps"] for a, b in pairs if a["tps"]])
        G[mode]["stall_p99_paired_us"] = med([b["lat_p99_us"] - a["lat_p99_us"] for a, b in pairs])
        x = G[mode]
        p(f"  {name:24} vs no backup: {100 * x['lost']:+.1f}% tps lost (paired {100 * x['lost_paired']:+.1f}%), "
          f"p99 {x['stall_p99_us'] / 1000:+.1f} ms (paired {x['stall_p99_paired_us'] / 1000:+.1f} ms)")
    # The decomposition: each mode's window, and its two parts (taking
    # the set; COMMAND), against the no-backup run's same seconds, and
    # against the mode's own run outside its window.
    D = {}
    for base, bname in (("none:", "the no-backup run's same seconds"),
                        ("around:", "the same run outside the window")):
        p(f"  each against {bname} (medians of the runs' losses):")
        for mode, name in modes[2:]:
            parts = []
            for part, pname in (("", "window"), ("/set", "set"), ("/cmd", "COMMAND")):
                rs = [r for r in pg if r["mode"] == mode + part]
                bm = base + mode + (part if base == "none:" else "")
                pairs = [(a, b) for a in pg if a["mode"] == bm for b in rs if b["rep"] == a["rep"]]
                if not pairs:
                    continue
                lost = med([1 - b["tps"] / a["tps"] for a, b in pairs if a["tps"]])
                secs = med([b["window_us"] / 1e6 for a, b in pairs])
                D[base + mode + part] = {"lost": lost, "seconds": secs, "tps": med([b["tps"] for a, b in pairs]),
                                         "base_tps": med([a["tps"] for a, b in pairs])}
                x = D[base + mode + part]
                parts.append(f"{pname} {x['seconds']:.1f} s {x['tps']:.0f}/{x['base_tps']:.0f} tps {100 * lost:+.1f}%")
            if parts:
                p(f"    {name:24} " + "; ".join(parts))
    G["parts"] = D
    # The backup against its own run's seconds outside the backup.
    pairs = [(a, b) for a in pg if a["mode"] == "around" for b in pg
             if b["mode"] == "backup" and b["rep"] == a["rep"]]
    if pairs and "backup" in G:
        G["backup"]["lost_in_run"] = med([1 - b["tps"] / a["tps"] for a, b in pairs if a["tps"]])
        G["backup"]["stall_p99_in_run_us"] = med([b["lat_p99_us"] - a["lat_p99_us"] for a, b in pairs])
        x = G["backup"]
        p(f"  {'backup':24} vs its own run outside the backup: {100 * x['lost_in_run']:+.1f}% tps lost, "
          f"p99 {x['stall_p99_in_run_us'] / 1000:+.1f} ms (medians of {len(pairs)} runs)")
    # The backup tool's own share (printed with the decomposition above),
    # for the throughput target's line.
    if "around:live-idle" in D and "backup" in G:
        G["backup"]["tool_alone_lost_in_run"] = D["around:live-idle"]["lost"]
    S["pgbench"] = G

# The same-volume store (phase samevol): 4k random writes to a file on ext4
# on the origin, with no snapshot, a store on another disk, a same-volume
# store and dm-snapshot; then same-volume rewrites side by side.
svr = [r for r in recs if r["kind"] == "fio" and r["test"] == "sv-randwrite"]
SVN = {"vss": "store on another disk", "samevol": "same-volume store", "dm": "dm-snapshot"}
if svr:
    last_base = None
    for r in svr:
        if r["impl"] == "none":
            last_base = r["iops"]
        elif last_base:
            r["adjacent_ratio"] = r["iops"] / last_base
    svbase = val("sv-randwrite", "none", 0, 0, "rewrite")
    svbases = [r["iops"] for r in fio("sv-randwrite", "none")]

    # Each repetition's figure of A over B's of the same repetition (the
    # two minutes apart at most).
    def sv_per_rep(a, b, phase):
        xs = []
        for rep in sorted({r["rep"] for r in fio("sv-randwrite", a, phase=phase)}):
            x = [r["iops"] for r in fio("sv-randwrite", a, phase=phase) if r["rep"] == rep]
            y = [r["iops"] for r in fio("sv-randwrite", b, phase=phase) if r["rep"] == rep]
            if x and y:
                xs.append(x[0] / y[0])
        return xs

    SV = {"none_iops": svbase, "none_runs": len(svbases)}
    st = [r for r in recs if r["kind"] == "vss_state" and r["what"].startswith("samevol")]
    setup = next((r for r in recs if r["kind"] == "samevol_setup"), {})
    p("")
    p(f"same-volume store: 4k random writes, iodepth 16, to a {env.get('region', 0) >> 20} MiB file on ext4 "
      f"on the origin, 1 snapshot, 64K chunks: IOPS (vs no snapshot; vs the adjacent baselines)")
    if svbases:
        p(f"  {'no snapshot':24}{fmt(svbase):>8} (median of {len(svbases)} runs, "
          f"{fmt(min(svbases))}..{fmt(max(svbases))})")
    for impl in ("vss", "samevol", "dm"):
        f = val("sv-randwrite", impl, 1, 65536, "first")
        w = val("sv-randwrite", impl, 1, 65536, "rewrite")
        fa = val("sv-randwrite", impl, 1, 65536, "first", "adjacent_ratio")
        wa = val("sv-randwrite", impl, 1, 65536, "rewrite", "adjacent_ratio")
        if f is None and w is None:
            continue
        SV[impl] = {"first": f, "rewrite": w, "first_ratio": ratio(f, svbase),
                    "rewrite_ratio": ratio(w, svbase), "first_adjacent_ratio": fa,
                    "rewrite_adjacent_ratio": wa,
                    "first_runs": len(fio("sv-randwrite", impl, 1, 65536, "first")),
                    "rewrite_runs": len(fio("sv-randwrite", impl, 1, 65536, "rewrite")),
                    "first_p99_us": val("sv-randwrite", impl, 1, 65536, "first", "lat_p99_us")}
        x = SV[impl]
        p(f"  {SVN[impl]:24}first {fmt(f):>6} ({pct(ratio(f, svbase))}; {pct(fa)}), p99 "
          f"{'-' if x['first_p99_us'] is None else format(x['first_p99_us'] / 1000, '.1f')} ms, {x['first_runs']} runs; "
          f"rewrites {fmt(w):>6} ({pct(ratio(w, svbase))}; {pct(wa)}), {x['rewrite_runs']} runs")
    for a, b in (("samevol", "vss"), ("samevol", "dm"), ("vss", "dm")):
        if a not in SV or b not in SV:
            continue
        fr, wr_ = sv_per_rep(a, b, "first"), sv_per_rep(a, b, "rewrite")
        SV[f"{a}/{b}"] = {"first": ratio(SV[a]["first"], SV[b]["first"]),
                          "first_per_rep": med(fr), "first_reps": len(fr),
                          "first_adjacent": ratio(SV[a]["first_adjacent_ratio"], SV[b]["first_adjacent_ratio"]),
                          "rewrite": ratio(SV[a]["rewrite"], SV[b]["rewrite"]),
                          "rewrite_per_rep": med(wr_)}
        x = SV[f"{a}/{b}"]
        p(f"  {SVN[a]} / {SVN[b]}: first writes {fmt(x['first'])}x (per repetition {fmt(x['first_per_rep'])}x "
          f"over {x['first_reps']}; adjacent {fmt(x['first_adjacent'])}x), rewrites {fmt(x['rewrite'])}x")
    kinds = sorted({r.get("storage_kind") for r in st if r["what"] == "samevol samevol"} - {None})
    used = [r["storage_used"] for r in st if r["what"] == "samevol samevol"]
    if setup or kinds:
        p(f"  same-volume store: kind {', '.join(kinds) or '-'}, limit {setup.get('store_limit', 0) >> 20} MiB, "
          f"used after the first writes {'-' if med(used) is None else format(med(used) / 2**20, '.0f')} MiB")
    sp = side_by_side_tests("pair", (("sv-rewrite", "same-volume rewrites, 1 snapshot, 64K"),),
                            "a_dev", "a_iops", "b_iops")
    if sp:
        SV["pairs"] = sp
        p(side_by_side_line(sp["sv-rewrite"], "same-volume/no snapshot", "file vss snapshots"))
    S["samevol"] = SV

# --- targets ---
T = []
def target(name, value, ok, shown):
    T.append({"target": name, "value": value, "pass": ok})
    p(f"  {'PASS' if ok else ('MISS' if ok is not None else 'N/A ')}  {name}: {shown}")

rw = S.get("randwrite", {})
def g(key, field):
    return rw.get(key, {}).get(field)
p("")
p("targets")
# Where a target's two sides were also written side by side (phase pairs),
# that is the figure it is judged on, as tracking's is: separate runs here
# vary by +-20% from one minute to the next. Otherwise it is judged on the
# separate runs.
def paired_shown(x, value):
    return (f"{value} (median of {x['runs']} side-by-side runs, mean {100 * x['mean']:.1f}%"
            + (f" +- {100 * x['sem']:.1f}%" if x["sem"] else "") + ")")

for n in (1, 16):
    r = g(f"vss-{n}-65536", "rewrite_ratio")
    adj = g(f"vss-{n}-65536", "rewrite_adjacent_ratio")
    runs = f"{pct(r)} in separate runs (vs the adjacent baselines: {pct(adj)}; " \
           f"{g(f'vss-{n}-65536', 'rewrite_runs')} runs)"
    x = paired.get(f"rewrite-{n}")
    shown = runs
    if x:
        shown = paired_shown(x, pct(x["ratio"])) + ("" if r is None else f"; {runs}")
        r = x["ratio"]
    target(f"rewrites >= 95% of no snapshot, {n} snapshot{'s' if n > 1 else ''} (64K chunks)",
           r, None if r is None else r >= 0.95, shown)
for c in (65536, 4096):
    v, d = g(f"vss-1-{c}", "first"), g(f"dm-1-{c}", "first")
    va, da = g(f"vss-1-{c}", "first_adjacent_ratio"), g(f"dm-1-{c}", "first_adjacent_ratio")
    r = ratio(v, d)
    # Separate runs are judged on the plain medians; the adjacent figure
    # shows how much of a difference is the host drifting between them.
    ra = ratio(va, da)
    adj = "" if ra is None else f"; vs the adjacent baselines {ra:.2f}x"
    shown = "-" if r is None else f"{r:.2f}x in separate runs ({fmt(v)} vs {fmt(d)} IOPS{adj})"
    x = paired.get("first-4k") if c == 4096 else None
    if x:
        shown = paired_shown(x, f"{x['ratio']:.2f}x") + ("" if r is None else f"; {shown}")
        r = x["ratio"]
    target(f"first writes >= 1.0x dm-snapshot, 1 snapshot, {c // K}K chunks", r,
           None if r is None else r >= 1.0, "-" if r is None else shown)
# Judged on each run against the baseline run just before it, so that a
# slow stretch of the host during one configuration's runs does not count
# as a cost of the snapshots; the ratio of the plain medians is shown too.
for c in (65536, 4096):
    v, o = g(f"vss-16-{c}", "first"), g(f"vss-1-{c}", "first")
    va, oa = g(f"vss-16-{c}", "first_adjacent_ratio"), g(f"vss-1-{c}", "first_adjacent_ratio")
    r = ratio(va, oa)
    target(f"16-snapshot first writes >= 0.9x 1-snapshot, {c // K}K chunks (vs adjacent baselines)", r,
           None if r is None else r >= 0.9,
           "-" if r is None else f"{r:.2f}x ({pct(va)} vs {pct(oa)} of the adjacent baselines; "
           f"plain medians {fmt(v)} vs {fmt(o)} IOPS, {ratio(v, o):.2f}x)")
# What the origin's own request costs allow a bridged read of the
# half-rewritten image: from the origin's sequential reads as 1 MiB and as
# 64 KiB requests, the device time of a request is a + b * size; a 1 MiB
# image read costs a 1 MiB origin request plus 512 KiB of store chunks,
# at best in one request (both disks are alike here).
def bridged_bound(origin_mib_s, origin64k_mib_s):
    t1, t64 = 1 / origin_mib_s, (1 / 16) / origin64k_mib_s
    b = (t1 - t64) * 16 / 15
    a = t1 - b
    return t1 / (t1 + a + b / 2)


# Judged on the untouched image (each read one piece on the origin) and on
# the half-rewritten one (each 1M read 16 pieces of 64K, alternating between
# origin and store), whose sequential figure is also shown against the
# origin read with that I/O.
for what, store in (("image-untouched", "block store, nothing rewritten"),
                    ("image", "block store, half the chunks rewritten"),
                    ("image-file", "file store, half the chunks rewritten")):
    for t, name in (("seqread", "sequential 1M"), ("randread", "random 4k")):
        x = reads.get(f"{t}-{what}")
        if what != "image" and not x:
            continue    # results from before these were measured
        r = x and x["ratio"]
        same_io = ""
        if x and t == "seqread" and what != "image-untouched" and sq64:
            same_io = (f"; {pct(x['mib_s'] / (sq64 / 2**20))} of the origin read as 64k requests"
                       f"; bound {pct(bridged_bound(x['origin_mib_s'], sq64 / 2**20))}")
        dmx = reads.get(f"{t}-image-dm")
        if x and dmx and what != "image-untouched":
            same_io += f"; {x['mib_s'] / dmx['mib_s']:.2f}x dm-snapshot's image"
        target(f"image reads >= 90% of origin, {name}, {store}", r, None if r is None else r >= 0.9,
               "-" if r is None else f"{pct(r)} ({fmt(x['mib_s'])} vs {fmt(x['origin_mib_s'])} MiB/s; "
               f"paired {pct(x['paired_ratio'])}{same_io})")
for k, name in (("4-fio-single", "4 devices, fio writers"), ("4-fio-stacked", "4 devices, fio writers, sets stacked")):
    h = S.get("hold_us", {}).get(k)
    v = h and h["median"]
    target(f"hold time < 10 ms, {name} (median)", v, None if v is None else v < 10000,
           "-" if v is None else f"{v / 1000:.2f} ms (max {h['max'] / 1000:.2f} ms)")
for kind, name in (("randwrite", "4k random writes"), ("seqwrite", "1M sequential writes")):
    x = cbt.get(kind)
    r = x and x["ratio"]
    target(f"tracking overhead <= 2%, {name} (median of side-by-side runs)", r,
           None if r is None else r >= 0.98,
           "-" if r is None else f"{100 * (1 - r):.1f}% (mean {100 * (1 - x['mean']):.1f}%"
           + (f" +- {100 * x['sem']:.1f}%" if x["sem"] else "") + f", {x['runs']} runs)")
for cfg, name in (("proc-8", "8 writer processes"), ("hook-8", "8 hooks")):
    x = S.get("writers", {}).get(cfg)
    a = x and x["added_us"]
    target(f"coordination adds < 20 ms, {name} answering at once (median request to commit vs direct)",
           a, None if a is None else a < 20000,
           "-" if a is None else f"{a / 1000:.1f} ms ({x['request_to_commit_us'] / 1000:.1f} vs "
           f"{x['direct_alternating_us'] / 1000:.1f} ms, {x['runs']} runs)")
    f = x and x["frozen_us"]
    target(f"application frozen < 50 ms, {name} (median)", f, None if f is None else f < 50000,
           "-" if f is None else f"{f / 1000:.1f} ms (max {x['frozen_max_us'] / 1000:.1f} ms, "
           f"{x['frozen_samples']} samples)")
G = S.get("pgbench", {}).get("backup", {})
N = S.get("pgbench", {}).get("none", {})
st = G.get("stall_p99_us")
target("pgbench stall < 100 ms at p99 during a backup with the writer (p99 latency added vs no backup)",
       st, None if st is None else st < 100000,
       "-" if st is None else f"{st / 1000:+.1f} ms (p99 {G['lat_p99_us'] / 1000:.1f} vs "
       f"{N['lat_p99_us'] / 1000:.1f} ms; paired {G['stall_p99_paired_us'] / 1000:+.1f} ms, "
       f"in the run {fmt_or(G.get('stall_p99_in_run_us'), 1000, '+.1f')} ms; "
       f"max {G['lat_max_us'] / 1000:.0f} ms, longest gap {G['max_gap_us'] / 1000:.0f} ms)")
lo = G.get("lost")
target("pgbench throughput lost < 5% over the backup's duration", lo, None if lo is None else lo < 0.05,
       "-" if lo is None else f"{100 * lo:.1f}% ({G['tps']:.1f} vs {N['tps']:.1f} tps; "
       f"paired {100 * G['lost_paired']:.1f}%, in the run {fmt_or(G.get('lost_in_run'), 0.01, '.1f')}%; "
       f"the same tar of the live data, no set: {fmt_or(G.get('tool_alone_lost_in_run'), 0.01, '.1f')}%; "
       f"backup {G['window_us'] / 1e6:.1f} s)")
SV = S.get("samevol", {})
if SV:
    x = SV.get("samevol/vss", {})
    r = x.get("first")
    dmx = SV.get("samevol/dm", {})
    target("same-volume store first writes >= 0.8x a store on another disk (ext4 file, 64K chunks)",
           r, None if r is None else r >= 0.8,
           "-" if r is None else f"{r:.2f}x ({fmt(SV['samevol']['first'])} vs {fmt(SV['vss']['first'])} IOPS, "
           f"medians of {SV['samevol']['first_runs']} runs; per repetition {fmt(x['first_per_rep'])}x, "
           f"vs the adjacent baselines {fmt(x['first_adjacent'])}x; "
           f"{fmt(dmx.get('first'))}x dm-snapshot's {fmt(SV.get('dm', {}).get('first'))})")
    v = SV.get("samevol", {})
    r = v.get("rewrite_ratio")
    runs = (f"{pct(r)} in separate runs (vs the adjacent baselines: {pct(v.get('rewrite_adjacent_ratio'))}; "
            f"{v.get('rewrite_runs')} runs)")
    shown = runs
    px = SV.get("pairs", {}).get("sv-rewrite")
    if px:
        shown = paired_shown(px, pct(px["ratio"])) + ("" if r is None else f"; {runs}")
        r = px["ratio"]
    target("same-volume store rewrites >= 95% of no snapshot (ext4 file, 64K chunks)",
           r, None if r is None else r >= 0.95, shown)
S["targets"] = T
bad = [r for r in recs if r["kind"] in ("error",)]
badstate = [r for r in recs if (r["kind"] == "vss_state" and r["failed"]) or (r["kind"] == "dm_state" and r["invalid"])]
if incomplete or bad or badstate:
    p("")
    p(f"warnings: {len(incomplete)} fio run(s) hit the time cap, {len(bad)} error(s), "
      f"{len(badstate)} failed or invalid snapshot state(s)")
    for r in bad + badstate:
        p(f"  {json.dumps(r)}")
npass = sum(1 for t in T if t["pass"])
nmiss = sum(1 for t in T if t["pass"] is False)
p("")
p(f"{npass} targets passed, {nmiss} missed")
S["text"] = "\n".join(out)
doc["summary"] = S
json.dump(doc, open(path, "w"), indent=1)
open(path.rsplit(".", 1)[0] + ".txt", "w").write(S["text"] + "\n")
print(S["text"])

# --- plot ---
if not png:
    sys.exit(0)
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("bench: no matplotlib for /usr/bin/python3: no plot (scripts/deps.sh installs python3-matplotlib)")
    sys.exit(0)

fig, ax = plt.subplots(2, 3, figsize=(16, 9.5))
fig.suptitle(f"vss benchmarks — kernel {env.get('kver', '?')}, {host.get('accel', '?').upper()} guest, "
             f"{env.get('cpus', '?')} vCPUs, fio 4k randwrite iodepth 16 over {env.get('region', 0) >> 20} MiB",
             fontsize=12)
colors = {"first": "#d95f02", "rewrite": "#1b9e77"}
for i, c in enumerate((65536, 4096)):
    a = ax[0][i]
    labels, firsts, rewrites = ["none"], [None], [base]
    for impl, short in (("vss", "vss"), ("dm", "dm")):
        for n in (1, 4, 16):
            if f"{impl}-{n}-{c}" in rw:
                labels.append(f"{short}\n{n}")
                firsts.append(rw[f"{impl}-{n}-{c}"]["first"])
                rewrites.append(rw[f"{impl}-{n}-{c}"]["rewrite"])
    x = range(len(labels))
    a.bar([j - 0.2 for j in x], [v or 0 for v in firsts], 0.4, label="first writes", color=colors["first"])
    a.bar([j + 0.2 for j in x], [v or 0 for v in rewrites], 0.4, label="rewrites", color=colors["rewrite"])
    if base:
        a.axhline(base, color="gray", ls="--", lw=0.8)
        a.axhline(0.95 * base, color="gray", ls=":", lw=0.8)
    a.set_xticks(list(x), labels)
    a.set_title(f"4k random write IOPS, chunk {c // K} KiB\n(snapshots taken before the run)")
    a.set_ylabel("IOPS")
    a.legend(fontsize=8)
a = ax[0][2]
if sweep:
    xs = [c // K for c in sweep]
    a.plot(xs, [S["chunks"][str(c)]["first"] for c in sweep], "o-", color=colors["first"],
           label="first writes, every chunk copied")
    spx = [c for c in sweep if f"vss-{c}" in S.get("sparse", {})]
    if spx:
        a.plot([c // K for c in spx], [S["sparse"][f"vss-{c}"]["iops"] for c in spx], "o--",
               color=colors["first"], label="first writes, sparse (1/16 of blocks)")
    a.plot(xs, [S["chunks"][str(c)]["rewrite"] for c in sweep], "o-", color=colors["rewrite"], label="rewrites")
    for c, m in ((4096, "s"), (65536, "D")):
        d = g(f"dm-1-{c}", "first")
        if d:
            a.plot([c // K], [d], m, color="black", label=f"dm-snapshot first, {c // K}K")
    if base:
        a.axhline(base, color="gray", ls="--", lw=0.8, label="no snapshot")
    a.set_xscale("log", base=2)
    a.set_xticks(xs, [f"{x}K" for x in xs])
    a.set_ylim(bottom=0)
    a.set_title("vss chunk size, 1 snapshot")
    a.set_ylabel("4k random write IOPS")
    sq = [(c // K, S["chunks"][str(c)]["seq_first_mib_s"]) for c in sweep if S["chunks"][str(c)]["seq_first_mib_s"]]
    if sq:
        b2 = a.twinx()
        b2.plot([x for x, _ in sq], [y for _, y in sq], "^:", color="#7570b3", label="1M sequential first writes (MiB/s)")
        b2.set_ylabel("MiB/s", color="#7570b3")
        b2.set_ylim(bottom=0)
        b2.legend(fontsize=7, loc="upper center")
    a.legend(fontsize=7, loc="lower right")
a = ax[1][0]
if seq:
    labels = ["none", "vss first", "vss rewrite", "dm first", "dm rewrite"]
    keys = ["none-rewrite", "vss-first", "vss-rewrite", "dm-first", "dm-rewrite"]
    a.bar(labels, [seq.get(k, 0) for k in keys], color=["gray", colors["first"], colors["rewrite"], colors["first"], colors["rewrite"]])
    a.set_title("sequential 1M writes, iodepth 4, 1 snapshot (64K)")
    a.set_ylabel("MiB/s")
a = ax[1][1]
if reads:
    labels = []
    top = 120
    for t, name in (("seqread", "sequential 1M\niodepth 4"), ("randread", "random 4k\niodepth 16")):
        if not any(f"{t}-{w}" in reads for w, _, _ in READS):
            continue
        labels.append(name)
        j = len(labels) - 1
        for (what, _, desc), dx, col in zip(READS, (-0.3, -0.1, 0.1, 0.3),
                                            ("#7570b3", "#e7298a", "#bcbddc", "#666666")):
            x = reads.get(f"{t}-{what}")
            if x:
                v = 100 * x["ratio"]
                top = max(top, v * 1.3)
                a.bar([j + dx], [v], 0.2, color=col, label=desc if j == 0 else None)
                a.text(j + dx, v + 2, f"{x['mib_s']:.0f}/\n{x['origin_mib_s']:.0f}", ha="center", fontsize=6)
    a.set_xticks(range(len(labels)), labels)
    a.axhline(90, color="red", ls=":", lw=0.8, label="90% target")
    # Room above the tallest bar for its label and for the legend.
    a.set_ylim(0, top)
    a.set_title("image reads vs origin reads (image/origin MiB/s shown)")
    a.set_ylabel("% of origin read throughput (medians)")
    a.legend(fontsize=7, loc="upper left")
a = ax[1][2]
if hold:
    keys = sorted(hold, key=lambda k: (int(k.split('-')[0]), k))
    a.boxplot([[h / 1000 for h in hold[k]] for k in keys],
              labels=[f"{k.split('-')[0]} dev\n{k.split('-')[1]}" + ("\nstacked" if k.endswith("stacked") else "")
                      for k in keys])
    a.axhline(10, color="red", ls=":", lw=0.8, label="10 ms target")
    a.set_yscale("log")
    a.set_title("hold time per set commit")
    a.set_ylabel("ms (log)")
    a.legend(fontsize=8)
fig.tight_layout()
fig.savefig(png, dpi=90)
print(f"bench: plot in {png}")
PY
