#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vssctl end to end, in the VM: commands, --json, id prefixes, delete
# variants, exit codes, the bad-input matrix (each case gets a clear
# error and changes nothing), module unload (refused while snapshots
# exist or devices are tracked) and "module not loaded".
# Run as root, and once more unprivileged (only the privilege cases run).
#
# Disks: 0: origin (32M)  1: storage block device (256M)  2: origin (32M)
set -u

repo=${VSS_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
export PATH=$repo/build/bin:$PATH
read -r -a disks <<<"${VSS_DISKS:-}"
# shellcheck source=selftests/tap.sh
. "$repo/selftests/tap.sh"

count() { vssctl --json list 2>/dev/null | jq 'length'; }

if [ "$(id -u)" != 0 ]; then
	echo "1..6"
	expect_error 4 'permission|CAP_SYS_ADMIN' "create without privilege: exit 4" \
		vssctl create --storage /tmp --storage-limit 16M /dev/null
	expect_error 4 'permission|CAP_SYS_ADMIN' "delete --all without privilege: exit 4" \
		vssctl delete --all
	expect_error 4 'permission|CAP_SYS_ADMIN' "delete by id without privilege: exit 4" \
		vssctl delete 00000000-0000-0000-0000-000000000001
	expect_error 4 'permission|CAP_SYS_ADMIN' "monitor without privilege: exit 4" \
		vssctl monitor --count 1 --timeout 5
	expect 0 "list works without privilege" vssctl list
	expect 0 "version works without privilege" vssctl version
	exit $((failures > 0))
fi

if [ ${#disks[@]} -lt 3 ]; then
	echo "1..0 # SKIP needs three scratch disks"
	exit 0
fi
origin=${disks[0]} store=${disks[1]} origin2=${disks[2]}
echo "1..50"

# --- version ------------------------------------------------------------------
expect 0 "version" vssctl version
vssctl --json version >"$out" 2>"$err"
if jq -e '.module.version and .module.protocol == 1 and .vssctl and .libvss' "$out" >/dev/null; then
	tap OK "version --json has tool, library, module version and protocol"
else
	tap FAIL "version --json has tool, library, module version and protocol" "$(cat "$out")"
fi

# --- create, list, show -------------------------------------------------------
vssctl --json create --storage "$store" --no-freeze --label first "$origin" >"$out" 2>"$err"
rc=$?
set_id=$(jq -r '.set_id' "$out" 2>/dev/null)
snap_id=$(jq -r '.snapshots[0].id' "$out" 2>/dev/null)
image=$(jq -r '.snapshots[0].image.path // ("/dev/" + .snapshots[0].image.name)' "$out" 2>/dev/null)
hold_us=$(jq -r '.hold_us' "$out" 2>/dev/null)
# Writes were held for a measured time under the default hold limit (10 s).
if [ "$rc" = 0 ] && [ -b "$image" ] && [[ $set_id =~ ^[0-9a-f-]{36}$ ]] &&
	jq -e '(.hold_us | type) == "number" and .hold_us > 0 and .hold_us < 10000000' "$out" >/dev/null; then
	tap OK "create --json: set id, hold_us and an image block device"
else
	tap FAIL "create --json: set id, hold_us and an image block device" "rc $rc: $(cat "$out")"
fi
expect 0 "list" vssctl list
if grep -q "${snap_id:0:8}" "$out" && grep -q active "$out"; then
	tap OK "list shows the snapshot, active"
else
	tap FAIL "list shows the snapshot, active" "$(cat "$out")"
fi
vssctl --json list "$origin" >"$out" 2>"$err"
if jq -e --arg id "$snap_id" 'length == 1 and .[0].id == $id and .[0].state == "active" and .[0].storage.limit > 0' "$out" >/dev/null; then
	tap OK "list DEV --json"
else
	tap FAIL "list DEV --json" "$(cat "$out")"
fi
expect 0 "show by an 8-character prefix" vssctl show "${snap_id:0:8}"
grep -q "$snap_id" "$out" && tap OK "show prints the full id" || tap FAIL "show prints the full id"
vssctl --json show "${snap_id:0:6}" >"$out" 2>"$err"
jq -e --arg l first --argjson hold "${hold_us:-null}" '.label == $l and .hold_us == $hold' "$out" >/dev/null &&
	tap OK "show --json has the label and the hold time create reported" ||
	tap FAIL "show --json has the label and the hold time create reported" "hold_us ${hold_us:-none}: $(cat "$out")"
expect_error 5 'no such snapshot|not found' "show an unknown id: exit 5" vssctl show ffffffff

# --- bad input: clear error, nothing changes ------------------------------------
before=$(count)
expect_error 2 '/dev/null' "create on a character device: exit 2 naming it" \
	vssctl create --storage "$store" /dev/null
expect_error 2 '/etc/passwd' "create on a regular file: exit 2 naming it" \
	vssctl create --storage "$store" /etc/passwd
expect_error 2 '/dev/null' "create on a character device: exit 2 naming it" \
	vssctl create --storage "$store" /dev/null
expect_error 5 '/dev/nonexistent' "create on a missing path: exit 5 naming it" \
	vssctl create --storage "$store" /dev/nonexistent
expect_error 2 'twice|duplicate' "the same device twice: exit 2" \
	vssctl create --storage "$store" "$origin2" "$origin2"
expect_error 2 '12Q|size' "bad size suffix: exit 2" \
	vssctl create --storage /tmp --storage-limit 12Q "$origin2"
expect_error 2 'chunk' "chunk size not a power of two: exit 2" \
	vssctl create --storage "$store" --chunk-size 12K "$origin2"
expect_error 2 'chunk|1.5M|size' "fractional size: exit 2" \
	vssctl create --storage "$store" --chunk-size 1.5M "$origin2"
expect_error 8 'storage' "storage on a snapshotted device: exit 8" \
	vssctl create --storage "$origin" --no-freeze "$origin2"
expect_error 8 'storage' "storage on a device of the set: exit 8" \
	vssctl create --storage "$origin2" --no-freeze "$origin2"
expect_error 2 'usage|device' "create with no device: exit 2" vssctl create --storage "$store"
expect_error 2 'unknown|unrecognized|invalid' "unknown option: exit 2" vssctl create --bogus "$origin2"
expect_error 2 'unknown|command' "unknown command: exit 2" vssctl frobnicate
after=$(count)
[ "$before" = "$after" ] && tap OK "bad input changed nothing ($after snapshots)" ||
	tap FAIL "bad input changed nothing" "$before before, $after after"

# --- ambiguous prefixes: 17 snapshots share some first hex digit ---------------
for i in $(seq 1 16); do
	vssctl create --storage "$store" --no-freeze "$origin2" >/dev/null 2>"$err" || break
done
dup=$(vssctl --json list | jq -r '.[].id[0:1]' | sort | uniq -d | head -n1)
if [ -n "$dup" ]; then
	expect_error 7 'ambiguous' "an ambiguous prefix: exit 7" vssctl show "$dup"
	expect_error 7 'ambiguous' "delete with an ambiguous prefix: exit 7, nothing deleted" vssctl delete "$dup"
else
	tap FAIL "an ambiguous prefix: exit 7" "no shared first digit among $(count) ids"
	tap FAIL "delete with an ambiguous prefix"
fi
[ "$(count)" = 17 ] && tap OK "17 snapshots listed" || tap FAIL "17 snapshots listed" "$(count)"

# --- delete variants ------------------------------------------------------------
oldest=$(vssctl --json list "$origin2" | jq -r 'min_by(.index) | .id')
expect 0 "delete --oldest DEV" vssctl delete --oldest "$origin2"
vssctl --json list | jq -e --arg id "$oldest" 'all(.id != $id)' >/dev/null &&
	tap OK "--oldest removed the oldest of that device" || tap FAIL "--oldest removed the oldest"
two=$(vssctl --json list "$origin2" | jq -r '.[0:2][].id' | tr '\n' ' ')
# shellcheck disable=SC2086
expect 0 "delete two ids at once" vssctl delete $two
[ "$(count)" = 14 ] && tap OK "two fewer" || tap FAIL "two fewer" "$(count) left"
expect 0 "delete --set" vssctl delete --set "$set_id"
[ -z "$(vssctl --json list "$origin" | jq -r '.[].id')" ] && tap OK "--set removed its snapshots" ||
	tap FAIL "--set removed its snapshots"
expect_error 5 'no such|not found' "delete an unknown id: exit 5" vssctl delete 0000
expect_error 5 'no such|not found' "delete --set unknown: exit 5" vssctl delete --set 12345678
expect 0 "delete --all" vssctl delete --all
[ "$(count)" = 0 ] && tap OK "nothing left" || tap FAIL "nothing left" "$(count)"

# --- an open image --------------------------------------------------------------
vssctl --json create --storage "$store" --no-freeze "$origin" >"$out" 2>"$err"
snap_id=$(jq -r '.snapshots[0].id' "$out")
image=$(jq -r '.snapshots[0].image.path // ("/dev/" + .snapshots[0].image.name)' "$out")
exec 5<"$image"
expect_error 6 'open|busy' "delete an open image: exit 6" vssctl delete "$snap_id"
[ "$(count)" = 1 ] && tap OK "the open image is still there" || tap FAIL "the open image is still there"
expect 0 "delete --force an open image" vssctl delete --force "$snap_id"
if dd if=/dev/fd/5 of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then
	tap FAIL "its opener gets I/O errors"
else
	tap OK "its opener gets I/O errors"
fi
exec 5<&-

# --- events ---------------------------------------------------------------------
vssctl --json monitor --count 2 --timeout 30 >"$out" 2>"$err" &
mon=$!
sleep 1
vssctl --json create --storage "$store" --no-freeze "$origin" >/dev/null 2>&1
vssctl delete --all >/dev/null 2>&1
wait $mon
if [ "$(wc -l <"$out")" = 2 ] && jq -s -e '.[0].event == "snapshot-created" and .[1].event == "snapshot-deleted"' "$out" >/dev/null 2>&1; then
	tap OK "monitor --json: one object per event"
else
	tap FAIL "monitor --json: one object per event" "$(cat "$out")"
fi

# --- exec --idle: COMMAND at idle priority, vssctl itself not ----------------------
# Without writers (no vsswriterd here): the set of one unmounted origin.
# shellcheck disable=SC2016
prio_cmd='echo "$(cut -d" " -f19 /proc/self/stat) $(ionice)"'
vssctl exec --no-writers --no-freeze --storage "$store" --idle "$origin" -- sh -c "$prio_cmd" >"$out" 2>"$err"
rc=$?
if [ "$rc" = 0 ] && [ "$(tail -n1 "$out")" = "19 idle" ] && [ "$(count)" = 0 ]; then
	tap OK "exec --idle: COMMAND runs at nice 19 in the idle I/O class, the set is deleted"
else
	tap FAIL "exec --idle: COMMAND runs at nice 19 in the idle I/O class, the set is deleted" \
		"rc $rc: $(tail -n1 "$out") $(tail -n2 "$err")"
fi
vssctl exec --no-writers --no-freeze --storage "$store" "$origin" -- sh -c "$prio_cmd" >"$out" 2>"$err"
rc=$?
if [ "$rc" = 0 ] && [ "$(tail -n1 "$out" | cut -d' ' -f1)" = "$(cut -d' ' -f19 /proc/self/stat)" ] &&
	! grep -q idle "$out"; then
	tap OK "exec without --idle: COMMAND keeps vssctl's priorities"
else
	tap FAIL "exec without --idle: COMMAND keeps vssctl's priorities" "rc $rc: $(tail -n1 "$out")"
fi

# --- unloading ------------------------------------------------------------------
vssctl create --storage "$store" --no-freeze "$origin" >/dev/null 2>&1
if rmmod vss 2>/dev/null; then
	tap FAIL "rmmod refused while a snapshot exists"
	insmod "$repo/build/$VSS_KVER/vss.ko"
else
	tap OK "rmmod refused while a snapshot exists"
fi
vssctl delete --all >/dev/null 2>&1
# A device stays tracked after its snapshots go, and holds the module.
if rmmod vss 2>/dev/null; then
	tap FAIL "rmmod refused while devices are tracked"
	insmod "$repo/build/$VSS_KVER/vss.ko"
else
	tap OK "rmmod refused while devices are tracked"
fi
expect 0 "untrack the first origin" vssctl untrack "$origin"
expect 0 "untrack the second origin" vssctl untrack "$origin2"
if rmmod vss; then
	expect_error 3 'not loaded' "module not loaded: exit 3" vssctl list
	insmod "$repo/build/$VSS_KVER/vss.ko"
else
	tap FAIL "rmmod once nothing is snapshotted or tracked"
fi
expect 0 "reloaded" vssctl version

rm -f "$out" "$err"
exit $((failures > 0))
