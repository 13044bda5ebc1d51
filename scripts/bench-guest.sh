#!/bin/bash
# The vss benchmarks, inside the test VM (run by scripts/bench.sh):
#
#   scripts/vm-run --disk 1792M --disk 5632M -- scripts/bench-guest.sh OUT.json
#
# Every measurement runs in this one VM, so that each ratio compares
# figures taken on the same boot, the same disks and the same host load.
# Results: one JSON record a line in OUT.json.d/records.jsonl (fio's own
# JSON next to it), gathered into OUT.json at the end. scripts/bench.sh
# turns that into the table, the plot and the PASS/MISS summary; see
# Documentation/performance.rst for the method.
#
# Layout. Both disks are preconditioned (written once end to end), then:
#   VG "bench" = vda + vdb
#   bench/orig   1 GiB on vda   the origin, for vss and for dm-snapshot alike
#   bench/h1..h4 64 MiB on vda  the origins of the hold-time sets
#   bench/twin   on vda         the size of the region: the other device of
#                               the side-by-side runs (phase pairs)
#   bench/store  on vdb         vss diff storage (a block device)
#   dm-snapshot exception stores: one LV per snapshot, on vdb
#   bench/fsstore on vdb        ext4 holding a vss directory store, during
#                               the image reads only
#   bench/sva, svb 124 MiB, vda ext4 with a same-volume store, during phase
#                               samevol only (which also puts ext4 on orig)
# So vss and dm-snapshot snapshot the same device and keep their copies on
# the same disk. The baseline is the same LV with no snapshot.
#
# Environment (VSS_* variables pass through vm-run):
#   VSS_BENCH_REGION   random-write region (default 256M)
#   VSS_BENCH_QUICK=1  a quick pass: 64M region, one repetition, no 16-snapshot dm
#   VSS_BENCH_VSSCTL   vssctl to use (default: the one on PATH, build/bin)
#   VSS_BENCH_ONLY     space-separated phases to run (default: all):
#                      precond matrix chunks sparse seq read hold mem cbt
#                      pairs writers pgbench samevol
#   VSS_BENCH_SAMEVOL_REPS, VSS_BENCH_SAMEVOL_PAIR_REPS
#                      repetitions of phase samevol's separate runs and of
#                      its side-by-side rewrites (default: as the others)
set -uo pipefail

out=${1:?usage: bench-guest.sh OUT.json}
raw=$out.d
records=$raw/records.jsonl
rm -rf "$raw"
mkdir -p "$raw"
: >"$records"

VSSCTL=${VSS_BENCH_VSSCTL:-vssctl}
quick=${VSS_BENCH_QUICK:-}
only=${VSS_BENCH_ONLY:-}

to_bytes() {
	local n=${1%[KkMmGg]} u=${1: -1}
	case $u in
	K|k) echo $((n << 10)) ;; M|m) echo $((n << 20)) ;; G|g) echo $((n << 30)) ;;
	*) echo "$1" ;;
	esac
}

if [ -n "$quick" ]; then
	region=${VSS_BENCH_REGION:-64M}
	reps=1            # repetitions of the configurations that targets use
	read_reps=2       # pairs of origin and image reads
	rewrite_reps=1
	hold_reps=3
	pair_reps=2
	pair_runs=2
	pair_first_reps=2
	mem_write=256M
	seq_region=128M
	dm_counts="1 4"
	writer_reps=5
else
	region=${VSS_BENCH_REGION:-256M}
	reps=3
	read_reps=5
	rewrite_reps=2
	hold_reps=9
	pair_reps=6
	pair_runs=4
	pair_first_reps=12
	mem_write=1G
	seq_region=512M
	dm_counts="1 4 16"
	writer_reps=25
fi
region_b=$(to_bytes "$region")
seq_b=$(to_bytes "$seq_region")
mem_write_b=$(to_bytes "$mem_write")
# No single fio run may take longer than this (a first-write run that
# hits it is kept, flagged "complete": false).
fio_cap=300

t_start=$(cut -d' ' -f1 /proc/uptime)
log() {
	local now
	now=$(cut -d' ' -f1 /proc/uptime)
	printf 'bench [%6.1fs] %s\n' "$(awk -v a="$now" -v b="$t_start" 'BEGIN{print a-b}')" "$*" >&2
}
die() { log "FATAL: $*"; exit 1; }
want() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }

# --- records --------------------------------------------------------------------

# The context of the next fio records.
TEST='' IMPL='' SNAPS=0 CHUNK=0 PHASE='' REP=1 DEV=''

# rec JSON: one record, as is.
rec() { printf '%s\n' "$1" >>"$records"; }

seq_no=0
# fio_run RW [fio options...]: runs one fio job on $DEV and records it.
fio_run() {
	local rw=$1 dir=write name file expect=0 arg
	shift
	seq_no=$((seq_no + 1))
	name=$(printf '%03d-%s-%s-n%s-c%s-%s-r%s' "$seq_no" "$TEST" "$IMPL" "$SNAPS" "$CHUNK" "$PHASE" "$REP")
	file=$raw/$name.json
	case $rw in read|randread) dir='read' ;; esac
	if ! fio --name="$name" --filename="$DEV" --rw="$rw" --ioengine=libaio \
		--direct=1 --randrepeat=0 --output-format=json --output="$file" \
		"$@" >/dev/null 2>"$raw/$name.err"; then
		log "fio $name failed: $(head -c 300 "$raw/$name.err")"
		rec "{\"kind\":\"error\",\"what\":\"fio $name\"}"
		return 1
	fi
	for arg in "$@"; do
		case $arg in --io_size=*) expect=$(to_bytes "${arg#--io_size=}") ;; esac
	done
	jq -c --arg test "$TEST" --arg impl "$IMPL" --argjson snaps "$SNAPS" \
		--argjson chunk "$CHUNK" --arg phase "$PHASE" --argjson rep "$REP" \
		--arg dir "$dir" --arg file "${file##*/}" --argjson expect "$expect" '
		.jobs[0][$dir] as $d |
		{kind: "fio", test: $test, impl: $impl, snaps: $snaps, chunk: $chunk,
		 phase: $phase, rep: $rep, file: $file,
		 iops: $d.iops, bw_bytes: $d.bw_bytes, runtime_ms: $d.runtime,
		 io_bytes: $d.io_bytes,
		 complete: ($expect == 0 or $d.io_bytes >= $expect),
		 lat_p50_us: ($d.clat_ns.percentile["50.000000"] / 1000),
		 lat_p99_us: ($d.clat_ns.percentile["99.000000"] / 1000),
		 usr_cpu: .jobs[0].usr_cpu, sys_cpu: .jobs[0].sys_cpu}' \
		"$file" >>"$records"
	log "$(tail -n1 "$records" | jq -r '"\(.test) \(.impl) n=\(.snaps) chunk=\(.chunk) \(.phase) #\(.rep): \(.iops|floor) IOPS, \(.bw_bytes/1048576|floor) MiB/s, p99 \(.lat_p99_us|floor) us\(if .complete then "" else " (INCOMPLETE)" end)"')"
}

# The three kinds of runs, on $DEV.
rand_write() { fio_run randwrite --bs=4k --iodepth=16 --size="$region" --io_size="$region" --runtime=$fio_cap; }
# Sequential first writes cover the region once; rewrites and the baseline,
# much faster, loop over it for 5 s, or the run would be too short to time.
seq_write() {
	if [ "$PHASE" = first ]; then
		fio_run write --bs=1M --iodepth=4 --size="$seq_region" --io_size="$seq_region" --runtime=$fio_cap
	else
		fio_run write --bs=1M --iodepth=4 --size="$seq_region" --time_based --runtime=5
	fi
}

# meminfo LABEL [KEY=VALUE...]: kernel memory now, caches dropped.
meminfo() {
	local label=$1 extra="" kv
	shift
	for kv in "$@"; do extra+=",\"${kv%%=*}\":${kv#*=}"; done
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 1
	echo 3 >/proc/sys/vm/drop_caches
	awk -v label="$label" -v extra="$extra" '
		FILENAME == "/proc/meminfo" { sub(":", "", $1); m[$1] = $2; next }
		$1 == "radix_tree_node" { rtn = $2 * $4 }
		END {
			printf "{\"kind\":\"mem\",\"label\":\"%s\"%s,\"mem_free_kb\":%d,\"slab_kb\":%d,\"sunreclaim_kb\":%d,\"percpu_kb\":%d,\"vmalloc_kb\":%d,\"kernel_stack_kb\":%d,\"page_tables_kb\":%d,\"buffers_kb\":%d,\"cached_kb\":%d,\"radix_tree_node_bytes\":%d}\n",
				label, extra, m["MemFree"], m["Slab"], m["SUnreclaim"], m["Percpu"],
				m["VmallocUsed"], m["KernelStack"], m["PageTables"], m["Buffers"],
				m["Cached"], rtn
		}' /proc/meminfo /proc/slabinfo >>"$records"
}

# --- snapshots -------------------------------------------------------------------

