#!/usr/bin/env bats
# pet-fetch against real servers on loopback: lighttpd for the ordinary cases, a small
# fault-injecting python server (tests/fetch_helper.py) for dropped connections, ignored
# Range requests, stalls and proxying. The mirror is pet-synth's, in the real layout.
load helper

FH="$BATS_TEST_DIRNAME/fetch_helper.py"

setup() {
	T=$BATS_TEST_TMPDIR
	MIRROR=$T/mirror
	pet-synth -q -o "$MIRROR" --per-breed 10 --min-size 32 --max-size 64
	SERVER_PID=
}

teardown() {
	stop_server
	if [ -n "${MOUNTED:-}" ]; then umount "$MOUNTED" || true; fi
}

stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}

# wait_port PORT: until something accepts connections there (at most ~10 s).
wait_port() {
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	fail "nothing listens on port $1"
}

# start_lighttpd ROOT: serves ROOT on a free loopback port; /old/X redirects to /X.
start_lighttpd() {
	PORT=$("$PY" "$FH" port)
	cat >"$T/lighttpd.conf" <<-EOF
		server.document-root = "$1"
		server.port = $PORT
		server.bind = "127.0.0.1"
		server.errorlog = "$T/lighttpd.err"
		server.modules += ( "mod_redirect" )
		url.redirect = ( "^/old/(.*)$" => "/\$1" )
		mimetype.assign = ( "" => "application/octet-stream" )
	EOF
	lighttpd -D -f "$T/lighttpd.conf" 3>&- &
	SERVER_PID=$!
	wait_port "$PORT"
	URL=http://127.0.0.1:$PORT
}

# start_faulty ROOT MODE: the python server (see fetch_helper.py), requests logged in $T/server.log.
start_faulty() {
	PORT=$("$PY" "$FH" port)
	"$PY" "$FH" serve "$1" "$PORT" "$T/server.log" "$2" 3>&- &
	SERVER_PID=$!
	wait_port "$PORT"
	URL=http://127.0.0.1:$PORT
}

# start_tls ROOT: the python server, well-behaved, over TLS with a self-signed certificate
# for 127.0.0.1 ($T/cert.pem, its own CA).
start_tls() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
	PORT=$("$PY" "$FH" port)
	"$PY" "$FH" serve "$1" "$PORT" "$T/server.log" plain "$T/cert.pem" "$T/key.pem" 3>&- &
	SERVER_PID=$!
	wait_port "$PORT"
	URL=https://127.0.0.1:$PORT
}

# written DIR: what DIR holds besides the lock file every run takes.
written() {
	ls -A "$1" | grep -vx '.petcnn-fetch.lock' || true
}

# The reference: what python's tarfile extracts from the mirror's archives.
reference() {
	mkdir -p "$T/ref"
	"$PY" -c 'import sys, tarfile
for a in sys.argv[2:]:
    with tarfile.open(a) as t:
        t.extractall(sys.argv[1])' "$T/ref" "$MIRROR/images.tar.gz" "$MIRROR/annotations.tar.gz"
}

# assert_dataset DIR: DIR/images and DIR/annotations hold exactly the archives' files.
assert_dataset() {
	reference
	diff -r "$T/ref/images" "$1/images" || fail "images differ from the archive"
	diff -r "$T/ref/annotations" "$1/annotations" || fail "annotations differ from the archive"
	[ -f "$1/images/._samoyed_1.jpg" ] || fail "AppleDouble file not extracted"
	[ -f "$1/images/Abyssinian_100.mat" ] || fail ".mat file not extracted"
	[ -f "$1/annotations/list.txt" ] && [ -d "$1/annotations/trimaps" ] || fail "annotations incomplete"
	[ -z "$(find "$1" -name '*.part' -o -name '.petcnn-extract.*')" ] || fail "leftovers in $1"
}

@test "pet-fetch: conventions" {
	check_conventions pet-fetch
}

@test "pet-fetch: --help lists every option" {
	run --separate-stderr pet-fetch --help
	assert_success
	for o in --output --mirror --checksums --retries --retry-delay --timeout --keep-archives \
		--no-extract --quiet --progress --version; do
		assert_output --partial -- "$o"
	done
}

