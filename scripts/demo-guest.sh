#!/bin/bash
# The guest half of make demo; see scripts/demo.sh.
set -euo pipefail
export PATH=$VSS_REPO/build/bin:$VSS_REPO/build/selftests:$PATH
read -r origin store _ <<<"$VSS_DISKS"

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