# vss_take N CHUNK DEV...: N sets in a row, each of DEV..., on $take_store
# (bench/store unless set otherwise, with the options in take_opts).
take_store=
take_opts=()
vss_take() {
	local n=$1 chunk=$2 i f
	shift 2
	for ((i = 1; i <= n; i++)); do
		f=$raw/create-$seq_no-$i.json
		if ! "$VSSCTL" --json create --no-freeze --storage "${take_store:-$store}" \
			"${take_opts[@]}" --chunk-size "$chunk" "$@" >"$f" 2>"$f.err"; then
			log "vssctl create failed: $(cat "$f.err")"
			rec "{\"kind\":\"error\",\"what\":\"vssctl create $*\"}"
			return 1
		fi
	done
}

# Deleting a device's last snapshot leaves it tracked (changed-block
# tracking outlives snapshots), so the devices are untracked too: every
# no-snapshot figure is of an untracked device.
vss_clear() {
	local left d
	"$VSSCTL" delete --all >/dev/null 2>&1
	for d in "$orig" "$twin" /dev/bench/h1 /dev/bench/h2 /dev/bench/h3 /dev/bench/h4; do
		"$VSSCTL" untrack "$d" >/dev/null 2>&1
	done
	left=$("$VSSCTL" --json list 2>/dev/null | jq 'length' 2>/dev/null)
	if [ "${left:-0}" != 0 ]; then
		log "vss snapshots left after delete --all: $left"
		"$VSSCTL" delete --all --force >/dev/null 2>&1
	fi
}

# vss_check: record the state and storage use of every snapshot.
vss_check() {
	"$VSSCTL" --json list 2>/dev/null | jq -c --arg what "$1" \
		'{kind: "vss_state", what: $what, snapshots: length,
		  failed: [.[] | select(.state != "active")] | length,
		  storage_used: (map(.storage.used) | max)}' >>"$records"
	if [ "$(tail -n1 "$records" | jq .failed)" != 0 ]; then
		log "WARNING: failed vss snapshots after $1"
	fi
}

# dm_take N CHUNK SIZE [LV]: N classic LVM snapshots of bench/LV (default
# orig), each with its own exception store of SIZE on vdb.
dm_take() {
	local n=$1 chunk=$2 size=$3 lv=${4:-orig} i
	for ((i = 1; i <= n; i++)); do
		if ! lvcreate -q -y -s -L "$size" -c "$chunk" -n "s$i" "bench/$lv" "$disk2" >/dev/null 2>"$raw/lvcreate.err"; then
			log "lvcreate failed: $(cat "$raw/lvcreate.err")"
			rec "{\"kind\":\"error\",\"what\":\"lvcreate -s $i\"}"
			return 1
		fi
	done
}

# The LVs dm-snapshot snapshots, as an lvs selection.
dm_origins='origin=orig || origin=twin'

dm_check() {
	local line
	line=$(lvs --noheadings --units b --nosuffix --separator , -o lv_name,lv_attr,snap_percent,lv_size -S "$dm_origins" bench 2>/dev/null |
		awk -F, -v what="$1" '{ gsub(/ /, ""); n++; if (substr($2, 5, 1) == "I") bad++; if ($3 + 0 > max) max = $3 + 0; size = $4 }
			END { printf "{\"kind\":\"dm_state\",\"what\":\"%s\",\"snapshots\":%d,\"invalid\":%d,\"max_percent\":%s,\"cow_size\":%d}", what, n, bad, max + 0, size }')
	rec "$line"
	if [ "$(jq .invalid <<<"$line")" != 0 ]; then
		log "WARNING: invalid dm snapshots after $1"
	fi
}

dm_clear() {
	local lvs_
	# No process substitution: the guest has no /dev/fd.
	lvs_=$(lvs --noheadings -o lv_name -S "$dm_origins" bench 2>/dev/null | sed 's|^ *|bench/|')
	# shellcheck disable=SC2086 # LV names have no spaces
	[ -z "$lvs_" ] || lvremove -q -y $lvs_ >/dev/null
}

# Size of one dm exception store for COUNT bytes of first writes.
dm_cow_size() { echo "$(( ($1 + $1 / 32) / 1048576 + 8 ))M"; }

bg_pid=
cleanup() {
	[ -z "$bg_pid" ] || { kill "$bg_pid" 2>/dev/null; wait "$bg_pid" 2>/dev/null; }
	bg_pid=
	vss_clear
	dm_clear
}

# --- setup ------------------------------------------------------------------------

read -r disk1 disk2 _ <<<"$VSS_DISKS"
[ -b "${disk1:-}" ] && [ -b "${disk2:-}" ] || die "needs two scratch disks (VSS_DISKS='$VSS_DISKS')"
"$VSSCTL" version >/dev/null 2>&1 || die "$VSSCTL does not work (build it: make tools)"
modprobe dm-snapshot || die "no dm-snapshot"

log "kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print $2 / 1024 " MiB"}' /proc/meminfo), region $region"
rec "$(jq -cn --arg kver "$(uname -r)" --arg fio "$(fio --version)" \
	--arg vssctl "$("$VSSCTL" version 2>/dev/null | tr '\n' ' ')" \
	--argjson cpus "$(nproc)" --argjson mem_kb "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" \
	--argjson region "$region_b" --argjson seq_region "$seq_b" \
	--argjson mem_write "$mem_write_b" --arg quick "${quick:-0}" \
	--arg disks "$VSS_DISKS" \
	'{kind: "env", kver: $kver, fio: $fio, vssctl: $vssctl, cpus: $cpus,
	  mem_kb: $mem_kb, region: $region, seq_region: $seq_region,
	  mem_write: $mem_write, quick: ($quick == "1"), disks: $disks}')"

if want precond; then
	# Writing every block once makes the host allocate the backing files
	# now, so no measurement pays for it.
	log "preconditioning $disk1 and $disk2"
	for d in "$disk1" "$disk2"; do
		fio --name=precond --filename="$d" --rw=write --bs=1M --iodepth=8 \
			--ioengine=libaio --direct=1 --output=/dev/null || die "preconditioning $d"
	done
fi

pvcreate -q -y "$disk1" "$disk2" >/dev/null || die pvcreate
vgcreate -q bench "$disk1" "$disk2" >/dev/null || die vgcreate
lvcreate -q -y -L 1G -n orig bench "$disk1" >/dev/null || die "lvcreate orig"
for i in 1 2 3 4; do
	lvcreate -q -y -L 64M -n "h$i" bench "$disk1" >/dev/null || die "lvcreate h$i"
done
lvcreate -q -y -L "$region" -n twin bench "$disk1" >/dev/null || die "lvcreate twin"
lvcreate -q -y -L 1100M -n store bench "$disk2" >/dev/null || die "lvcreate store"
orig=/dev/bench/orig
twin=/dev/bench/twin
store=/dev/bench/store
[ -b "$orig" ] && [ -b "$twin" ] && [ -b "$store" ] || die "no /dev/bench/orig, twin or store"

# The no-snapshot baseline on the origin. Taken before every configuration,
# so that the baselines follow any drift of the host through the run.
base_rep=0
baseline() {
	base_rep=$((base_rep + 1))
	TEST=randwrite IMPL=none SNAPS=0 CHUNK=0 PHASE=rewrite REP=$base_rep DEV=$orig
	rand_write
}

# --- random 4k writes: vss and dm-snapshot, 1/4/16 snapshots ---------------------

# rand_config IMPL N CHUNK REP: first writes after the Nth snapshot, then
# rewrites of the same (now all copied) region.
rand_config() {
	local impl=$1 n=$2 chunk=$3 rep=$4 cb r
	cb=$(to_bytes "$chunk")
	baseline
	TEST=randwrite IMPL=$impl SNAPS=$n CHUNK=$cb REP=$rep DEV=$orig
	if [ "$impl" = vss ]; then
		meminfo "rand-before" "impl=\"vss\"" "snaps=$n" "chunk=$cb" "rep=$rep"
		vss_take "$n" "$chunk" "$orig" || { cleanup; return 1; }
		meminfo "rand-created" "impl=\"vss\"" "snaps=$n" "chunk=$cb" "rep=$rep"
	else
		dm_take "$n" "$chunk" "$(dm_cow_size "$region_b")" || { cleanup; return 1; }
	fi
	PHASE=first rand_write
	if [ "$impl" = vss ]; then
		vss_check "randwrite n=$n chunk=$chunk"
		meminfo "rand-written" "impl=\"vss\"" "snaps=$n" "chunk=$cb" "rep=$rep" \
			"chunks_copied=$((region_b / cb))"
	else
		dm_check "randwrite n=$n chunk=$chunk"
	fi
	for ((r = 1; r <= rewrite_reps; r++)); do
		REP=$(( (rep - 1) * rewrite_reps + r ))
		PHASE=rewrite rand_write
	done
	cleanup
}

