#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vssctl's changed-block tracking commands against the real module, in the
# VM: track and untrack, cbt info, cbt changes (--from/--to a snapshot or a
# point, until now, JSON checked with jq against what was written, at block
# granularity), mark-dirty and image writes, the error cases and their exit
# codes (2 usage, 4 not root, 5 not tracked, 9 full backup required, 10
# already tracked), and cbt save / rmmod / insmod / cbt restore keeping the
# generation and the answers across a module reload, while a write between
# save and restore gives a new generation and says why.
#
# Disks: 0: origin (64M)  1: origin (32M)  2: storage block device (256M)
#
# "COND && tap OK || tap FAIL" is safe here: tap OK always succeeds. jq
# filters are in single quotes on purpose. cleanup runs from the EXIT trap.
# shellcheck disable=SC2015,SC2016,SC2317
set -u

repo=${VSS_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
export PATH=$repo/build/bin:$PATH
read -r -a disks <<<"${VSS_DISKS:-}"
# shellcheck source=selftests/tap.sh
. "$repo/selftests/tap.sh"
state=$(mktemp -d)
KiB=1024
MiB=$((1024 * KiB))

# check NAME [JQ ARGS...] JQ-FILTER: the filter holds on the last output.
check() {
	local name=$1
	shift
	if jq -e "$@" "$out" >/dev/null 2>&1; then
		tap OK "$name"
	else
		tap FAIL "$name" "${*: -1} on: $(head -c 400 "$out")"
	fi
}

nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

# write_at DEV OFFSET LENGTH: random bytes, O_DIRECT (sector-aligned).
write_at() {
	dd if=/dev/urandom of="$1" bs="$3" count=1 seek="$2" \
		oflag=direct,seek_bytes conv=notrunc status=none
}

# extents DEV FROM [TO]: the JSON extents as "offset+length ..." lines.
extents() {
	local dev=$1 from=$2 to=${3:-}
	vssctl --json cbt changes "$dev" --from "$from" ${to:+--to "$to"} >"$out" 2>"$err" &&
		jq -r '[.extents[] | "\(.offset)+\(.length)"] | join(" ")' "$out"
}

# snap DEV: a snapshot; prints its id, and its point to $point.
snap() {
	vssctl --json create --storage "$store" --no-freeze "$1" >"$out" 2>"$err" || return 1
	jq -r '.snapshots[0].id' "$out"
}
point_of() { vssctl --json show "$1" 2>/dev/null | jq -r '.cbt_point'; }
generation_of() { vssctl --json cbt info "$1" 2>/dev/null | jq -r '.generation'; }

cleanup() {
	vssctl delete --all --force >/dev/null 2>&1
	for d in "${disks[@]:0:2}"; do vssctl untrack "$d" >/dev/null 2>&1; done
	rm -rf "$out" "$err" "$state"
}

if [ "$(id -u)" != 0 ] || [ ${#disks[@]} -lt 3 ]; then
	echo "1..0 # SKIP needs root and three scratch disks (run under scripts/vm-run)"
	exit 0
fi
trap cleanup EXIT
a=${disks[0]} b=${disks[1]} store=${disks[2]}
a_bytes=$(blockdev --getsize64 "$a")

# --- nothing tracked ------------------------------------------------------------
expect 0 "cbt info with nothing tracked" vssctl cbt info
[ ! -s "$out" ] && tap OK "... prints nothing" || tap FAIL "... prints nothing" "$(cat "$out")"
expect 0 "cbt info --json with nothing tracked" vssctl --json cbt info
check "... is []" 'length == 0'
expect_error 5 'not tracked' "cbt info of an untracked device: exit 5" vssctl cbt info "$a"
expect_error 5 'not tracked' "untrack of an untracked device: exit 5" vssctl untrack "$a"

# --- track, untrack -------------------------------------------------------------
expect 0 "track" vssctl track "$a"
grep -qE "generation [0-9a-f-]{36}, block size 4KiB" "$out" &&
	tap OK "track prints the generation and the block size" ||
	tap FAIL "track prints the generation and the block size" "$(cat "$out")"
expect_error 10 'already tracked' "track again: exit 10" vssctl track "$a"
expect 0 "track --json" vssctl --json track "$b"
check "track --json: a new generation at point 0, 4 KiB blocks, the device's size" \
	--argjson size "$(blockdev --getsize64 "$b")" \
	'(.generation | test("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))
	 and .seq == 0 and .oldest_seq == 0 and .block_size == 4096 and .size == $size
	 and .point == (.generation + ":0") and .device.path == "'"$b"'"'
expect 0 "cbt info DEV" vssctl cbt info "$a"
grep -q "^generation: *$(generation_of "$a")" "$out" && grep -q '^block size: *4KiB' "$out" &&
	tap OK "cbt info DEV: generation and block size" ||
	tap FAIL "cbt info DEV: generation and block size" "$(cat "$out")"
expect 0 "cbt info --json DEV" vssctl --json cbt info "$a"
check "cbt info --json DEV: every field" --argjson size "$a_bytes" \
	'.size == $size and .block_size == 4096 and .seq == 0 and .map_bytes > 0
	 and .started_ns > 0 and (.started | test("Z$")) and .oldest_point == .point'
expect 0 "cbt info --json of every device" vssctl --json cbt info
check "... lists both, in device order" \
	'length == 2 and .[0].device.path == "'"$a"'" and .[1].device.path == "'"$b"'"'
expect 0 "cbt info: a table" vssctl cbt info
head -n1 "$out" | grep -q '^DEVICE *GENERATION' && [ "$(grep -cE "^($a|$b) " "$out")" = 2 ] &&
	tap OK "... with a line per device" || tap FAIL "... with a line per device" "$(cat "$out")"
expect 0 "untrack" vssctl untrack "$b"
expect 0 "untrack --json of the other" vssctl --json untrack "$a"
check "untrack --json says tracked: false" '.tracked == false'
expect 0 "cbt info after untrack" vssctl --json cbt info
check "... nothing tracked" 'length == 0'

# --- bad input: usage 2, not found 5 -------------------------------------------
expect_error 2 'no device' "track without a device: exit 2" vssctl track
expect_error 2 'unexpected' "track with two devices: exit 2" vssctl track "$a" "$b"
expect_error 2 '/dev/null' "track a character device: exit 2 naming it" vssctl track /dev/null
expect_error 5 '/dev/nonexistent' "track a missing path: exit 5 naming it" vssctl track /dev/nonexistent
expect_error 2 'unknown|unrecognized|invalid' "track --bogus: exit 2" vssctl track --bogus "$a"
expect_error 2 'subcommand|what to do' "cbt frobnicate: exit 2" vssctl cbt frobnicate
expect_error 2 'subcommand|what to do' "cbt alone: exit 2" vssctl cbt
expect 0 "cbt info --json with nothing tracked still []" vssctl --json cbt info
check "bad input tracked nothing" 'length == 0'

# --- not root: 4, but cbt info works -----------------------------------------
vssctl track "$a" >/dev/null 2>&1
expect_error 4 'permission|CAP_SYS_ADMIN' "track as nobody: exit 4" nobody vssctl track "$b"
expect_error 4 'permission|CAP_SYS_ADMIN' "untrack as nobody: exit 4" nobody vssctl untrack "$a"
expect_error 4 'permission|CAP_SYS_ADMIN' "cbt changes as nobody: exit 4" \
	nobody vssctl cbt changes "$a" --from "$(generation_of "$a"):0"
expect_error 4 'permission|CAP_SYS_ADMIN' "cbt mark-dirty as nobody: exit 4" \
	nobody vssctl cbt mark-dirty "$a" 0 4K
expect_error 4 'permission|CAP_SYS_ADMIN' "cbt save as nobody: exit 4" \
	nobody vssctl cbt save --dir "$state" "$a"
expect_error 4 'permission|CAP_SYS_ADMIN' "cbt restore as nobody: exit 4" \
	nobody vssctl cbt restore --dir "$state"
expect 0 "cbt info as nobody" nobody vssctl --json cbt info "$a"
check "... answers" '.block_size == 4096'
expect 0 "the device is still tracked after all that" vssctl cbt info "$a"
vssctl untrack "$a" >/dev/null 2>&1

# --- changes between snapshots, at block granularity ----------------------------
s1=$(snap "$a")
p1=$(point_of "$s1")
gen=$(generation_of "$a")
[ -n "$s1" ] && [ "$p1" = "$gen:1" ] &&
	tap OK "the first snapshot starts tracking; its point is GEN:1" ||
	tap FAIL "the first snapshot starts tracking; its point is GEN:1" "snap $s1 point $p1 generation $gen"
write_at "$a" $((1 * MiB)) 4096                 # one block
write_at "$a" $((5 * MiB + 2 * KiB)) 8192       # unaligned: three blocks
write_at "$a" $((10 * MiB + 512)) 512           # one sector: its block
write_at "$a" $((20 * MiB)) 4096                # two touching writes:
write_at "$a" $((20 * MiB + 4 * KiB)) 4096      #   one extent
write_at "$a" $((a_bytes - 4096)) 4096          # the last block
s2=$(snap "$a")
p2=$(point_of "$s2")
want="$((1 * MiB))+4096 $((5 * MiB))+12288 $((10 * MiB))+4096 $((20 * MiB))+8192 $((a_bytes - 4096))+4096"
got=$(extents "$a" "$s1" "$s2")
[ "$got" = "$want" ] && tap OK "changes --from SNAP --to SNAP: exactly the written blocks" ||
	tap FAIL "changes --from SNAP --to SNAP: exactly the written blocks" "got '$got', want '$want'"
check "... with totals, points and block size" --arg p1 "$p1" --arg p2 "$p2" --arg gen "$gen" \
	'.extent_count == 5 and .total_bytes == 32768 and .block_size == 4096
	 and .from == $p1 and .to == $p2 and .generation == $gen and .device.path == "'"$a"'"'
got=$(extents "$a" "$p1" "$p2")
[ "$got" = "$want" ] && tap OK "changes --from POINT --to POINT: the same" ||
	tap FAIL "changes --from POINT --to POINT: the same" "got '$got'"
got=$(extents "$a" "${s1:0:8}" "${s2:0:8}")
[ "$got" = "$want" ] && tap OK "changes with snapshot id prefixes: the same" ||
	tap FAIL "changes with snapshot id prefixes: the same" "got '$got'"
got=$(extents "$a" "$p1" "$p1")
[ -z "$got" ] && jq -e '.extent_count == 0 and .total_bytes == 0' "$out" >/dev/null &&
	tap OK "changes from a point to itself: none" || tap FAIL "changes from a point to itself: none" "got '$got'"
expect 0 "changes in text" vssctl cbt changes "$a" --from "$s1" --to "$s2"
grep -qE "^$((5 * MiB)) +12288$" "$out" && tail -n1 "$out" | grep -q "^5 extents, 32768 bytes" &&
	tap OK "... one line per extent and a total" || tap FAIL "... one line per extent and a total" "$(cat "$out")"
write_at "$a" $((30 * MiB)) 4096
got=$(extents "$a" "$s2")
[ "$got" = "$((30 * MiB))+4096" ] && jq -e '.to == null' "$out" >/dev/null &&
	tap OK "changes --from SNAP until now: what was written since" ||
	tap FAIL "changes --from SNAP until now: what was written since" "got '$got'"
got=$(extents "$a" "$p1")
[ "$got" = "${want% *} $((30 * MiB))+4096 ${want##* }" ] &&
	tap OK "changes --from an older point until now: the union" ||
	tap FAIL "changes --from an older point until now: the union" "got '$got'"

# --- mark-dirty and image writes ---------------------------------------------
expect 0 "mark-dirty" vssctl cbt mark-dirty "$a" 40M 1
expect 0 "mark-dirty --json, unaligned" vssctl --json cbt mark-dirty "$a" $((44 * MiB + 100)) 5000
check "... echoes the range" '.offset == 46137444 and .length == 5000'
got=$(extents "$a" "$s2")
[ "$got" = "$((30 * MiB))+4096 $((40 * MiB))+4096 $((44 * MiB))+8192" ] &&
	tap OK "marked ranges show up, rounded out to blocks" ||
	tap FAIL "marked ranges show up, rounded out to blocks" "got '$got'"
image2=$(vssctl --json show "$s2" | jq -r '.image.path')
write_at "$image2" $((50 * MiB)) 4096
got=$(extents "$a" "$s1" "$s2")
[ "$got" = "${want% *} $((50 * MiB))+4096 ${want##* }" ] &&
	tap OK "a write to a snapshot's image shows up before its point..." ||
	tap FAIL "a write to a snapshot's image shows up before its point..." "got '$got'"
got=$(extents "$a" "$s2")
[[ " $got " == *" $((50 * MiB))+4096 "* ]] && tap OK "... and after it" ||
	tap FAIL "... and after it" "got '$got'"
expect_error 2 'zero|length' "mark-dirty of zero bytes: exit 2" vssctl cbt mark-dirty "$a" 0 0
expect_error 2 'past|end|range|Numerical' "mark-dirty past the end: exit 2" \
	vssctl cbt mark-dirty "$a" "$a_bytes" 4096
expect_error 2 '12Q' "mark-dirty with a bad size: exit 2" vssctl cbt mark-dirty "$a" 12Q 1
expect_error 2 'give DEV' "mark-dirty without a length: exit 2" vssctl cbt mark-dirty "$a" 0
expect_error 5 'not tracked' "mark-dirty of an untracked device: exit 5" \
	vssctl cbt mark-dirty "$b" 0 4096

# --- changes: bad input ------------------------------------------------------
sb=$(snap "$b")
expect_error 2 'from' "changes without --from: exit 2" vssctl cbt changes "$a"
expect_error 2 'xyz' "changes --from neither id nor point: exit 2" vssctl cbt changes "$a" --from xyz
expect_error 2 'invalid point' "changes --from a malformed point: exit 2" \
	vssctl cbt changes "$a" --from "$gen:x"
expect_error 5 'no such snapshot' "changes --from an unknown snapshot: exit 5" \
	vssctl cbt changes "$a" --from 0000000
expect_error 2 "is of $b" "changes --from a snapshot of another device: exit 2" \
	vssctl cbt changes "$a" --from "$sb"
expect_error 2 'after' "changes --from after --to: exit 2" \
	vssctl cbt changes "$a" --from "$s2" --to "$s1"
expect_error 2 'reached|not yet|point' "changes --to a point not reached yet: exit 2" \
	vssctl cbt changes "$a" --from "$p1" --to "$gen:999"
expect_error 9 'full backup' "changes --from a point of another device's generation: exit 9" \
	vssctl cbt changes "$a" --from "$(point_of "$sb")"
expect_error 9 'full backup' "changes between points of two generations: exit 9" \
	vssctl cbt changes "$a" --from "$p1" --to "$(point_of "$sb")"
expect_error 5 'not tracked' "changes of an untracked device: exit 5" \
	vssctl cbt changes "$store" --from "$p1"

# --- a new generation: exit 9 ------------------------------------------------
vssctl delete --all >/dev/null 2>&1
vssctl untrack "$a" >/dev/null 2>&1
vssctl track "$a" >/dev/null 2>&1
[ "$(generation_of "$a")" != "$gen" ] && tap OK "untrack and track: a new generation" ||
	tap FAIL "untrack and track: a new generation"
expect_error 9 'another generation.*full backup' "changes --from a point of the old one: exit 9" \
	vssctl cbt changes "$a" --from "$p1" --to "$p2"
expect_error 9 'full backup' "... also until now: exit 9" vssctl cbt changes "$a" --from "$p1"

# --- save, rmmod, insmod, restore --------------------------------------------
vssctl untrack "$a" >/dev/null 2>&1
vssctl untrack "$b" >/dev/null 2>&1
s1=$(snap "$a")
write_at "$a" $((3 * MiB)) 4096
write_at "$a" $((7 * MiB + 1536)) 1024
s2=$(snap "$a")
p1=$(point_of "$s1") p2=$(point_of "$s2")
vssctl track "$b" >/dev/null 2>&1
write_at "$b" $((2 * MiB)) 4096
before=$(extents "$a" "$s1" "$s2")
before_b=$(extents "$b" "$(generation_of "$b"):0")
vssctl --json cbt info >"$out" 2>"$err"
info_before=$(jq -c '[.[] | {generation, seq, oldest_seq, block_size, size}]' "$out")
[ "$before" = "$((3 * MiB))+4096 $((7 * MiB))+4096" ] && [ "$before_b" = "$((2 * MiB))+4096" ] &&
	tap OK "before the reload: the changes as written" ||
	tap FAIL "before the reload: the changes as written" "a: '$before' b: '$before_b'"
expect_error 6 'snapshots' "cbt save of a device with snapshots: exit 6" \
	vssctl cbt save --dir "$state" "$a"
[ -z "$(ls -A "$state")" ] && tap OK "... and nothing is saved" || tap FAIL "... and nothing is saved" "$(ls -A "$state")"
vssctl delete --all >/dev/null 2>&1
if rmmod vss 2>"$err"; then
	tap FAIL "rmmod is refused while devices are tracked"
	insmod "$repo/build/$VSS_KVER/vss.ko"
else
	tap OK "rmmod is refused while devices are tracked"
fi
expect_error 5 'not tracked' "cbt save of an untracked device: exit 5, nothing saved" \
	vssctl cbt save --dir "$state" "$a" "$store"
expect 0 "cbt info: both still tracked" vssctl --json cbt info
check "... two devices" 'length == 2'
expect 0 "cbt save --dir D DEV DEV" vssctl --json cbt save --dir "$state/maps" "$a" "$b"
check "... names both files" --arg d "$state/maps" \
	'(.saved | map(.file) | sort) == ([$d + "/'"${a#/dev/}"'.cbt", $d + "/'"${b#/dev/}"'.cbt"] | sort)
	 and (.failed | length) == 0'
[ "$(stat -c %a "$state/maps")" = 700 ] && [ "$(stat -c %a "$state/maps/${a#/dev/}.cbt")" = 600 ] &&
	tap OK "... in a 0700 directory, files 0600" ||
	tap FAIL "... in a 0700 directory, files 0600" "$(ls -la "$state/maps")"
expect_error 5 'not tracked' "a saved device is not tracked any more" vssctl cbt info "$a"
if rmmod vss 2>"$err"; then tap OK "rmmod once the maps are saved"; else tap FAIL "rmmod once the maps are saved"; fi
expect_error 3 'not loaded' "cbt info without the module: exit 3" vssctl cbt info
insmod "$repo/build/$VSS_KVER/vss.ko" 2>"$err" && tap OK "insmod" || tap FAIL "insmod"
expect 0 "cbt restore --dir D" vssctl --json cbt restore --dir "$state/maps"
check "... both continued, at their saved points" \
	'(.restored | length) == 2 and all(.restored[]; .verdict == "continued" and .reason == null
	 and .point == .saved_point) and (.failed | length) == 0'
[ -z "$(ls -A "$state/maps")" ] && tap OK "... and the files are gone" ||
	tap FAIL "... and the files are gone" "$(ls -A "$state/maps")"
vssctl --json cbt info >"$out" 2>"$err"
info_after=$(jq -c '[.[] | {generation, seq, oldest_seq, block_size, size}]' "$out")
# (Equal and empty would prove nothing: both devices must be in each.)
[ "$info_after" = "$info_before" ] &&
	jq -e 'length == 2 and all(.[]; .generation != null and (.seq | type) == "number" and .size > 0)' <<<"$info_before" >/dev/null &&
	tap OK "same generations, points and sizes after the reload" ||
	tap FAIL "same generations, points and sizes after the reload" "before $info_before after $info_after"
got=$(extents "$a" "$p1" "$p2")
[ "$got" = "$before" ] && tap OK "the same changes between the old points" ||
	tap FAIL "the same changes between the old points" "got '$got', want '$before'"
got=$(extents "$b" "$(generation_of "$b"):0")
[ "$got" = "$before_b" ] && tap OK "the same changes until now on the other device" ||
	tap FAIL "the same changes until now on the other device" "got '$got', want '$before_b'"
write_at "$a" $((9 * MiB)) 4096
got=$(extents "$a" "$p2")
[ "$got" = "$((9 * MiB))+4096" ] && tap OK "tracking goes on after the restore" ||
	tap FAIL "tracking goes on after the restore" "got '$got'"

# A write between save and restore: a new generation, with its reason.
gen_b=$(generation_of "$b")
expect 0 "cbt save" vssctl cbt save --dir "$state/maps" "$b"
grep -q "^saved $b to $state/maps/${b#/dev/}.cbt" "$out" && tap OK "... says where" ||
	tap FAIL "... says where" "$(cat "$out")"
write_at "$b" $((5 * MiB)) 4096
expect 0 "cbt restore FILE after a write" vssctl cbt restore "$state/maps/${b#/dev/}.cbt"
grep -q "new generation .*written while it was not tracked" "$out" &&
	tap OK "... a new generation, saying that the device was written untracked" ||
	tap FAIL "... a new generation, saying that the device was written untracked" "$(cat "$out")"
[ "$(generation_of "$b")" != "$gen_b" ] && [ ! -e "$state/maps/${b#/dev/}.cbt" ] &&
	tap OK "... the device has it, and the file is gone" ||
	tap FAIL "... the device has it, and the file is gone"
expect_error 9 'full backup' "... so changes from the saved generation: exit 9" \
	vssctl cbt changes "$b" --from "$gen_b:0"

# Restore errors: the file stays.
vssctl cbt save --dir "$state/maps" "$b" >/dev/null 2>&1
vssctl track "$b" >/dev/null 2>&1
expect_error 10 'already tracked' "cbt restore onto a tracked device: exit 10" \
	vssctl cbt restore --dir "$state/maps"
[ -e "$state/maps/${b#/dev/}.cbt" ] && tap OK "... the file stays" || tap FAIL "... the file stays"
vssctl untrack "$b" >/dev/null 2>&1
# Byte 40 is the first of the saved boot id: flipped, so that it changes
# whatever it was (writing a constant left it whole one boot in 256).
damaged=$state/maps/${b#/dev/}.cbt
byte=$(od -An -tu1 -j40 -N1 "$damaged" | tr -d ' ')
# shellcheck disable=SC2059 # the format is the escaped byte itself
printf "\\$(printf '%03o' $((byte ^ 255)))" |
	dd of="$damaged" bs=1 seek=40 conv=notrunc status=none
expect_error 1 'EBADMSG|corrupt|checksum|CRC' "cbt restore of a damaged file: exit 1" \
	vssctl cbt restore --dir "$state/maps"
[ -e "$state/maps/${b#/dev/}.cbt" ] && ! vssctl cbt info "$b" >/dev/null 2>&1 &&
	tap OK "... it stays, and the device is not tracked" ||
	tap FAIL "... it stays, and the device is not tracked"
expect 0 "cbt restore --dir of a missing directory: nothing to do" \
	vssctl cbt restore --dir "$state/none"
expect_error 2 'DEV|--all' "cbt save without a device: exit 2" vssctl cbt save --dir "$state/maps"
expect_error 2 'either' "cbt save DEV --all: exit 2" vssctl cbt save --all "$a"

# --- the end: everything untracked ---------------------------------------------
expect 0 "untrack" vssctl untrack "$a"
expect 0 "cbt info --json" vssctl --json cbt info
check "nothing tracked at the end" 'length == 0'

echo "1..$n"
exit $((failures > 0))
