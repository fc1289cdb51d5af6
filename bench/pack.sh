#!/bin/sh
# pet-pack beside Pillow: decode + antialiased resize of N photo-sized (500x375) JPEGs to
# SIZE, one thread each, same files, same machine; prints images/s, the ratio and pet-pack's
# peak RSS, and the floor under both: libjpeg-turbo's decoding alone (bench/jpeg_decode.c),
# which bounds the ratio any resize can reach.
# Usage: bench/pack.sh [N] [SIZE] [SRC_W SRC_H]  (needs `make`, python3-pil, GNU time, cc)
set -eu
N=${1:-300}
SIZE=${2:-224}
SW=${3:-500}
SH=${4:-375}
TOP=$(cd "$(dirname "$0")/.." && pwd)
PY=${PETCNN_PYTHON:-/usr/bin/python3}
BIN=${PETCNN_BIN:-$TOP/bin}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir "$WORK/img"
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -O2 -Wall -Wextra $($PKG_CONFIG --cflags libjpeg) "$TOP/bench/jpeg_decode.c" \
	$($PKG_CONFIG --libs libjpeg) -o "$WORK/jpeg_decode"
"$PY" "$TOP/bench/pack_pillow.py" make "$WORK/img" "$N" "$SW" "$SH"
ls "$WORK"/img/*.jpg | sed 's/$/\t0\tx/' > "$WORK/list.tsv"
cat "$WORK"/img/*.jpg > /dev/null   # both runs start from the page cache

rate() {  # images/s of a pet-pack run
	s=$(date +%s.%N)
	"$BIN/pet-pack" -q -s "$SIZE" "$@" < "$WORK/list.tsv" > "$WORK/out.npy"
	e=$(date +%s.%N)
	echo "$N $s $e" | awk '{ printf "%.1f", $1 / ($3 - $2) }'
}
best() { printf '%s\n' "$@" | sort -g | tail -1; }

# three rounds, interleaved, best of each: a shared machine's noise hurts both sides alike
pil="" pil_draft="" one="" full="" all="" dec=""
for round in 1 2 3; do
	dec="$dec $("$WORK/jpeg_decode" < "$WORK/list.tsv")"
	pil="$pil $("$PY" "$TOP/bench/pack_pillow.py" run "$SIZE" < "$WORK/list.tsv")"
	pil_draft="$pil_draft $("$PY" "$TOP/bench/pack_pillow.py" run "$SIZE" draft < "$WORK/list.tsv")"
	one="$one $(rate -j 1)"
	full="$full $(rate -j 1 --full-decode)"
	all="$all $(rate)"
done
pil=$(best $pil) pil_draft=$(best $pil_draft) one=$(best $one) full=$(best $full) all=$(best $all) dec=$(best $dec)
rss=$(/usr/bin/time -f %M "$BIN/pet-pack" -q -j 1 -s "$SIZE" < "$WORK/list.tsv" 2>&1 >/dev/null | tail -1)

echo "decode + resize of $N ${SW}x${SH} JPEGs to ${SIZE}x${SIZE}, images/s (best of 3):"
echo "  Pillow $(  "$PY" -c 'import PIL; print(PIL.__version__)') open/convert/resize, 1 thread: $pil"
echo "  Pillow with draft(), 1 thread:            $pil_draft"
echo "  pet-pack -j 1:                            $one  ($(echo "$one $pil" | awk '{ printf "%.2fx", $1 / $2 }') Pillow)"
echo "  pet-pack -j 1 --full-decode:              $full  ($(echo "$full $pil" | awk '{ printf "%.2fx", $1 / $2 }') Pillow)"
echo "  pet-pack -j $(nproc) (all cores):               $all"
echo "  pet-pack -j 1 peak RSS: $rss KiB"
echo "  libjpeg-turbo decoding alone (from memory, no resize, nothing written): $dec, i.e." \
	"$(echo "$pil $dec" | awk '{ printf "%.0f%%", 100 * $1 / $2 }') of Pillow's time per image:" \
	"no resize gets past $(echo "$dec $pil" | awk '{ printf "%.2fx", $1 / $2 }') Pillow"