if want matrix; then
	log "random 4k writes, vss and dm-snapshot"
	for chunk in 64K 4K; do
		for n in 1 4 16; do
			# The figures the targets use get more repetitions.
			r=1
			[ "$n" = 4 ] || r=$reps
			for ((k = 1; k <= r; k++)); do
				rand_config vss "$n" "$chunk" "$k"
				[[ " $dm_counts " == *" $n "* ]] || continue
				[ "$n" = 1 ] || [ "$k" = 1 ] || continue
				rand_config dm "$n" "$chunk" "$k"
			done
		done
	done
fi

if want chunks; then
	log "chunk sizes (vss, one snapshot)"
	for chunk in 16K 256K; do
		rand_config vss 1 "$chunk" 1
	done
fi

# Sparse first writes: 4k random writes to 1/16 of the blocks of the whole
# 1 GiB origin, once each. Unlike the runs above, which end up copying
# every chunk whatever its size, this shows what a larger chunk costs when
# writes are scattered: more bytes copied and stored per byte written.
if want sparse; then
	log "sparse first writes (1/16 of the blocks of 1 GiB)"
	sparse_io=$((1 << 30 >> 4))
	[ -z "$quick" ] || sparse_io=$((1 << 30 >> 6))
	for impl in vss dm; do
		for chunk in 4K 16K 64K 256K; do
			cb=$(to_bytes "$chunk")
			[ "$impl" = vss ] || [ "$cb" = 4096 ] || [ "$cb" = 65536 ] || continue
			TEST=sparse IMPL=$impl SNAPS=1 CHUNK=$cb PHASE=first REP=1 DEV=$orig
			if [ "$impl" = vss ]; then
				vss_take 1 "$chunk" "$orig" || { cleanup; continue; }
			else
				dm_take 1 "$chunk" "$(dm_cow_size $((1 << 30)))" || { cleanup; continue; }
			fi
			fio_run randwrite --bs=4k --iodepth=16 --size=1G --io_size=$sparse_io --runtime=$fio_cap
			if [ "$impl" = vss ]; then vss_check "sparse $cb"; else dm_check "sparse $cb"; fi
			cleanup
		done
	done
fi

# --- sequential 1M writes ----------------------------------------------------------

if want seq; then
	log "sequential 1M writes"
	cow=$(dm_cow_size "$seq_b")
	for ((k = 1; k <= reps; k++)); do
		TEST=seqwrite IMPL=none SNAPS=0 CHUNK=0 PHASE=rewrite REP=$k DEV=$orig
		seq_write
		TEST=seqwrite IMPL=vss SNAPS=1 CHUNK=65536 REP=$k
		vss_take 1 64K "$orig" && {
			PHASE=first seq_write
			PHASE=rewrite seq_write
			vss_check "seqwrite"
		}
		cleanup
		TEST=seqwrite IMPL=dm SNAPS=1 CHUNK=65536 REP=$k
		dm_take 1 64K "$cow" && {
			PHASE=first seq_write
			PHASE=rewrite seq_write
			dm_check "seqwrite"
		}
		cleanup
	done
	# Other chunk sizes, vss first writes only: a 1 MiB write spans 1 MiB /
	# chunk size chunks.
	for chunk in 4K 16K 256K; do
		TEST=seqwrite IMPL=vss SNAPS=1 CHUNK=$(to_bytes $chunk) REP=1
		vss_take 1 "$chunk" "$orig" && PHASE=first seq_write
		cleanup
	done
fi

# --- image reads ---------------------------------------------------------------------

# read_pairs PHASE IMAGE_IMPL IMAGE_DEV: origin and image reads, one after
# the other, read_reps times; each image run is compared with the origin
# run just before it (same test), so host drift cancels out.
read_pairs() {
	local phase=$1 impl=$2 dev=$3 k what
	for ((k = 1; k <= read_reps; k++)); do
		for what in origin "$impl"; do
			if [ "$what" = origin ]; then DEV=$orig; else DEV=$dev; fi
			TEST=seqread IMPL=$what SNAPS=1 CHUNK=65536 PHASE=$phase REP=$k
			fio_run read --bs=1M --iodepth=4 --size="$region" --time_based --runtime=5
			TEST=randread
			fio_run randread --bs=4k --iodepth=16 --size="$region" --time_based --runtime=5
		done
	done
}

# half_rewrite WHAT IMPL: every other 64 KiB chunk of the region, so that
# half of what the image reads comes from the store, interleaved with the
# origin; then IMPL's (vss or dm) snapshot state is checked.
half_rewrite() {
	TEST=prep IMPL=$2 SNAPS=1 CHUNK=65536 PHASE=first REP=1 DEV=$orig
	fio_run write:64k --bs=64k --iodepth=4 --size="$region" --io_size=$((region_b / 2))
	"${2}_check" "half rewrite $1"
}

last_image() { jq -r '.snapshots[0].image.path' "$(ls -t "$raw"/create-*.json | head -n1)"; }

if want read; then
	log "image reads: block store, then file store"
	TEST=prep IMPL=vss SNAPS=1 CHUNK=65536 PHASE=first REP=1 DEV=$orig
	if vss_take 1 64K "$orig"; then
		image=$(last_image)
		# First, nothing rewritten: every chunk of the image reads from
		# the origin, so any difference is the image path's own cost.
		read_pairs untouched image-untouched "$image"
		half_rewrite block vss
		read_pairs read image "$image"
		# What the origin gives for the I/O the image issues for a 1 MiB
		# read here: 16 requests of 64 KiB (8 to the origin, 8 to the
		# store), 4 such reads in flight.
		for ((k = 1; k <= read_reps; k++)); do
			TEST=seqread64k IMPL=origin SNAPS=0 CHUNK=0 PHASE=read REP=$k DEV=$orig
			fio_run read --bs=64k --iodepth=64 --size="$region" --time_based --runtime=5
		done
	fi
	cleanup
	# The same with the store in a directory on ext4 (an unnamed file:
	# the kind vss picks by default), on the store disk.
	fsdir=/tmp/vss-bench-fsstore
	if lvcreate -q -y -L 640M -n fsstore bench "$disk2" >/dev/null &&
		mkfs.ext4 -q -F /dev/bench/fsstore && mkdir -p "$fsdir" &&
		mount /dev/bench/fsstore "$fsdir"; then
		take_store=$fsdir
		take_opts=(--storage-limit 600M)
		TEST=prep IMPL=vss SNAPS=1 CHUNK=65536 PHASE=first REP=1 DEV=$orig
		if vss_take 1 64K "$orig"; then
			half_rewrite file vss
			read_pairs read-file image-file "$(last_image)"
		fi
		cleanup
		take_store=''
		take_opts=()
		umount "$fsdir"
	else
		log "cannot make the file store filesystem"
		rec '{"kind":"error","what":"file store for image reads"}'
	fi
	lvremove -q -y bench/fsstore >/dev/null 2>&1
	# dm-snapshot's image of the same layout: the peer's figure for the
	# worst case, where it sends each 64 KiB chunk as its own request.
	TEST=prep IMPL=dm SNAPS=1 CHUNK=65536 PHASE=first REP=1 DEV=$orig
	if dm_take 1 64K "$(dm_cow_size $((region_b / 2)))"; then
		half_rewrite dm dm
		read_pairs read-dm image-dm /dev/bench/s1
	fi
	cleanup
fi

# --- hold time -------------------------------------------------------------------------

# hold_run DEVICES LOAD MODE: hold_us of REPS creates of one set of DEVICES.
#   MODE "single": each set deleted before the next (no snapshot at commit)
#   MODE "stacked": sets pile up (first writes in flight at each commit)
hold_run() {
	local ndev=$1 load=$2 mode=$3 devs=() i f h fioargs=()
	for ((i = 1; i <= ndev; i++)); do devs+=("/dev/bench/h$i"); done
	if [ "$load" = fio ]; then
		for d in "${devs[@]}"; do fioargs+=(--name="bg-${d##*/}" --filename="$d"); done
		fio --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio --direct=1 \
			--time_based --runtime=3600 --randrepeat=0 "${fioargs[@]}" \
			--output=/dev/null >/dev/null 2>&1 &
		bg_pid=$!
		sleep 3
	fi
	local reps_=$hold_reps
	[ "$load" = fio ] || reps_=$(( (hold_reps + 1) / 2 ))
	for ((i = 1; i <= reps_; i++)); do
		f=$raw/hold-$ndev-$load-$mode-$i.json
		if "$VSSCTL" --json create --no-freeze --storage "$store" "${devs[@]}" >"$f" 2>"$f.err"; then
			h=$(jq '.hold_us' "$f")
			rec "{\"kind\":\"hold\",\"devices\":$ndev,\"load\":\"$load\",\"mode\":\"$mode\",\"rep\":$i,\"hold_us\":$h}"
		else
			log "hold: create failed: $(cat "$f.err")"
			rec "{\"kind\":\"error\",\"what\":\"hold create $ndev $load $mode\"}"
		fi
		sleep 1
		[ "$mode" = stacked ] || vss_clear
		sleep 0.5
	done
	log "hold $ndev device(s), $load, $mode: $(jq -r --argjson n "$ndev" --arg l "$load" --arg m "$mode" \
		'select(.kind == "hold" and .devices == $n and .load == $l and .mode == $m) | .hold_us' "$records" | sort -n | tr '\n' ' ') us"
	cleanup
}