@test "pet-fetch: usage errors are exit 2 with nothing done" {
	cd "$T"
	run --separate-stderr pet-fetch
	assert_failure 2
	[[ $stderr == *"-o DIR is required"* ]] || fail "$stderr"
	run --separate-stderr pet-fetch -o d --checksums x
	assert_failure 2
	run --separate-stderr pet-fetch -o d --retries -1
	assert_failure 2
	[[ $stderr == *"--retries"* ]] || fail "$stderr"
	run --separate-stderr pet-fetch -o d --timeout 0
	assert_failure 2
	run --separate-stderr pet-fetch -o d --keep-archives --no-extract
	assert_failure 2
	[ ! -e d ]
}

@test "pet-fetch: full fetch from lighttpd, verified against the mirror's SHA256SUMS" {
	start_lighttpd "$MIRROR"
	run --separate-stderr pet-fetch -o "$T/data" --mirror "$URL/"
	assert_success
	assert_output ''
	[[ $stderr == *"images.tar.gz"*"(verified)"* ]] || fail "$stderr"
	assert_dataset "$T/data"
	# Archives are removed once extracted; the marker records what was extracted.
	[ ! -e "$T/data/images.tar.gz" ] && [ ! -e "$T/data/annotations.tar.gz" ]
	diff <(grep -v '^#' "$T/data/.petcnn-fetch" | sort) <(sort "$MIRROR/SHA256SUMS")
}

@test "pet-fetch: a second run on a complete DIR downloads and writes nothing" {
	start_lighttpd "$MIRROR"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL"
	assert_success
	stop_server # any download now fails: the second run must not need the server
	touch "$T/stamp"
	sleep 1.1   # mtime granularity
	run --separate-stderr pet-fetch -o "$T/data" --mirror "$URL"
	assert_success
	[[ $stderr == *"already complete"*"nothing to download"* ]] || fail "$stderr"
	[ -z "$(find "$T/data" -newer "$T/stamp")" ] || fail "files written: $(find "$T/data" -newer "$T/stamp")"
	assert_dataset "$T/data"
}

@test "pet-fetch: --keep-archives keeps the verified archives; --no-extract only downloads" {
	start_lighttpd "$MIRROR"
	run --separate-stderr pet-fetch -q -o "$T/a" --mirror "$URL" --keep-archives
	assert_success
	cmp "$MIRROR/images.tar.gz" "$T/a/images.tar.gz"
	cmp "$MIRROR/annotations.tar.gz" "$T/a/annotations.tar.gz"
	assert_dataset "$T/a"
	run --separate-stderr pet-fetch -q -o "$T/b" --mirror "$URL" --no-extract
	assert_success
	cmp "$MIRROR/images.tar.gz" "$T/b/images.tar.gz"
	[ ! -e "$T/b/images" ] && [ ! -e "$T/b/.petcnn-fetch" ]
	# A second --no-extract run checks the archives it has instead of downloading them.
	stop_server
	run --separate-stderr pet-fetch -o "$T/b" --mirror "$URL" --checksums "$MIRROR/SHA256SUMS" --no-extract
	assert_success
	[[ $stderr == *"already downloaded"* ]] || fail "$stderr"
}

@test "pet-fetch: follows redirects" {
	start_lighttpd "$MIRROR"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL/old/"
	assert_success
	assert_dataset "$T/data"
}

@test "pet-fetch: https: a certificate nobody vouches for is refused; --cacert trusts its CA" {
	start_tls "$MIRROR"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL/" --retry-delay 0
	assert_failure 1
	[[ $stderr == *"$URL/"*"certificate"* ]] || fail "$stderr"
	[ -z "$(written "$T/data")" ] || fail "written: $(written "$T/data")"
	! grep -q '^GET /images.tar.gz' "$T/server.log"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL/" --cacert "$T/cert.pem"
	assert_success
	grep -q '^GET /images.tar.gz - 200$' "$T/server.log" || fail "$(cat "$T/server.log")"
	assert_dataset "$T/data"
}

@test "pet-fetch: --cacert naming a missing file is exit 1 naming it, before anything is done" {
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "file://$MIRROR/" --cacert "$T/nope.pem"
	assert_failure 1
	[[ $stderr == "pet-fetch: $T/nope.pem: cannot read the CA certificates: No such file or directory" ]] || fail "$stderr"
	[ ! -e "$T/data" ]
}

@test "pet-fetch: resumes with a Range request after the server drops the connection" {
	start_faulty "$MIRROR" drop
	run --separate-stderr pet-fetch -o "$T/data" --mirror "$URL" --retry-delay 0
	assert_success
	[[ $stderr == *"(verified, resumed)"* ]] || fail "$stderr"
	grep -q '^GET /images.tar.gz - 200 drop$' "$T/server.log"
	grep -qE '^GET /images.tar.gz bytes=[1-9][0-9]*- 206$' "$T/server.log" || fail "$(cat "$T/server.log")"
	assert_dataset "$T/data"
}

