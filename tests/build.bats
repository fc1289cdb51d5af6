#!/usr/bin/env bats
# The build's promises: `make install` puts every program and a man page made from its
# --help under DESTDIR/PREFIX, `make uninstall` takes them away, and header edits rebuild.
load helper

# Relative, as the Makefile's dependency files name objects relative to the top.
BUILD_DIR=$(realpath --relative-to="$TOP" "${PETCNN_BUILD:-$TOP/build}")
mk() { make -s -C "$TOP" BUILD="$BUILD_DIR" BIN="$PETCNN_BIN" "$@"; }

@test "build: install puts every program and its man page under DESTDIR/PREFIX" {
	dest=$BATS_TEST_TMPDIR/root
	run mk install DESTDIR="$dest" PREFIX=/opt/petcnn
	assert_success
	for src in "$TOP"/tools/*.c; do
		p=$(basename "$src" .c)
		[ -x "$dest/opt/petcnn/bin/$p" ] || fail "$p not installed"
		man=$dest/opt/petcnn/share/man/man1/$p.1
		[ -s "$man" ] || fail "no man page for $p"
		# NAME line is the --help's second line; every option of --help is in the page.
		grep -q "^$p \\\\- " "$man" || fail "man page of $p lacks its NAME line"
		opt=$("$PETCNN_BIN/$p" --help | grep -o -- '--[a-z][a-z-]*' | sort -u | tail -n 1)
		grep -q -- "${opt//-/\\\\-}" "$man" || grep -q -- "$opt" "$man" || fail "man page of $p lacks $opt"
	done
	run "$dest/opt/petcnn/bin/tensor-info" --version
	assert_success
	run mk uninstall DESTDIR="$dest" PREFIX=/opt/petcnn
	assert_success
	[ -z "$(find "$dest" -type f)" ] || fail "uninstall left: $(find "$dest" -type f)"
}

@test "build: a header change rebuilds what includes it, and only that" {
	# Dry runs only (make -n -W: as if the header were newer), so the tree is not touched.
	run make -n -C "$TOP" BUILD="$BUILD_DIR" BIN="$PETCNN_BIN" -W lib/array/npy.h all
	assert_success
	assert_output --partial "lib/array/npy.c"
	assert_output --partial "tools/tensor-info.c"
	refute_output --partial "lib/util/rng.c"
	run make -n -C "$TOP" BUILD="$BUILD_DIR" BIN="$PETCNN_BIN" all
	assert_success
	refute_output --partial " -c "
}

@test "build: lib/ keeps its layering (a folder includes only its own and lower folders)" {
	# util <- array <- img, nn <- tb, onnx; pets over util, array and img (README, Working on
	# petcnn).
	declare -A may=([util]="util" [array]="util array" [img]="util array img"
		[nn]="util array nn" [tb]="util array img nn tb" [pets]="util array img pets"
		[onnx]="util array nn onnx")
	local bad="" f dir inc
	for f in "$TOP"/lib/*/*.[ch]; do
		dir=$(basename "$(dirname "$f")")
		[ -n "${may[$dir]:-}" ] || bad+=" $f(unknown folder)"
		for inc in $(sed -n 's/^#include "\([a-z]*\)\/.*/\1/p' "$f"); do
			[[ " ${may[$dir]} " == *" $inc "* ]] || bad+=" ${f#$TOP/}->$inc"
		done
	done
	[ -z "$bad" ] || fail "includes across the layering:$bad"
}