if want hold; then
	log "hold time"
	for ndev in 1 4; do
		hold_run "$ndev" idle single
		hold_run "$ndev" fio single
		hold_run "$ndev" fio stacked
	done
fi

# --- changed-block tracking ------------------------------------------------------------

# Tracking with no snapshot against no tracking. Two devices of the same
# size on the same disk (h1, h2) are written at the same time by one fio
# with a job each, one of them tracked: whatever the host does meanwhile
# slows both alike, so the ratio of the two jobs isolates what tracking
# costs (run after run, single runs here vary by +-20%, which hides 2%).
# Which device is tracked alternates, to cancel any difference between
# them, and so does which job fio names first: with neither device
# tracked, the first job measured 1.6% +- 1.1% faster than the second
# (18 runs, 2026-12-01). Each tracked run starts from an empty map
# (untrack forgets it), so most random writes set a new bit: the worst
# case.

# job_pair SWAP A_NAME A_DEV B_NAME B_DEV: fio's options for a job on each
# device into $jobs, A's first unless SWAP is non-zero.
job_pair() {
	jobs=(--name="$2" --filename="$3" --name="$4" --filename="$5")
	(($1)) && jobs=("${jobs[@]:2}" "${jobs[@]:0:2}")
	return 0
}

cbt_pair() {
	local kind=$1 k=$2 tracked untracked file name jobs
	if ((k % 2)); then tracked=/dev/bench/h1 untracked=/dev/bench/h2
	else tracked=/dev/bench/h2 untracked=/dev/bench/h1; fi
	job_pair $(((k - 1) / 2 % 2)) tracked "$tracked" untracked "$untracked"
	seq_no=$((seq_no + 1))
	name=$(printf '%03d-cbt-%s-r%s' "$seq_no" "$kind" "$k")
	file=$raw/$name.json
	if ! "$VSSCTL" track "$tracked" >/dev/null 2>"$raw/track.err"; then
		log "vssctl track failed: $(cat "$raw/track.err")"
		rec '{"kind":"error","what":"vssctl track"}'
		return 1
	fi
	local args=(--bs=4k --iodepth=16 --rw=randwrite)
	[ "$kind" = randwrite ] || args=(--bs=1M --iodepth=4 --rw=write)
	if fio --ioengine=libaio --direct=1 --randrepeat=0 --time_based --runtime=3 \
		"${args[@]}" --output-format=json --output="$file" \
		"${jobs[@]}" >/dev/null 2>"$raw/$name.err"; then
		jq -c --arg kind "$kind" --argjson rep "$k" --arg dev "${tracked##*/}" \
			--arg file "${file##*/}" '
			(.jobs[] | select(.jobname == "tracked") | .write) as $t |
			(.jobs[] | select(.jobname == "untracked") | .write) as $u |
			{kind: "cbt", test: $kind, rep: $rep, tracked_dev: $dev, file: $file,
			 tracked_first: (.jobs[0].jobname == "tracked"),
			 tracked_iops: $t.iops, untracked_iops: $u.iops,
			 tracked_bw_bytes: $t.bw_bytes, untracked_bw_bytes: $u.bw_bytes,
			 ratio: ($t.iops / $u.iops)}' "$file" >>"$records"
		log "$(tail -n1 "$records" | jq -r '"cbt \(.test) #\(.rep) (\(.tracked_dev) tracked): \(.tracked_iops|floor) vs \(.untracked_iops|floor) IOPS, \(.ratio * 1000 | floor / 10)%"')"
	else
		log "fio $name failed: $(head -c 300 "$raw/$name.err")"
		rec "{\"kind\":\"error\",\"what\":\"fio $name\"}"
	fi
	"$VSSCTL" --json cbt info "$tracked" >"$raw/cbt-info-$seq_no.json" 2>&1
	"$VSSCTL" untrack "$tracked" >/dev/null 2>&1
}

if want cbt; then
	log "changed-block tracking overhead (tracked, no snapshot, vs untracked, side by side)"
	cleanup
	# Even side by side one run's ratio spreads from about 0.75 to 1.13:
	# 36 runs left a standard error of 1.5%, as large as what the 2%
	# target tells apart, so a full run takes 72 of each kind.
	cbt_reps=$((reps * 24))
	for kind in randwrite seqwrite; do
		for ((k = 1; k <= cbt_reps; k++)); do
			cbt_pair "$kind" "$k"
		done
	done
	cleanup
fi

# --- side by side: vss against no snapshot, and against dm-snapshot --------------------

# Tracking's method, for the targets that compare two ways of writing one
# device: the two LVs of the region's size on vda (orig and twin) are
# written at the same time by one fio with a job each, so that whatever
# the host does meanwhile slows both alike. Which LV carries the snapshots
# alternates from one repetition to the next, to cancel any difference
# between them, and which job fio names first alternates too (see
# cbt_pair).
#
# pair_fio TEST REP RUN A_NAME A_DEV B_NAME B_DEV: one run of 4k random
# writes, iodepth 16, 3 s; the record is job A's IOPS over job B's.
pair_fio() {
	local test=$1 rep=$2 run=$3 an=$4 ad=$5 bn=$6 bd=$7 file name jobs
	job_pair $((((rep - 1) / 2 + run - 1) % 2)) "$an" "$ad" "$bn" "$bd"
	seq_no=$((seq_no + 1))
	name=$(printf '%03d-pair-%s-r%s-%s' "$seq_no" "$test" "$rep" "$run")
	file=$raw/$name.json
	if fio --ioengine=libaio --direct=1 --randrepeat=0 --time_based --runtime=3 \
		--bs=4k --iodepth=16 --rw=randwrite --size="$region" \
		--output-format=json --output="$file" \
		"${jobs[@]}" >/dev/null 2>"$raw/$name.err"; then
		jq -c --arg test "$test" --argjson rep "$rep" --argjson run "$run" \
			--arg a "$an" --arg b "$bn" --arg dev "${ad##*/}" --arg file "${file##*/}" '
			(.jobs[] | select(.jobname == $a) | .write) as $x |
			(.jobs[] | select(.jobname == $b) | .write) as $y |
			{kind: "pair", test: $test, rep: $rep, run: $run, a: $a, b: $b,
			 a_dev: $dev, file: $file, a_first: (.jobs[0].jobname == $a),
			 a_iops: $x.iops, b_iops: $y.iops,
			 ratio: ($x.iops / $y.iops)}' "$file" >>"$records"
		log "$(tail -n1 "$records" | jq -r '"pair \(.test) #\(.rep).\(.run) (\(.a) on \(.a_dev)): \(.a_iops|floor) vs \(.b_iops|floor) IOPS, \(.ratio * 1000 | floor / 10)%"')"
	else
		log "fio $name failed: $(head -c 300 "$raw/$name.err")"
		rec "{\"kind\":\"error\",\"what\":\"fio $name\"}"
	fi
}

# pair_rewrites N: N snapshots (64K chunks) of one LV, a first-write pass
# over the region (every chunk copied), then rewrites of it side by side
# with rewrites of the other LV, which has no snapshot and is not tracked.
pair_rewrites() {
	local n=$1 k r snapped plain
	for ((k = 1; k <= pair_reps; k++)); do
		if ((k % 2)); then snapped=$orig plain=$twin; else snapped=$twin plain=$orig; fi
		TEST=pair-prep IMPL=vss SNAPS=$n CHUNK=65536 PHASE=first REP=$k DEV=$snapped
		if vss_take "$n" 64K "$snapped"; then
			rand_write
			vss_check "pair rewrites n=$n"
			for ((r = 1; r <= pair_runs; r++)); do
				pair_fio "rewrite-$n" "$k" "$r" vss "$snapped" none "$plain"
			done
		fi
		cleanup
	done
}

# pair_first: first writes with 4K chunks, vss on one LV and dm-snapshot on
# the other, each with one snapshot taken just before. With 4K chunks every
# write of the run is the first to its chunk (fio writes no block twice in
# a pass, and a run covers a fraction of the region), so both jobs do the
# same work throughout: with larger chunks the faster job would reach the
# cheaper rewrites of its pass sooner.
pair_first() {
	local k on_vss on_dm
	for ((k = 1; k <= pair_first_reps; k++)); do
		if ((k % 2)); then on_vss=$orig on_dm=$twin; else on_vss=$twin on_dm=$orig; fi
		if vss_take 1 4K "$on_vss" && dm_take 1 4K "$(dm_cow_size "$region_b")" "${on_dm##*/}"; then
			pair_fio first-4k "$k" 1 vss "$on_vss" dm "$on_dm"
			vss_check "pair first writes"
			dm_check "pair first writes"
		fi
		cleanup
	done
}

