#!/bin/bash
# The guest half of make demo; see scripts/demo.sh.
set -euo pipefail
export PATH=$VSS_REPO/build/bin:$VSS_REPO/build/selftests:$PATH
read -r origin store appdisk _ <<<"$VSS_DISKS"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "the tool talks to the module"
run vssctl version

step "a writer overwrites $origin front to back, again and again"
vss_passes write "$origin" &
writer=$!
trap 'kill $writer 2>/dev/null || true' EXIT
sleep 4
run vss_passes check "$origin"

step "take a snapshot of $origin while it is being written"
json=$(vssctl --json create --storage "$store" --label demo "$origin")
image=$(jq -r '.snapshots[0].image.path' <<<"$json")
id=$(jq -r '.snapshots[0].id' <<<"$json")
printf 'created %s as %s; writes were held for %s microseconds\n' \
	"$id" "$image" "$(jq -r '.hold_us' <<<"$json")"

step "list it"
run vssctl list

step "the image holds one instant of the writer"
run vss_passes check "$image"

step "the writer goes on; the origin moves, the image does not"
sleep 4
run vss_passes check "$origin"
run vss_passes check "$image"
run vssctl show "${id:0:8}"

step "delete it"
kill $writer
wait $writer 2>/dev/null || true
run vssctl delete "${id:0:8}"
run vssctl list

# --- an application, frozen and thawed around the set ---------------------------

[ -b "${appdisk:-}" ] || exit 0
W=$(mktemp -d /tmp/demo-writers.XXXXXX)
daemon= app=
trap 'kill $app $daemon 2>/dev/null || true; umount "$W/data" 2>/dev/null || true' EXIT
mkdir -p "$W/data" "$W/hooks" "$W/image"
mkfs.ext4 -q -F "$appdisk"
mount "$appdisk" "$W/data"

step "vsswriterd coordinates the applications (writers) around each set"
# A hook writer: an executable told every step as its argument.
printf '#!/bin/sh\necho "  $(date +%%H:%%M:%%S.%%N | cut -c1-12) hook 10-cache: $1" >> %s\n' \
	"$W/events.log" >"$W/hooks/10-cache"
chmod 755 "$W/hooks/10-cache"
printf '[vsswriterd]\nhook-dir = %s\n' "$W/hooks" >"$W/vsswriterd.conf"
vsswriterd --foreground -c "$W/vsswriterd.conf" 2>"$W/vsswriterd.log" &
daemon=$!
sleep 0.5
# An application on libvsswriter: it appends a numbered line to its data
# file every 5 ms, and stops (after an fsync) while it is frozen.
vss_test_writer --name appdb --class back-end --path "$W/data" --data "$W/data/app.data" \
	--log "$W/writer.log" --ready "$W/ready" 2>/dev/null &
app=$!
while [ ! -e "$W/ready" ]; do sleep 0.1; done
sleep 1
run vssctl writers

step "take a set of $appdisk: the application and the hook are frozen just around it"
: >"$W/events.log"
start=$(date +%s%N)
run vssctl create --storage "$store" "$appdisk"
echo "what the application went through (ms after the command started):"
awk -v s="$start" '$2 ~ /^(prepare-backup|prepare-snapshot|freeze|frozen|thaw|post-snapshot|data-stopped|data-resumed)$/ {
	printf "  +%7.1f ms  appdb: %s %s\n", ($1 - s) / 1e6, $2, ($2 ~ /^data/ ? $3 : "") }' "$W/writer.log"
echo "and the hook:"
cat "$W/events.log"
frozen=$(awk '$2 == "frozen" { f = $1 } $2 == "thaw" && f { printf "%.1f", ($1 - f) / 1e6; exit }' "$W/writer.log")
stopped=$(awk '$2 == "data-stopped" { sub("seq=", "", $3); print $3; exit }' "$W/writer.log")
echo "the application was frozen for $frozen ms, after line $stopped of its data"

step "the image holds the application's data exactly as it stood when frozen"
image=$(vssctl --json list "$appdisk" | jq -r '.[0].image.path // ("/dev/" + .[0].image.name)')
mount -o ro,noload "$image" "$W/image"
printf 'last line in the image:  %s\n' "$(tail -n1 "$W/image/app.data")"
printf 'last line in the origin: %s (the application went on)\n' "$(tail -n1 "$W/data/app.data")"
umount "$W/image"

step "the backup is done: the writers are told, and are stable again"
set_id=$(vssctl --json list "$appdisk" | jq -r '.[0].set_id')
run vssctl backup-complete "${set_id:0:8}"
run vssctl delete --set "${set_id:0:8}"
