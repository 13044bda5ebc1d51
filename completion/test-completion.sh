#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host test of completion/vssctl, as an interactive shell uses it (needs
# Debian's bash-completion): vssctl exec's options, their arguments, and
# COMMAND's own completion after "--". TAP on stdout.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -r /usr/share/bash-completion/bash_completion ]; then
	echo "1..0 # SKIP needs bash-completion"
	exit 0
fi

# complete_words LINE: the candidates bash would offer at the end of LINE.
complete_words() {
	bash -c '. /usr/share/bash-completion/bash_completion
		. "$2"
		read -ra COMP_WORDS <<<"$1"
		[[ $1 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) COMP_LINE=$1 COMP_POINT=${#1}
		_vssctl vssctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$1" "$here/vssctl" 2>/dev/null
}

n=0 failures=0
# expect NAME LINE WORD...: every WORD is offered at the end of LINE.
expect() {
	local name=$1 line=$2 got w ok=1
	shift 2
	got=$(complete_words "$line")
	for w in "$@"; do grep -qxF -- "$w" <<<"$got" || ok=0; done
	n=$((n + 1))
	if [ $ok = 1 ]; then echo "ok $n - $name"; else
		echo "not ok $n - $name"; echo "# \"$line\" gave: $(tr '\n' ' ' <<<"$got")"; failures=$((failures + 1)); fi
}
# refuse NAME LINE WORD: WORD is not offered.
refuse() {
	local got
	got=$(complete_words "$2")
	n=$((n + 1))
	if ! grep -qxF -- "$3" <<<"$got"; then echo "ok $n - $1"; else
		echo "not ok $n - $1"; failures=$((failures + 1)); fi
}

echo "1..13"
expect "the other commands still complete" "vssctl cr" create
expect "exec is a command" "vssctl ex" exec
expect "exec: the create options" "vssctl exec --st" --storage --storage-limit
expect "exec: its own options" "vssctl exec -" --mount --mount-options --keep --idle --no-writers \
	--writer-volumes --queue-timeout --hold-limit --label --no-freeze --chunk-size --help --
expect "exec: short options" "vssctl exec -" -m -o -k -s -l -c -L -n -t -w -q -h
refuse "exec: no --json (exec has none)" "vssctl exec --j" --json
expect "exec --mount: directories" "vssctl exec --mount /t" /tmp
refuse "exec --mount: not files" "vssctl exec --mount /etc/host" /etc/hostname
expect "exec --mount-options: filesystem types" "vssctl exec -o " ext4: xfs:
expect "exec --storage: paths" "vssctl exec --storage /t" /tmp
expect "exec after --: COMMAND is a command" "vssctl exec -k -- ta" tar
expect "exec after --: COMMAND's own options (tar)" "vssctl exec -k /dev/null -- tar --crea" --create
refuse "exec after --: not vssctl's options" "vssctl exec -- ls --kee" --keep
exit $((failures > 0))