if want pairs; then
	log "side by side: vss rewrites against no snapshot, vss first writes against dm-snapshot"
	cleanup
	pair_rewrites 1
	pair_rewrites 16
	pair_first
fi

# --- writers: what coordination costs --------------------------------------------------

# A set of one device (an ext4 LV the writers' data is on), taken through
# vsswriterd with 0, 1 and 8 writers answering at once (processes on
# libvsswriter, or hooks), and directly with vss_create_set() as the
# baseline. Per run: the time from the requester's call for the set
# (DoSnapshotSet; vss_create_set() directly) to the commit instant (the
# snapshot's creation time), the same from the session's start (gather
# and prepare-backup included; vss_open() directly), and each writer's frozen time
# (from the end of its freeze to the start of its thaw, as it logs them).
# The runs of the configurations alternate, so that host drift spreads
# over all of them alike.
writers_phase() {
	local W=/tmp/bench-writers i k cfg n kind wpids=() dpid conf sock
	local test_writer=$VSS_REPO/build/selftests/vss_test_writer
	local test_requester=$VSS_REPO/build/selftests/vss_test_requester
	[ -x "$test_writer" ] && [ -x "$test_requester" ] || {
		log "writers: no $test_writer or $test_requester (make -C selftests)"
		rec '{"kind":"error","what":"writers: test programs missing"}'
		return 1
	}
	rm -rf "$W"
	mkdir -p "$W/m" "$W/store" "$W/hooks1" "$W/hooks8" "$W/none"
	mkfs.ext4 -q -F /dev/bench/h1 && mount /dev/bench/h1 "$W/m" || {
		rec '{"kind":"error","what":"writers: mkfs"}'
		return 1
	}
	# A hook that notes when its freeze ends and its thaw starts (bash's
	# clock: no fork for a timestamp).
	for ((i = 1; i <= 8; i++)); do
		printf '#!/bin/bash
[ "$1" = thaw ] && echo "thaw $EPOCHREALTIME" >> %s/hook%d.log
[ "$1" = freeze ] && echo "frozen $EPOCHREALTIME" >> %s/hook%d.log
exit 0
' \
			"$W" "$i" "$W" "$i" >"$W/hooks8/h$i"
		chmod 755 "$W/hooks8/h$i"
	done
	cp "$W/hooks8/h1" "$W/hooks1/h1"
	sock=$W/s.sock
	# start_writerd HOOKDIR: a daemon with those hooks.
	start_writerd() {
		conf=$W/conf
		printf '[vsswriterd]\nhook-dir = %s\n' "$1" >"$conf"
		vsswriterd --foreground -c "$conf" --socket "$sock" --state-dir "$W/state" \
			>>"$raw/writerd.log" 2>&1 &
		dpid=$!
		for ((k = 0; k < 100; k++)); do
			VSS_WRITERD_SOCKET=$sock "$VSSCTL" writers >/dev/null 2>&1 && break
			sleep 0.05
		done
	}
	stop_writerd() { kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; }
	# start_procs N: N writer processes, all back-end (one round).
	start_procs() {
		for ((i = 1; i <= $1; i++)); do
			rm -f "$W/p$i.ready"
			"$test_writer" --name "p$i" --class back-end --path "$W/m" --socket "$sock" \
				--log "$W/p$i.log" --ready "$W/p$i.ready" 2>>"$raw/writers.err" &
			wpids+=($!)
		done
		for ((i = 1; i <= $1; i++)); do
			for ((k = 0; k < 200; k++)); do
				[ -e "$W/p$i.ready" ] && break
				sleep 0.05
			done
		done
	}
	stop_procs() {
		local p
		for p in "${wpids[@]}"; do kill "$p" 2>/dev/null; done
		for p in "${wpids[@]}"; do wait "$p" 2>/dev/null; done
		wpids=()
	}
	# one_set CFG REP: one set, recorded.
	one_set() {
		local cfg=$1 rep=$2 f=$raw/writers-$1-$2.json args=()
		[ "$cfg" = direct ] && args=(--direct)
		VSS_WRITERD_SOCKET=$sock "$test_requester" "${args[@]}" --socket "$sock" \
			--storage "$W/store" --limit 64M --volume /dev/bench/h1 --end complete \
			>"$f" 2>>"$raw/writers.err"
		if jq -e '.ok' "$f" >/dev/null 2>&1; then
			jq -c --arg cfg "$cfg" --arg rep "$rep" '{kind: "writers_run", config: $cfg, rep: $rep,
				warmup: ($rep == "0"),
				request_to_commit_us: ((.created_ns - .request_ns) / 1000 | floor),
				sequence_to_commit_us: ((.created_ns - .open_ns) / 1000 | floor),
				reply_us: ((.reply_ns - .request_ns) / 1000 | floor), hold_us: .hold_us,
				daemon_request_to_commit_us: .timing.request_to_commit_us,
				daemon_frozen_us: .timing.frozen_us, writers: (.writers | length)}' "$f" >>"$records"
		else
			log "writers $cfg #$rep failed: $(head -c 300 "$f")"
			rec "{\"kind\":\"error\",\"what\":\"writers $cfg $rep\"}"
		fi
		"$VSSCTL" delete --all >/dev/null 2>&1
	}
	# frozen_from_logs CFG FILES...: each freeze-to-thaw interval of the logs.
	frozen_from_logs() {
		local cfg=$1
		shift
		awk -v cfg="$cfg" '
			# Process writers log "NS frozen" / "NS thaw ..."; hooks "frozen S.US" / "thaw S.US".
			FNR == 1 { f = "" }
			$2 == "frozen" { f = $1 / 1000 } $1 == "frozen" { f = $2 * 1000000 }
			($2 == "thaw" || $1 == "thaw") && f != "" {
				t = ($2 == "thaw") ? $1 / 1000 : $2 * 1000000
				printf "{\"kind\":\"writers_frozen\",\"config\":\"%s\",\"frozen_us\":%d}\n", cfg, t - f
				f = ""
			}' "$@" >>"$records"
	}
	# Each configuration gets its daemon and writers once; its runs
	# alternate with the direct baseline's.
	for cfg in none proc-1 proc-8 hook-1 hook-8; do
		n=${cfg#*-}
		kind=${cfg%-*}
		case $cfg in
		none) start_writerd "$W/none" ;;
		proc-*) start_writerd "$W/none"; start_procs "$n" ;;
		hook-*) start_writerd "$W/hooks$n" ;;
		esac
		rm -f "$W"/hook*.log
		one_set "$cfg" 0	# a warm-up run, not counted
		for ((k = 1; k <= writer_reps; k++)); do
			one_set direct "$cfg-$k"
			one_set "$cfg" "$k"
		done
		case $kind in
		proc) frozen_from_logs "$cfg" "$W"/p*.log; stop_procs; rm -f "$W"/p*.log ;;
		hook) frozen_from_logs "$cfg" "$W"/hook*.log ;;
		esac
		stop_writerd
		log "writers $cfg: $(jq -rs --arg c "$cfg" '[.[] | select(.kind == "writers_run" and .config == $c and (.warmup | not)) | .request_to_commit_us] | sort | "request to commit, median \(.[length / 2 | floor] / 1000) ms of \(length) runs"' "$records")"
	done
	umount "$W/m"
	rm -rf "$W"
}

if want writers; then
	log "writers: request-to-commit and frozen time with 0, 1 and 8 writers (processes and hooks)"
	cleanup
	writers_phase
	cleanup
fi

# --- pgbench: a database through a backup ----------------------------------------------

