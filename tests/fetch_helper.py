"""Fixtures for tests/pet-fetch.bats (the mirror itself comes from pet-synth): hostile
tarballs, a free port, and a small HTTP server that misbehaves on purpose (drops the
connection mid-body, ignores Range, stalls). Run with Debian's python3 (PIL).

  fetch_helper.py hostile KIND OUT          one refused entry kind in a .tar.gz
  fetch_helper.py bulky OUT KIB              images/bulk_N.bin, 64 KiB of noise each, KIB
                                            KiB in all, in a .tar.gz that hardly shrinks
  fetch_helper.py evil OUT                  one file whose name holds control bytes
  fetch_helper.py port                      a free TCP port on 127.0.0.1
  fetch_helper.py killwhen DIR PREFIX CMD... runs CMD and SIGKILLs it as soon as an entry
                                            named PREFIX* appears in DIR (exit 0), or
                                            exit 1 if CMD ended first
  fetch_helper.py serve DIR PORT LOG MODE [CERT KEY]
                                            MODE: drop (first GET of a file sends half the
                                            body, then honours Range) or norange (drops the
                                            first GET too, then ignores Range: always 200);
                                            or stall (never answers); or plain (behaves);
                                            or slow (behaves, but sends each body in 20
                                            pieces 0.05 s apart);
                                            also answers as an HTTP proxy (logs "PROXY
                                            URL"); with CERT and KEY (PEM), over TLS
"""
import http.server
import io
import os
import socket
import ssl
import sys
import tarfile
import time

from PIL import Image

def add(tar, name, data, mtime=1262304000):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 1262304000
    tar.addfile(info)


def jpeg(i, size):
    img = Image.new("RGB", size, ((i * 70) % 256, (i * 40) % 256, (i * 90) % 256))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_tar(path, fmt, fill):
    mode = "w:gz" if fmt == "tar.gz" else "w"
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        fill(tar)


def hostile(kind, out):
    """A tarball with a harmless entry first, then the one that must be refused."""

    def fill(tar):
        add_dir(tar, "images")
        add(tar, "images/ok_1.jpg", jpeg(1, (8, 8)))
        if kind == "absolute":
            add(tar, "/tmp/petcnn-evil-absolute", b"evil\n")
        elif kind == "dotdot":
            add(tar, "images/../../evil-dotdot", b"evil\n")
        elif kind == "symlink":
            info = tarfile.TarInfo("images/escape")
            info.type = tarfile.SYMTYPE
            info.linkname = "../../outside"
            tar.addfile(info)
            add(tar, "images/escape/evil-symlink", b"evil\n")
        elif kind == "hardlink":
            info = tarfile.TarInfo("images/passwd")
            info.type = tarfile.LNKTYPE
            info.linkname = "../../victim"
            tar.addfile(info)
        elif kind == "device":
            info = tarfile.TarInfo("images/null")
            info.type = tarfile.CHRTYPE
            info.devmajor, info.devminor = 1, 3
            tar.addfile(info)
        elif kind == "fifo":
            info = tarfile.TarInfo("images/fifo")
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
        else:
            sys.exit(f"unknown kind {kind}")

    write_tar(out, "tar.gz", fill)


def bulky(out, kib):
    import random

    rnd = random.Random(1)

    def fill(tar):
        add_dir(tar, "images")
        for i in range(kib // 64):
            add(tar, f"images/bulk_{i}.bin", rnd.randbytes(64 * 1024))

    write_tar(out, "tar.gz", fill)


def evil(out):
    """A refused entry whose name would clear the screen and fake a line if echoed raw."""

    def fill(tar):
        add_dir(tar, "images")
        add(tar, "images/../\x1b[2J\rpet-fetch: all good\x9b31m", b"evil\n")

    write_tar(out, "tar.gz", fill)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(root, port, log, mode, cert=None, key=None):
    seen = set()
    logf = open(log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            target = self.path
            if target.startswith("http://"):  # asked as a proxy: serve the path
                logf.write(f"PROXY {target}\n")
                target = "/" + target.split("/", 3)[3]
            name = target.lstrip("/")
            if mode == "stall":  # accept, then never answer
                logf.write(f"GET /{name} stall\n")
                time.sleep(60)
                return
            path = os.path.join(root, name)
            rng = self.headers.get("Range", "-")
            if "/" in name or not os.path.isfile(path):
                logf.write(f"GET /{name} {rng} 404\n")
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = open(path, "rb").read()
            first = name not in seen and mode in ("drop", "norange")
            seen.add(name)
            start = 0
            if rng.startswith("bytes=") and mode in ("drop", "plain", "slow"):
                start = int(rng[6:].split("-")[0])
            status = 206 if start else 200
            logf.write(f"GET /{name} {rng} {status}{' drop' if first else ''}\n")
            self.send_response(status)
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Accept-Ranges", "bytes" if mode != "norange" else "none")
            self.end_headers()
            body = data[start:]
            if first:
                # Half the body, then hang up: the client sees a short transfer.
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if mode == "slow":
                step = len(body) // 20 + 1
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    self.wfile.flush()
                    time.sleep(0.05)
                return
            self.wfile.write(body)

    http.server.HTTPServer.allow_reuse_address = True
    srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


def kill_when(d, prefix, cmd):
    """Polls d as fast as it can: an extraction's temporary tree lives for milliseconds."""
    import signal
    import subprocess

    p = subprocess.Popen(cmd)
    while p.poll() is None:
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        if any(n.startswith(prefix) for n in names):
            p.send_signal(signal.SIGKILL)
            p.wait()
            return 0
    return 1


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "hostile":
        hostile(sys.argv[2], sys.argv[3])
    elif cmd == "bulky":
        bulky(sys.argv[2], int(sys.argv[3]))
    elif cmd == "evil":
        evil(sys.argv[2])
    elif cmd == "port":
        print(free_port())
    elif cmd == "killwhen":
        sys.exit(kill_when(sys.argv[2], sys.argv[3], sys.argv[4:]))
    elif cmd == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], *sys.argv[6:8])
    else:
        sys.exit(__doc__)
