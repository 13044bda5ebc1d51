# shellcheck shell=bash
# TAP output for the shell tests, sourced by each of them. Sets n and
# failures (the counts), out and err (the last command's output, in
# temporary files the caller removes). expect_error checks that the
# message starts with "$tap_program: " (default vssctl).

n=0
failures=0
out=$(mktemp)
err=$(mktemp)
tap_program=${tap_program:-vssctl}

tap() { # tap OK|FAIL NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" = OK ]; then
		echo "ok $n $2"
	else
		failures=$((failures + 1))
		echo "not ok $n $2"
		[ -z "${3:-}" ] || printf '# %s\n' "$3"
		sed 's/^/# stderr: /' "$err" | head -5
	fi
}

skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }

# expect CODE NAME CMD...: runs CMD, checks its exit code.
expect() {
	local want=$1 name=$2 rc
	shift 2
	"$@" >"$out" 2>"$err"
	rc=$?
	if [ "$rc" = "$want" ]; then tap OK "$name"; else tap FAIL "$name" "exit $rc, want $want"; fi
}

# expect_error CODE PATTERN NAME CMD...: exit code and a message naming why.
expect_error() {
	local want=$1 pattern=$2 name=$3 rc
	shift 3
	"$@" >"$out" 2>"$err"
	rc=$?
	if [ "$rc" = "$want" ] && grep -qE "$pattern" "$err" &&
		grep -q "^$tap_program: " "$err"; then
		tap OK "$name"
	else
		tap FAIL "$name" "exit $rc (want $want), stderr should match /$pattern/"
	fi
}