# PostgreSQL 15 on an ext4 LV of its own (what vda has left), pgbench
# (TPC-B-like, 4 clients, every transaction logged) for a fixed time. Each
# repetition runs it five times, in this order, a backup or a set START_AT
# seconds in; the diff storage is bench/store, a backup is tar of the
# mounted image into a file on another disk (an ext4 LV on vdb):
#   none         no backup;
#   fast-backup  vssctl exec with the writer started --checkpoint=fast
#                (pg_backup_start(label, true): every dirty buffer written
#                at once), tar at the caller's priority;
#   fast-hold    the same set through the same writer, but COMMAND only
#                sleeps as long as tar ran: the checkpoint's, the freeze's
#                and the snapshot's cost without the backup tool's;
#   nw-hold      vssctl exec --no-writers of bench/pg, sleeping as long:
#                the freeze and the copy-on-write alone, no checkpoint;
#   backup       what a user runs: the writer's default (a spread
#                checkpoint, which makes the backup longer: none and
#                backup run LONG_DUR seconds, the others DUR) and vssctl
#                exec --idle (tar at nice 19 in the idle I/O class);
#   live-idle    no set at all: the same tar at the same priority, of the
#                live data directory: what the backup tool costs by itself,
#                which a backup through any snapshot pays too.
# The window of each figure is vssctl exec's run (from its start to its
# end); for none, the same seconds of its run as the backup's window; and
# "around:MODE", the run's own seconds outside its window (from 2 s in to
# the backup's start, from 1 s after its end to 1 s before pgbench's), a
# baseline that the host's drift between runs does not touch ("around" is
# the backup's). Each
# window is cut in two as well: MODE/set, from vssctl exec's start to
# COMMAND's (the writers' prepare-snapshot with its checkpoint, the
# freeze, the commit), and MODE/cmd, COMMAND's run (the copy-on-write after
# the instant, and tar); and none:MODE, none:MODE/set and none:MODE/cmd
# are the no-backup run over the same seconds of its own run.
# Figures: transactions a second, latency p50, p99, max, and the longest
# time no transaction completed, from pgbench's log; the time vssctl exec
# took to give COMMAND the set (the writer's prepare-snapshot, with its
# checkpoint), COMMAND's own time, and the checkpoint the backup began
# with (from the server's log: its kind, buffers written, write and total
# seconds).
pgbench_phase() {
	local P=/tmp/bench-pg pgbin=/usr/lib/postgresql/15/bin k mode dpid wpid bpid rc
	local t_run0 t_end t_b0 t_b1 off0 off1 dur long_dur start_at=8 pg_reps hold_s cmd_s=10 w
	local t_none0=0 bytes has_label held frozen t_c0 t_c1 ckpt logpos checkpoint= wpid=
	local -a cmd
	local writer=$VSS_REPO/build/bin/vss-writer-postgresql
	# A spread checkpoint makes the backup longer: pgbench must outlast it.
	dur=45 long_dur=70
	if [ -n "$quick" ]; then pg_reps=1; else pg_reps=3; fi
	[ -x "$pgbin/postgres" ] && [ -x "$pgbin/pgbench" ] && [ -x "$writer" ] || {
		log "pgbench: needs postgresql-15 (scripts/deps.sh) and $writer (make tools)"
		rec '{"kind":"error","what":"pgbench: postgresql-15 or the writer missing"}'
		return 1
	}
	as_pg() { su postgres -s /bin/sh -c "$*"; }
	rm -rf "$P"
	mkdir -p "$P/data" "$P/bak" "$P/run"
	if ! lvcreate -q -y -l 100%FREE -n pg bench "$disk1" >/dev/null ||
		! lvcreate -q -y -L 1G -n bak bench "$disk2" >/dev/null ||
		! mkfs.ext4 -q -F /dev/bench/pg || ! mkfs.ext4 -q -F /dev/bench/bak ||
		! mount /dev/bench/pg "$P/data" || ! mount /dev/bench/bak "$P/bak"; then
		rec '{"kind":"error","what":"pgbench: LVs"}'
		return 1
	fi
	chown postgres: "$P/data" "$P/run" "$P/bak"
	if ! as_pg "$pgbin/initdb -D $P/data/main" >"$raw/pg-initdb.log" 2>&1 ||
		! as_pg "$pgbin/pg_ctl -D $P/data/main -l $P/run/pg.log -w -t 300 -o '-c unix_socket_directories=$P/run -c listen_addresses= -c shared_buffers=64MB -c max_wal_size=64MB -c min_wal_size=32MB -c log_checkpoints=on' start" >/dev/null ||
		! as_pg "$pgbin/pgbench -h $P/run -i -q -s 3 postgres" >"$raw/pgbench-init.log" 2>&1; then
		log "pgbench: the server did not start: $(tail -3 "$P/run/pg.log" 2>/dev/null)"
		rec '{"kind":"error","what":"pgbench: server"}'
		return 1
	fi
	as_pg "psql -h $P/run -X -q -c 'VACUUM ANALYZE' -c CHECKPOINT postgres" >/dev/null 2>&1
	log "pgbench: $(df -h --output=size,used "$P/data" | tail -n1 | awk '{print $2 " of " $1}') of bench/pg used after pgbench -i -s 3"
	printf '[vsswriterd]\nstep-timeout = 30s\n' >"$P/writerd.conf"
	vsswriterd --foreground -c "$P/writerd.conf" >>"$raw/pg-writerd.log" 2>&1 &
	dpid=$!
	for ((k = 0; k < 100; k++)); do "$VSSCTL" writers >/dev/null 2>&1 && break; sleep 0.1; done
	# pg_writer CHECKPOINT: the writer running with --checkpoint
	# CHECKPOINT ("" for its default), restarted if need be.
	pg_writer() {
		local k	# not the caller's repetition counter
		[ "$checkpoint" = "${1:-default}" ] && kill -0 "$wpid" 2>/dev/null && return 0
		if [ -n "$wpid" ]; then
			kill "$wpid" 2>/dev/null
			wait "$wpid" 2>/dev/null
		fi
		echo "--- the writer, checkpoint ${1:-default}" >>"$raw/pg-writer.log"
		"$writer" --conninfo "host=$P/run dbname=postgres user=postgres" ${1:+--checkpoint "$1"} \
			>>"$raw/pg-writer.log" 2>&1 &
		wpid=$!
		checkpoint=${1:-default}
		for ((k = 0; k < 100; k++)); do
			"$VSSCTL" --json writers 2>/dev/null |
				jq -e --argjson p "$wpid" '.[] | select(.name == "postgresql") | .connected and .pid == $p' \
				>/dev/null && break
			sleep 0.1
		done
	}
	# window_stats MODE REP LOGDIR FROM_US TO_US [EXTRA-JSON [FROM2_US TO2_US]]:
	# the record of one window (or of two, as one).
	window_stats() {
		local n extra=${6:-} c=${7:-0} d=${8:-0}
		[ -n "$extra" ] || extra='{}'
		cat "$3"/tx* 2>/dev/null |
			awk -v a="$4" -v b="$5" -v c="$c" -v d="$d" '{ t = $5 * 1000000 + $6
				if ((t >= a && t <= b) || (t >= c && t <= d)) print $3, t }' >"$P/win"
		n=$(wc -l <"$P/win")
		if [ "$n" = 0 ]; then
			log "pgbench $1 #$2: no transaction in the window ($(tail -n2 "$3/pgbench.out"))"
			rec "{\"kind\":\"error\",\"what\":\"pgbench $1 $2: no transactions\"}"
			return 1
		fi
		cut -d' ' -f1 "$P/win" | sort -n >"$P/lat"
		cut -d' ' -f2 "$P/win" | sort -n >"$P/done"
		jq -cn --arg mode "$1" --argjson rep "$2" --argjson n "$n" \
			--argjson window_us "$(($5 - $4 + d - c))" \
			--argjson p50 "$(awk -v n="$n" 'NR == int(n * 0.50) + 1' "$P/lat")" \
			--argjson p99 "$(awk -v n="$n" 'NR == int(n * 0.99) + 1' "$P/lat")" \
			--argjson max "$(tail -n1 "$P/lat")" \
			--argjson gap "$(awk -v a="$4" -v b="$5" -v c="$c" -v d="$d" 'BEGIN { p = a; q = c }
				$1 <= b { if ($1 - p > m) m = $1 - p; p = $1; next }
				{ if ($1 - q > m) m = $1 - q; q = $1 }
				END { if (b - p > m) m = b - p; if (d > c && d - q > m) m = d - q; print m + 0 }' "$P/done")" \
			--argjson tps_run "$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$3/pgbench.out" | head -n1 | grep . || echo null)" \
			--argjson extra "$extra" \
			'{kind: "pgbench", mode: $mode, rep: $rep, transactions: $n, window_us: $window_us,
			  tps: ($n / ($window_us / 1e6)), lat_p50_us: $p50, lat_p99_us: $p99, lat_max_us: $max,
			  max_gap_us: $gap, tps_whole_run: $tps_run} + $extra' >>"$records"
		log "pgbench $1 #$2: $(tail -n1 "$records" | jq -r '"\(.tps | floor) tps over \(.window_us / 1e6) s, latency p50 \(.lat_p50_us / 1000) ms, p99 \(.lat_p99_us / 1000) ms, max \(.lat_max_us / 1000) ms, longest gap \(.max_gap_us / 1000) ms"')"
	}
	# pg_run MODE REP: one pgbench run, logged into $P/log-MODE.
	pg_run() {
		local d=$P/log-$1
		rm -rf "$d"
		install -d -o postgres "$d"
		case $1 in
		fast-*) pg_writer fast ;;
		backup) pg_writer "" ;;
		esac
		t_run0=$(($(date +%s%N) / 1000))
		w=$dur
		case $1 in none | backup) w=$long_dur ;; esac
		as_pg "cd $d && $pgbin/pgbench -h $P/run -c 4 -j 2 -T $w -l --log-prefix=$d/tx postgres" \
			>"$d/pgbench.out" 2>&1 &
		bpid=$!
		sleep "$start_at"
		if [ "$1" = none ]; then
			t_none0=$t_run0
			wait "$bpid"
			return 0
		fi
		rm -f "$P/bak/pg.tar" "$P/cmd.t0" "$P/cmd.t1"
		# COMMAND (sh -c SCRIPT DIR ...) notes its own start and end.
		case $1 in
		*backup) cmd=(tar -cf "$P/bak/pg.tar" -C /run/vss/exec .) ;;
		# tar exits 1 for files that changed as it read them.
		live-idle) cmd=(tar -cf "$P/bak/pg.tar" --warning=no-file-changed -C "$P/data" .) ;;
		*) cmd=(sleep "$hold_s") ;;
		esac
		# shellcheck disable=SC2016
		local timed='date +%s%N >"$0/cmd.t0"; "$@"; r=$?; date +%s%N >"$0/cmd.t1"; exit $r'
		logpos=$(stat -c %s "$P/run/pg.log")
		t_b0=$(($(date +%s%N) / 1000))
		case $1 in
		nw-hold) "$VSSCTL" exec --no-writers --storage "$store" /dev/bench/pg -- sh -c "$timed" "$P" "${cmd[@]}" ;;
		backup) "$VSSCTL" exec --storage "$store" --idle -- sh -c "$timed" "$P" "${cmd[@]}" ;;
		# What vssctl exec --idle sets (vssctl/priority.c).
		live-idle) nice -n 19 ionice -c 3 sh -c "$timed" "$P" "${cmd[@]}"; [ $? -le 1 ] ;;
		*) "$VSSCTL" exec --storage "$store" -- sh -c "$timed" "$P" "${cmd[@]}" ;;
		esac >"$raw/pg-exec-$1-$2.out" 2>&1
		rc=$?
		t_b1=$(($(date +%s%N) / 1000))
		wait "$bpid"
		t_end=$(($(date +%s%N) / 1000))
		[ "$rc" = 0 ] || { log "pgbench: vssctl exec ($1 #$2) failed: $(tail -n3 "$raw/pg-exec-$1-$2.out")"
			rec "{\"kind\":\"error\",\"what\":\"pgbench: vssctl exec $1 $2\"}"; }
		# pgbench must outlast the backup, or its window holds idle time.
		[ "$t_b1" -lt "$((t_end - 500000))" ] || log "pgbench $1 #$2: WARNING: the backup outlasted pgbench"
		bytes=$(stat -c %s "$P/bak/pg.tar" 2>/dev/null || echo 0)
		has_label=$(tar -tf "$P/bak/pg.tar" 2>/dev/null | grep -c 'main/backup_label$')
		t_c0=$(($(cat "$P/cmd.t0" 2>/dev/null || echo 0) / 1000))
		t_c1=$(($(cat "$P/cmd.t1" 2>/dev/null || echo 0) / 1000))
		# The backup's checkpoint: the first to start and complete after
		# vssctl exec began (nw-hold asks for none: whatever it finds is
		# the server's own).
		ckpt=$(tail -c +"$((logpos + 1))" "$P/run/pg.log" | awk '
			/checkpoint starting:/ { s = $0; sub(/.*checkpoint starting: /, "", s) }
			/checkpoint complete:/ && s != "" { c = $0; sub(/.*checkpoint complete: /, "", c)
				printf "%s\t%s\n", s, c; exit }')
		# vsswriterd's own figures for this set.
		held=$(sed -n 's/.* created (writes held \([0-9]*\) us, writers frozen \([0-9]*\) us).*/\1/p' "$raw/pg-writerd.log" | tail -n1)
		frozen=$(sed -n 's/.* created (writes held \([0-9]*\) us, writers frozen \([0-9]*\) us).*/\2/p' "$raw/pg-writerd.log" | tail -n1)
		case $1 in nw-hold | live-idle) held='' frozen='' ;; esac
		off0=$((t_b0 - t_run0))
		off1=$((t_b1 - t_run0))
		window_stats "$1" "$2" "$P/log-$1" "$t_b0" "$t_b1" "$(jq -cn --argjson rc "$rc" \
			--argjson bytes "$bytes" --argjson lab "${has_label:-0}" \
			--argjson held "${held:-null}" --argjson frozen "${frozen:-null}" \
			--argjson inside "$([ "$t_b1" -lt "$((t_end - 500000))" ] && echo true || echo false)" \
			--argjson set_us "$([ "$t_c0" -gt 0 ] && echo $((t_c0 - t_b0)) || echo null)" \
			--argjson cmd_us "$([ "$t_c0" -gt 0 ] && [ "$t_c1" -gt 0 ] && echo $((t_c1 - t_c0)) || echo null)" \
			--arg ckpt "$ckpt" \
			'{exec_rc: $rc, tar_bytes: $bytes, backup_label: ($lab > 0), inside_run: $inside,
			  writes_held_us: $held, writers_frozen_us: $frozen, set_us: $set_us, command_us: $cmd_us,
			  checkpoint: (if $ckpt == "" then null else ($ckpt | split("\t") |
				{kind: .[0],
				 buffers: ((.[1] | capture("wrote (?<n>[0-9]+) buffers") | .n | tonumber)? // null),
				 write_s: ((.[1] | capture("write=(?<s>[0-9.]+) s") | .s | tonumber)? // null),
				 total_s: ((.[1] | capture("total=(?<s>[0-9.]+) s") | .s | tonumber)? // null)}) end)}')"
		# The window in two, and the no-backup run over the same
		# seconds of its own run.
		window_stats "none:$1" "$2" "$P/log-none" "$((t_none0 + off0))" "$((t_none0 + off1))" \
			"{\"offset_us\":$off0}"
		if [ "$1" != live-idle ] && [ "$t_c0" -gt "$t_b0" ] && [ "$t_c1" -gt "$t_c0" ]; then
			window_stats "$1/set" "$2" "$P/log-$1" "$t_b0" "$t_c0"
			window_stats "$1/cmd" "$2" "$P/log-$1" "$t_c0" "$t_c1"
			window_stats "none:$1/set" "$2" "$P/log-none" "$((t_none0 + off0))" "$((t_none0 + t_c0 - t_run0))"
			window_stats "none:$1/cmd" "$2" "$P/log-none" "$((t_none0 + t_c0 - t_run0))" \
				"$((t_none0 + t_c1 - t_run0))"
		fi
		# The run outside its window (around:MODE; around for the
		# backup), and "none", the target's baseline.
		window_stats "around:$1" "$2" "$P/log-$1" "$((t_run0 + 2000000))" "$t_b0" '{}' \
			"$((t_b1 + 1000000))" "$((t_end - 1000000))"
		if [ "$1" = backup ]; then
			window_stats around "$2" "$P/log-$1" "$((t_run0 + 2000000))" "$t_b0" '{}' \
				"$((t_b1 + 1000000))" "$((t_end - 1000000))"
			window_stats none "$2" "$P/log-none" "$((t_none0 + off0))" "$((t_none0 + off1))" \
				"{\"offset_us\":$off0}"
		fi
		# How long tar itself ran: the holds after it sleep as long.
		case $1 in *backup) [ "$t_c0" -gt 0 ] && [ "$t_c1" -gt 0 ] &&
			cmd_s=$(( (t_c1 - t_c0 + 500000) / 1000000 )) ;; esac
		"$VSSCTL" delete --all >/dev/null 2>&1
	}
	for ((k = 1; k <= pg_reps; k++)); do
		pg_run none "$k"
		pg_run fast-backup "$k"
		hold_s=$((cmd_s > 1 ? cmd_s : 1))
		pg_run fast-hold "$k"
		pg_run nw-hold "$k"
		pg_run backup "$k"
		pg_run live-idle "$k"
	done
	kill "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	kill "$dpid" 2>/dev/null
	wait "$dpid" 2>/dev/null
	as_pg "$pgbin/pg_ctl -D $P/data/main -m fast -w stop" >/dev/null 2>&1
	cp "$P/run/pg.log" "$raw/pg-server.log" 2>/dev/null
	umount "$P/data" "$P/bak"
	# A device's changed-block tracking outlives its last snapshot, and
	# holds the device open.
	"$VSSCTL" untrack /dev/bench/pg >/dev/null 2>&1
	# udev's blkid may still hold an LV just unmounted.
	udevadm settle 2>/dev/null
	for ((k = 0; k < 20; k++)); do
		lvremove -q -y bench/pg bench/bak >/dev/null 2>&1 && break
		sleep 0.5
	done
	[ "$k" -lt 20 ] || { log "pgbench: cannot remove bench/pg, bench/bak: $(lvremove -q -y bench/pg bench/bak 2>&1)"
		rec '{"kind":"error","what":"pgbench: lvremove"}'; }
	rm -rf "$P"
}

if want pgbench; then
	log "pgbench: TPS and latency with no backup and through a backup with the PostgreSQL writer"
	cleanup
	pgbench_phase
	cleanup
fi

# --- the same-volume store: against a store on another disk and dm-snapshot ---------

# Item 7 of issue 19. The origin, bench/orig on vda, holds an ext4
# filesystem, and fio writes a file of the region's size in it (written
# once in full before anything is measured, so that its blocks are
# allocated and O_DIRECT writes to it are plain overwrites). Each
# repetition runs four configurations on that one file, each snapshot
# taken just before its first writes (every chunk of the file is copied
# once), then rewrites of the copied region, as the random-write matrix
# does:
#   none     no snapshot (before each of the three others: "adjacent");
#   vss      vss, the store on another disk (bench/store on vdb);
#   samevol  vss, a same-volume store: a directory on that filesystem,
#            so its pinned file lies on bench/orig itself, on vda;
#   dm       dm-snapshot of bench/orig, its exception store on vdb.
# The order of the three alternates from one repetition to the next.
# Then rewrites side by side (the method of phase pairs): two ext4 LVs
# of the same size on vda, one with a same-volume snapshot whose chunks
# have all been copied, the other with no snapshot, written at once; which
# LV carries the snapshot alternates. They are smaller than bench/orig
# (what vda has left), so their file is too.
sv_mkfs() {
	# 4 KiB blocks whatever the size; no discard (it would undo the
	# preconditioning); inode tables and journal written now, not by
	# ext4lazyinit in the background of a measurement; no blocks reserved
	# for root, so that the store's bound (half the free space) is plain.
	mkfs.ext4 -q -F -b 4096 -m 0 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$1" &&
		mkdir -p "$2" && mount -o noatime "$1" "$2" && mkdir -p "$2/vss"
}

# sv_file PATH SIZE: a file written once in full, committed.
sv_file() {
	fio --name=sv-fill --filename="$1" --rw=write --bs=1M --iodepth=4 --size="$2" \
		--ioengine=libaio --direct=1 --output=/dev/null >/dev/null 2>"$raw/sv-fill.err" &&
		sync -f "$1"
}

# sv_limit MOUNT WANT: WANT, or less when the filesystem's bound (half its
# free space) is lower; in bytes.
sv_limit() {
	local half
	half=$(stat -f -c '%a %S' "$1" | awk '{ printf "%d", $1 * $2 / 2 }')
	half=$(( (half - (1 << 20)) >> 20 << 20 ))
	echo $(( $2 < half ? $2 : half ))
}

# sv_state WHAT: the snapshots' state and their store's kind and use.
sv_state() {
	"$VSSCTL" --json list 2>/dev/null | jq -c --arg what "$1" \
		'{kind: "vss_state", what: $what, snapshots: length,
		  failed: [.[] | select(.state != "active")] | length,
		  storage_kind: (map(.storage.kind) | unique | join(",")),
		  storage_used: (map(.storage.used) | max),
		  storage_size: (map(.storage.size) | max),
		  storage_limit: (map(.storage.limit) | max)}' >>"$records"
	if [ "$(tail -n1 "$records" | jq .failed)" != 0 ]; then
		log "WARNING: failed vss snapshots after $1: $("$VSSCTL" list 2>&1 | tail -n +2 | head -c 300)"
	fi
}

# sv_config IMPL REP: one configuration on $sv_data (see above).
sv_config() {
	local impl=$1 rep=$2 r
	TEST=sv-randwrite IMPL=none SNAPS=0 CHUNK=0 PHASE=rewrite REP=$rep DEV=$sv_data
	rand_write
	TEST=sv-randwrite IMPL=$impl SNAPS=1 CHUNK=65536 REP=$rep DEV=$sv_data
	case $impl in
	vss) vss_take 1 64K "$orig" || { cleanup; return 1; } ;;
	samevol)
		take_store=$sv_mnt/vss
		take_opts=(--storage-limit "$sv_store_limit")
		vss_take 1 64K "$orig"
		r=$?
		take_store=''
		take_opts=()
		[ "$r" = 0 ] || { cleanup; return 1; }
		;;
	dm) dm_take 1 64K "$(dm_cow_size "$region_b")" || { cleanup; return 1; } ;;
	esac
	PHASE=first rand_write
	if [ "$impl" = dm ]; then dm_check "samevol $impl"; else sv_state "samevol $impl"; fi
	for ((r = 1; r <= rewrite_reps; r++)); do
		REP=$(( (rep - 1) * rewrite_reps + r ))
		PHASE=rewrite rand_write
	done
	cleanup
}

