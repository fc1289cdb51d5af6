"""Independent TFRecord reader for the tests: walks the framing, checks both masked CRC32Cs
with its own bitwise CRC, and writes each payload to OUTDIR/NNN.pb (for protoc --decode_raw).

usage: tfrecord.py FILE OUTDIR   prints "N records" and exits 1 on any framing or CRC error.
"""
import os
import struct
import sys


def crc32c(data):
    c = 0xFFFFFFFF
    table = crc32c.table
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


crc32c.table = _table()


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def main():
    path, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    data = open(path, "rb").read()
    off, n = 0, 0
    while off < len(data):
        if len(data) - off < 12:
            sys.exit("%s: truncated header at %d" % (path, off))
        (length,) = struct.unpack_from("<Q", data, off)
        (lcrc,) = struct.unpack_from("<I", data, off + 8)
        if masked(data[off:off + 8]) != lcrc:
            sys.exit("%s: bad length crc at %d" % (path, off))
        payload = data[off + 12:off + 12 + length]
        if len(payload) != length or len(data) < off + 16 + length:
            sys.exit("%s: truncated record at %d" % (path, off))
        (dcrc,) = struct.unpack_from("<I", data, off + 12 + length)
        if masked(payload) != dcrc:
            sys.exit("%s: bad data crc at %d" % (path, off))
        with open(os.path.join(outdir, "%03d.pb" % n), "wb") as f:
            f.write(payload)
        off += 16 + length
        n += 1
    print("%d records" % n)


main()
