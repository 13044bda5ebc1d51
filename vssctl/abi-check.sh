#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The ABI check of libvss, run by the Makefile after every link of the
# shared library (see "ABI rules" in libvss.h):
#
#   abi-check.sh SHLIB SYMBOLS VERSION HEADER OBJECT...
#
# Fails, naming each function and what to do, when
#   - a function of HEADER is not exported (VSS_EXPORT, listed in
#     libvss.map), or an exported one is not declared in HEADER;
#   - a VSS_EXPORT function of the objects is in no version node of
#     libvss.map (the map's "local: *" would hide it);
#   - an exported function is missing from SYMBOLS (debian/libvss1.symbols)
#     or listed there under another node, or SYMBOLS lists one that is gone;
#   - the functions of one node carry different versions in SYMBOLS (one was
#     added to the node of an earlier release: it needs a new node), or a
#     version newer than VERSION, the version being built.
set -eu

[ $# -ge 5 ] || { echo "usage: abi-check.sh SHLIB SYMBOLS VERSION HEADER OBJECT..." >&2; exit 2; }
shlib=$1 symbols=$2 version=$3 header=$4
shift 4
soname=${shlib##*/}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/abi-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

[ -r "$symbols" ] || { echo "abi-check: $symbols is missing: it records the ABI of $soname" >&2; exit 1; }

# name@node of every function the library exports.
nm -D --defined-only "$shlib" |
	awk '$2 == "T" || $2 == "W" { n = $3; sub(/@@?/, "@", n); print n }' |
	LC_ALL=C sort -u >"$tmp/exported"
sed 's/@.*//' "$tmp/exported" | LC_ALL=C sort -u >"$tmp/exported.names"
# Functions of default visibility in the objects: what VSS_EXPORT marks.
for o in "$@"; do
	readelf -sW "$o" | awk '$4 == "FUNC" && $5 == "GLOBAL" && $6 == "DEFAULT" && $7 != "UND" { print $8 }'
done | LC_ALL=C sort -u >"$tmp/marked"
# Functions HEADER declares: a line that starts a declaration and names
# vss_something( (typedefs of function pointers excluded).
grep -E '^[a-z][a-z0-9_ ]*[ *]vss_[a-z0-9_]+\(' "$header" | grep -v '^typedef' |
	sed -E 's/^[^(]*[ *](vss_[a-z0-9_]+)\(.*/\1/' | LC_ALL=C sort -u >"$tmp/declared"

fail=0
problem() { echo "abi-check: $*" >&2; fail=1; }

for f in $(LC_ALL=C comm -23 "$tmp/marked" "$tmp/exported.names"); do
	problem "$f is VSS_EXPORT but in no version node of libvss.map, so it is not exported: add a new node for it (see the comment at the top of libvss.map)"
done
for f in $(LC_ALL=C comm -23 "$tmp/declared" "$tmp/exported.names"); do
	problem "$f is declared in ${header##*/} but not exported: mark it VSS_EXPORT and list it in a new node of libvss.map"
done
for f in $(LC_ALL=C comm -13 "$tmp/declared" "$tmp/exported.names"); do
	problem "$f is exported but not declared in ${header##*/}"
done

# SYMBOLS: "SONAME PACKAGE #MINVER#", then " name@NODE VERSION" lines (and
# "NODE@NODE VERSION" for each node).
first=$(sed -n '1p' "$symbols")
case $first in
"$soname "*) ;;
*) problem "$symbols is for '${first%% *}', the library is $soname: a new soname needs its own symbols file" ;;
esac
awk 'NR > 1 && /^ / { print $1, $2 }' "$symbols" | LC_ALL=C sort -u >"$tmp/recorded"
awk '{ split($1, a, "@"); if (a[1] != a[2]) print $1 }' "$tmp/recorded" >"$tmp/recorded.functions"
for f in $(LC_ALL=C comm -23 "$tmp/exported" "$tmp/recorded.functions"); do
	name=${f%@*} node=${f#*@}
	if grep -q "^$name@" "$tmp/recorded.functions"; then
		problem "$name is in node $node of libvss.map but under $(grep "^$name@" "$tmp/recorded.functions" | sed 's/.*@//') in $symbols: a function never changes node"
	else
		problem "$name@$node is not in $symbols: add \" $name@$node $version\" (and \" $node@$node $version\" for a new node)"
	fi
done
for f in $(LC_ALL=C comm -13 "$tmp/exported" "$tmp/recorded.functions"); do
	grep -q "^${f%@*}@" "$tmp/exported" ||
		problem "${f%@*} is in $symbols but no longer exported: functions are never removed (that needs a new soname)"
done
# One version per node, no newer than this one, and every node recorded.
awk '{ split($1, a, "@"); print a[2], $2, a[1] }' "$tmp/recorded" >"$tmp/by-node"
for node in $(awk '{ print $1 }' "$tmp/by-node" | LC_ALL=C sort -u); do
	versions=$(awk -v n="$node" '$1 == n { print $2 }' "$tmp/by-node" | LC_ALL=C sort -u)
	if [ "$(echo "$versions" | wc -l)" -gt 1 ]; then
		oldest=$(echo "$versions" | sort -V | head -n1)
		problem "node $node mixes versions $(echo "$versions" | tr '\n' ' ')in $symbols: it shipped in $oldest and is frozen; $(awk -v n="$node" -v v="$oldest" '$1 == n && $2 != v { printf "%s ", $3 }' "$tmp/by-node")must go into a new node"
	fi
	for v in $versions; do
		[ "$(printf '%s\n%s\n' "$v" "$version" | sort -V | tail -n1)" = "$version" ] ||
			problem "node $node has version $v in $symbols, newer than the $version being built"
	done
	awk -v n="$node" '$1 == n && $3 == n { f = 1 } END { exit !f }' "$tmp/by-node" ||
		problem "$symbols lacks the line \" $node@$node $(echo "$versions" | head -n1)\""
done
for node in $(nm -D --defined-only "$shlib" | awk '$2 == "A" { print $3 }'); do
	grep -q "^ $node@$node " "$symbols" ||
		problem "node $node of libvss.map is not in $symbols"
done

[ "$fail" = 0 ] || { echo "abi-check: $soname: the ABI rules of ${header##*/} are broken (see above)" >&2; exit 1; }