# sv_pairs: rewrites of a same-volume snapshot's file beside a file with
# no snapshot (pair_rewrites' method, on bench/sva and bench/svb).
sv_pairs() {
	local k r snapped plain lv limit
	# The pairs' region: what a 124 MiB filesystem holds with a store of
	# its size beside it, under the store's bound.
	local region=32M
	for lv in sva svb; do
		lvcreate -q -y -L 124M -n "$lv" bench "$disk1" >/dev/null &&
			sv_mkfs "/dev/bench/$lv" "$SV/$lv" && sv_file "$SV/$lv/$lv" "$region" || {
			log "samevol: cannot make bench/$lv and its file"
			rec '{"kind":"error","what":"samevol: pair filesystems"}'
			return 1
		}
	done
	limit=$(sv_limit "$SV/sva" $(( (32 + 8) << 20 )))
	log "samevol pairs: ${region} files, same-volume store limit $((limit >> 20)) MiB"
	for ((k = 1; k <= ${VSS_BENCH_SAMEVOL_PAIR_REPS:-$pair_reps}; k++)); do
		if ((k % 2)); then snapped=sva plain=svb; else snapped=svb plain=sva; fi
		TEST=sv-pair-prep IMPL=samevol SNAPS=1 CHUNK=65536 PHASE=first REP=$k DEV=$SV/$snapped/$snapped
		take_store=$SV/$snapped/vss
		take_opts=(--storage-limit "$limit")
		if vss_take 1 64K "/dev/bench/$snapped"; then
			rand_write
			sv_state "samevol pair rewrites"
			for ((r = 1; r <= pair_runs; r++)); do
				pair_fio sv-rewrite "$k" "$r" samevol "$SV/$snapped/$snapped" none "$SV/$plain/$plain"
			done
		fi
		take_store=''
		take_opts=()
		cleanup
		"$VSSCTL" untrack "/dev/bench/$snapped" >/dev/null 2>&1
	done
}