@test "pet-fetch: a partial download is kept as .part and resumed by the next run" {
	start_faulty "$MIRROR" drop
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL" --checksums "$MIRROR/SHA256SUMS" --retries 0
	assert_failure 1
	[[ $stderr == *"$URL/images.tar.gz"* ]] || fail "$stderr"
	[ -s "$T/data/images.tar.gz.part" ] && [ ! -e "$T/data/images.tar.gz" ] && [ ! -e "$T/data/images" ]
	part=$(stat -c %s "$T/data/images.tar.gz.part")
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL" --checksums "$MIRROR/SHA256SUMS" --retries 0 --retry-delay 0
	# annotations.tar.gz is dropped on its first request too; a third run finishes.
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL" --checksums "$MIRROR/SHA256SUMS" --retries 0
	assert_success
	grep -q "^GET /images.tar.gz bytes=$part- 206$" "$T/server.log" || fail "$(cat "$T/server.log")"
	assert_dataset "$T/data"
}

@test "pet-fetch: a server that ignores Range is handled by restarting from zero" {
	start_faulty "$MIRROR" norange
	run --separate-stderr pet-fetch -o "$T/data" --mirror "$URL" --retry-delay 0
	assert_success
	[[ $stderr == *"restarted from byte 0"* ]] || fail "$stderr"
	grep -qE '^GET /images.tar.gz bytes=[1-9][0-9]*- 200$' "$T/server.log"
	assert_dataset "$T/data"
}

@test "pet-fetch: proxies come from the environment" {
	start_faulty "$MIRROR" drop
	http_proxy=$URL run --separate-stderr pet-fetch -q -o "$T/data" --mirror http://pets.invalid/ --retry-delay 0
	assert_success
	grep -q '^PROXY http://pets.invalid/images.tar.gz$' "$T/server.log" || fail "$(cat "$T/server.log")"
	assert_dataset "$T/data"
}

@test "pet-fetch: 404 is exit 1 naming the URL and the status" {
	start_lighttpd "$MIRROR"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL/missing/"
	assert_failure 1
	assert_output ''
	[[ $stderr == "pet-fetch: $URL/missing/images.tar.gz: HTTP status 404" ]] || fail "$stderr"
	[ -z "$(written "$T/data")" ] || fail "written: $(written "$T/data")"
}

@test "pet-fetch: a wrong checksum is exit 1 naming the file and both digests; nothing kept" {
	start_lighttpd "$MIRROR"
	good=$(awk '$2 == "images.tar.gz" {print $1}' "$MIRROR/SHA256SUMS")
	bad=$(printf '%s' "$good" | tr 0-9a-f 1-9a-f0)
	sed "s/$good/$bad/" "$MIRROR/SHA256SUMS" >"$T/sums"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL" --checksums "$T/sums"
	assert_failure 1
	[[ $stderr == *"$T/data/images.tar.gz: sha256 mismatch"*"expected $bad, got $good"* ]] || fail "$stderr"
	[ -z "$(written "$T/data")" ] || fail "written: $(written "$T/data")"
	# Same through the mirror's own SHA256SUMS.
	cp "$T/sums" "$MIRROR/SHA256SUMS"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL"
	assert_failure 1
	[[ $stderr == *"expected $bad, got $good"* ]] || fail "$stderr"
	[ -z "$(written "$T/data")" ]
}

@test "pet-fetch: a checksums file without the archive's name is an error" {
	echo "0000000000000000000000000000000000000000000000000000000000000000  other.tar.gz" >"$T/sums"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "file://$MIRROR" --checksums "$T/sums"
	assert_failure 1
	[[ $stderr == "pet-fetch: $T/sums: no checksum for images.tar.gz" ]] || fail "$stderr"
}

