# Shared by every tests/<program>.bats: bats-support and bats-assert from Debian, the built
# programs first on PATH, numpy's python, and the checks every program's --help must pass.
bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
PETCNN_BIN=${PETCNN_BIN:-$TOP/bin}
PATH="$PETCNN_BIN:$PATH"
# Debian's python3 carries python3-numpy/-pil/-torch; a pyenv python3 first on PATH does not.
PY=${PETCNN_PYTHON:-/usr/bin/python3}
FIXTURES=$TOP/tests/fixtures

# py 'code' [args...]: run python with numpy imported as np.
py() {
	local code=$1
	shift
	"$PY" -c "import sys, numpy as np
$code" "$@"
}

# The conventions of DESIGN.md every program keeps: --help and --version on stdout with
# exit 0; an unknown option is exit 2, a message naming the program, nothing on stdout.
check_conventions() {
	local prog=$1
	run --separate-stderr "$prog" --help
	assert_success
	assert_line --index 0 --regexp "^Usage: $prog "
	assert_output --partial "Example"
	# one wording for the options every program shares
	assert_output --regexp "-h, --help +show this help and exit"
	assert_output --regexp "--version +show the version and exit"
	[ -z "$stderr" ]
	run --separate-stderr "$prog" --version
	assert_success
	assert_output --regexp "^$prog \(petcnn\) [0-9]"
	run --separate-stderr "$prog" --no-such-option
	assert_failure 2
	assert_output ''
	[[ $stderr == "$prog: "* ]] || fail "stderr does not start with '$prog: ': $stderr"
	[[ $stderr == *"Try '$prog --help'"* ]] || fail "no 'Try --help' hint: $stderr"
}

# isa_paths: the PETCNN_ISA values this CPU supports (from /proc/cpuinfo, not from our own
# code, so a bug in its detection cannot hide a path): generic, then avx2, then avx512.
isa_paths() {
	local flags
	flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
	echo generic
	if [[ " $flags " == *" avx2 "* && " $flags " == *" fma "* ]]; then
		echo avx2
		[[ " $flags " == *" avx512f "* ]] && echo avx512
	fi
	return 0
}