samevol_phase() {
	SV=/tmp/bench-sv
	sv_mnt=$SV/orig
	sv_data=$sv_mnt/data
	local k impl order lv
	rm -rf "$SV"
	if ! sv_mkfs "$orig" "$sv_mnt" || ! sv_file "$sv_data" "$region"; then
		log "samevol: cannot make the filesystem on $orig or its file"
		rec '{"kind":"error","what":"samevol: filesystem"}'
		umount "$sv_mnt" 2>/dev/null
		return 1
	fi
	# The region's chunks, room for the journal's and the inodes' own
	# first writes, within the bound.
	sv_store_limit=$(sv_limit "$sv_mnt" $((region_b + region_b / 8 + (16 << 20))))
	rec "$(jq -cn --argjson limit "$sv_store_limit" --argjson file "$region_b" \
		--arg df "$(df -k --output=size,avail "$sv_mnt" | tail -n1)" \
		'{kind: "samevol_setup", store_limit: $limit, file_bytes: $file, df_kb: $df}')"
	log "samevol: ${region} file on ext4 on $orig, same-volume store limit $((sv_store_limit >> 20)) MiB"
	for ((k = 1; k <= ${VSS_BENCH_SAMEVOL_REPS:-$reps}; k++)); do
		order="vss samevol dm"
		((k % 2)) || order="dm samevol vss"
		for impl in $order; do
			sv_config "$impl" "$k"
		done
	done
	umount "$sv_mnt"
	sv_pairs
	for lv in sva svb; do
		umount "$SV/$lv" 2>/dev/null
		[ -e "/dev/bench/$lv" ] || continue
		# udev's blkid may still hold an LV just unmounted.
		udevadm settle 2>/dev/null
		for ((k = 0; k < 20; k++)); do
			lvremove -q -y "bench/$lv" >/dev/null 2>&1 && break
			sleep 0.5
		done
		[ "$k" -lt 20 ] || rec "{\"kind\":\"error\",\"what\":\"samevol: lvremove $lv\"}"
	done
	rm -rf "$SV"
}

if want samevol; then
	log "same-volume store: first writes and rewrites on ext4, against a store on another disk and dm-snapshot"
	cleanup
	samevol_phase
	cleanup
fi

# --- memory -----------------------------------------------------------------------------

if want mem; then
	log "kernel memory: 16 snapshots, then $mem_write of first writes"
	meminfo mem-before snaps=0
	meminfo mem-idle snaps=0	# nothing done in between: the noise floor
	TEST=mem IMPL=vss SNAPS=16 CHUNK=65536 PHASE=first REP=1 DEV=$orig
	if vss_take 16 64K "$orig"; then
		meminfo mem-created snaps=16
		fio_run write --bs=1M --iodepth=4 --size="$mem_write" --io_size="$mem_write"
		vss_check "mem"
		meminfo mem-written snaps=16 "chunks_copied=$((mem_write_b / 65536))"
	fi
	cleanup
	meminfo mem-deleted snaps=0
fi

# --- done ------------------------------------------------------------------------------------

log "done"
jq -s '{records: .}' "$records" >"$out.tmp" && mv "$out.tmp" "$out"
vgremove -q -f bench >/dev/null 2>&1
exit 0