@test "pet-fetch: hostile archives are refused, naming the entry, writing nothing outside DIR" {
	for kind in absolute:/tmp/petcnn-evil-absolute dotdot:images/../../evil-dotdot \
		symlink:images/escape hardlink:images/passwd device:images/null fifo:images/fifo; do
		k=${kind%%:*} entry=${kind#*:}
		m=$T/hostile-$k
		mkdir -p "$m/data/x"
		"$PY" "$FH" hostile "$k" "$m/images.tar.gz"
		cp "$MIRROR/annotations.tar.gz" "$m/"
		echo "keep me" >"$m/victim"
		run --separate-stderr pet-fetch -q -o "$m/data/x" --mirror "file://$m"
		assert_failure 1
		[[ $stderr == *"refused entry '$entry'"* ]] || fail "$k: $stderr"
		[ ! -e /tmp/petcnn-evil-absolute ] && [ ! -e "$m/evil-dotdot" ] && [ ! -e "$m/data/evil-dotdot" ]
		[ ! -e "$m/outside" ] && [ ! -e "$m/data/outside" ]
		[ "$(cat "$m/victim")" = "keep me" ] && [ "$(stat -c %h "$m/victim")" = 1 ]
		# Nothing extracted, not even the harmless entry before the refused one.
		[ "$(written "$m/data/x")" = images.tar.gz ] || fail "$k: $(written "$m/data/x")"
	done
}

@test "pet-fetch: a file:// mirror" {
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "file://$MIRROR"
	assert_success
	assert_dataset "$T/data"
}

@test "pet-fetch: a plain tar served under the .tar.gz name" {
	rm -rf "$MIRROR"
	pet-synth -q -o "$MIRROR" --per-breed 10 --min-size 32 --max-size 64 --format tar
	! gzip -t "$MIRROR/images.tar.gz" 2>/dev/null || fail "fixture is gzip"
	start_lighttpd "$MIRROR"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL"
	assert_success
	assert_dataset "$T/data"
}

@test "pet-fetch: an interrupted earlier extraction is redone, replacing what it left" {
	mkdir -p "$T/data/images"
	echo stale >"$T/data/images/stale.jpg"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "file://$MIRROR"
	assert_success
	[ ! -e "$T/data/images/stale.jpg" ]
	assert_dataset "$T/data"
}

@test "pet-fetch: a stalled server is given up after --timeout, naming the URL" {
	start_faulty "$MIRROR" stall
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "$URL" --checksums "$MIRROR/SHA256SUMS" --timeout 1 --retries 0
	assert_failure 1
	[[ $stderr == "pet-fetch: $URL/images.tar.gz: "* ]] || fail "$stderr"
	[ ! -e "$T/data/images.tar.gz" ] && [ ! -e "$T/data/images.tar.gz.part" ]
}

@test "pet-fetch: --progress draws bars on stderr; -q is silent" {
	run --separate-stderr pet-fetch --progress -o "$T/a" --mirror "file://$MIRROR"
	assert_success
	[[ $stderr == *$'\r'"images.tar.gz ["*"/s"* ]] || fail "no progress bar: $stderr"
	run --separate-stderr pet-fetch -q -o "$T/b" --mirror "file://$MIRROR"
	assert_success
	[ -z "$stderr" ]
	assert_output ''
}

@test "pet-fetch: leftovers of interrupted runs are removed, whatever pid made them" {
	# Held by the lock, a run knows no other is using DIR; a pid that is alive again (the
	# bats shell here, a killed run's in a new container) does not keep its leftovers.
	for pid in 999999999 $$; do
		mkdir -p "$T/data/.petcnn-extract.$pid.AbCdEf/root/images"
		echo x >"$T/data/.petcnn-extract.$pid.AbCdEf/root/images/a.jpg"
		chmod 555 "$T/data/.petcnn-extract.$pid.AbCdEf/root/images"
	done
	echo half >"$T/data/..petcnn-fetch.AbC123" # the marker's temporary
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "file://$MIRROR"
	assert_success
	[ ! -e "$T/data/.petcnn-extract.999999999.AbCdEf" ] && [ ! -e "$T/data/.petcnn-extract.$$.AbCdEf" ]
	[ ! -e "$T/data/..petcnn-fetch.AbC123" ]
	assert_dataset "$T/data"
}

@test "pet-fetch: a run killed with SIGKILL while extracting leaves nothing the next run keeps" {
	rm -rf "$MIRROR"
	pet-synth -q -o "$MIRROR" --per-breed 40 --min-size 32 --max-size 64
	"$PY" "$FH" killwhen "$T/data" .petcnn-extract. pet-fetch -q -o "$T/data" --mirror "file://$MIRROR" ||
		fail "pet-fetch ended before it was killed"
	[ -n "$(find "$T/data" -maxdepth 1 -name '.petcnn-extract.*')" ] || fail "nothing left to clean"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "file://$MIRROR"
	assert_success
	assert_dataset "$T/data"
}

@test "pet-fetch: a second run into the same DIR fails at once, naming DIR; the first completes" {
	start_faulty "$MIRROR" slow
	pet-fetch -q -o "$T/data" --mirror "$URL" --checksums "$MIRROR/SHA256SUMS" 2>"$T/first.err" &
	first=$!
	for _ in $(seq 200); do grep -q '^GET /images.tar.gz' "$T/server.log" 2>/dev/null && break; sleep 0.05; done
	run --separate-stderr timeout 5 pet-fetch -q -o "$T/data" --mirror "$URL" --checksums "$MIRROR/SHA256SUMS"
	assert_failure 1
	[[ $stderr == "pet-fetch: $T/data: another pet-fetch is using this directory"* ]] || fail "$stderr"
	wait "$first" || fail "the first run failed: $(cat "$T/first.err")"
	[ "$(grep -c '^GET /images.tar.gz' "$T/server.log")" = 1 ] || fail "$(cat "$T/server.log")"
	assert_dataset "$T/data"
}

@test "pet-fetch: a --mirror that is not http, https or file is a usage error; nothing created" {
	cd "$T"
	for u in ftp://example.org/pets/ example.org/pets /tmp/pets; do
		run --separate-stderr pet-fetch -o d --mirror "$u"
		assert_failure 2
		assert_output ''
		[[ $stderr == "pet-fetch: --mirror '$u' is not an http://, https:// or file:// URL"* ]] || fail "$stderr"
		[ ! -e d ]
	done
	run --separate-stderr pet-fetch -o d --mirror "$(printf 'ftp://x\033[2J')"
	assert_failure 2
	[[ $stderr == *"'ftp://x\\x1b[2J'"* ]] || fail "$stderr"
}

@test "pet-fetch: a DIR whose images/ was removed is fetched again" {
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "file://$MIRROR"
	assert_success
	rm -rf "$T/data/images"
	run --separate-stderr pet-fetch -o "$T/data" --mirror "file://$MIRROR"
	assert_success
	[[ $stderr == *"images.tar.gz: extracted"* ]] || fail "$stderr"
	[[ $stderr != *"annotations.tar.gz"* ]] || fail "annotations fetched again: $stderr"
	assert_dataset "$T/data"
}

@test "pet-fetch: a full file system fails the extraction, naming the entry and the error; nothing looks complete" {
	# 1 MiB of room: the 640 KiB archive fits, its extracted copy does not.
	mkdir -p "$T/m" "$T/full"
	"$PY" "$FH" bulky "$T/m/images.tar.gz" 640
	cp "$MIRROR/annotations.tar.gz" "$T/m/"
	mount -t tmpfs -o size=1m tmpfs "$T/full" || fail "cannot mount a tmpfs here (the test needs root and mount)"
	MOUNTED=$T/full
	run --separate-stderr pet-fetch -q -o "$T/full/data" --mirror "file://$T/m"
	assert_failure 1
	[[ $stderr == "pet-fetch: $T/full/data/images.tar.gz: entry 'images/bulk_"*"': "*": No space left on device" ]] ||
		fail "$stderr"
	[ -z "$(find "$T/full/data" -name '.petcnn-extract.*')" ] || fail "temporary tree left"
	[ ! -e "$T/full/data/images" ] && [ ! -e "$T/full/data/.petcnn-fetch" ]
	# The next run does not take it as done: it fails the same way.
	run --separate-stderr pet-fetch -q -o "$T/full/data" --mirror "file://$T/m"
	assert_failure 1
	[[ $stderr == *"No space left on device" ]] || fail "$stderr"
	[ ! -e "$T/full/data/images" ]
}

@test "pet-fetch: control bytes in an entry's name are escaped in the message" {
	mkdir -p "$T/m"
	"$PY" "$FH" evil "$T/m/images.tar.gz"
	cp "$MIRROR/annotations.tar.gz" "$T/m/"
	run --separate-stderr pet-fetch -q -o "$T/data" --mirror "file://$T/m"
	assert_failure 1
	[[ $stderr == *"refused entry 'images/../\\x1b[2J\\x0dpet-fetch: all good\\xc2\\x9b31m': '..' in path" ]] ||
		fail "$(printf '%q' "$stderr")"
	[[ $stderr != *$'\e'* && $stderr != *$'\r'* && $stderr != *$'\xc2\x9b'* ]] || fail "raw control bytes"
}
