#!/bin/bash
# make demo: the main job, in a test VM. A raw disk is overwritten front to
# back, pass after pass; while that goes on, vssctl takes a snapshot of it,
# lists it, shows that the image holds one instant of the writer (and keeps
# holding it while the writer goes on), and deletes it. Then an
# application (a writer on libvsswriter) and a hook are frozen and thawed
# by vsswriterd around a set of their filesystem.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
make -s -C selftests O="$repo/build" >/dev/null
exec scripts/vm-run --kernel "${VSS_KERNEL:-6.12}" --disk 256M --disk 512M --disk 64M \
	-- scripts/demo-guest.sh
