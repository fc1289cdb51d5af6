#!/usr/bin/env python3
"""make mutate: deliberate bugs the test suite must catch (tests/mutations.txt).

Copies the tree once, then for each mutation alone: replaces its `from` text (which must
occur exactly once, so a stale mutation is an error, never a silent pass), rebuilds, and
runs its tests, which must fail. The same tests run first on the unmutated copy and must
pass there, so a broken test cannot "catch" everything. Exit 1 if any mutation survives.
Usage: tests/mutate.py [NAME-SUBSTRING...]   (only the matching mutations)
"""
import os, shlex, shutil, signal, subprocess, sys, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
WORK = os.path.join(TOP, 'build', 'mutate')
TREE = os.path.join(WORK, 'tree')
PY = os.environ.get('PETCNN_PYTHON', '/usr/bin/python3')


def unescape(s):
    return s.replace('\\t', '\t').replace('\\n', '\n').replace('\\\\', '\\')


def parse(path):
    muts, cur = [], {}
    with open(path) as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if line.startswith('#'):
                continue
            if not line.strip():
                if cur:
                    muts.append(cur)
                cur = {}
                continue
            key, sep, val = line.partition(':')
            if not sep or key not in ('name', 'file', 'from', 'to', 'test', 'needs'):
                sys.exit(f'mutate: {path}:{no}: expected name:, file:, from:, to: or test:')
            val = val[1:] if val.startswith(' ') else val
            if key == 'test':
                cur.setdefault('tests', []).append(val.strip())
            elif key in cur:
                sys.exit(f'mutate: {path}:{no}: a second {key}: in one block')
            else:
                cur[key] = val if key in ('from', 'to') else val.strip()
            cur.setdefault('line', no)
    if cur:
        muts.append(cur)
    for m in muts:
        for k in ('name', 'file', 'from', 'to', 'tests'):
            if k not in m:
                sys.exit(f"mutate: {path}:{m['line']}: block lacks {k}:")
    return muts


def run_test(t, log):
    """0 if the test passes, non-zero if it fails."""
    kind, _, rest = t.partition(' ')
    env = dict(os.environ, PETCNN_BIN=os.path.join(TREE, 'bin'),
               PETCNN_BUILD=os.path.join(TREE, 'build'), PETCNN_PYTHON=PY)
    if kind == 'unit':
        cmd = [os.path.join(TREE, 'build', 'tests', rest.strip())]
    elif kind == 'bats':
        cmd = ['bats'] + shlex.split(rest)
    else:
        sys.exit(f'mutate: unknown test kind in "{t}" (unit or bats)')
    # its own process group, so that a mutation that hangs a program (a write loop that
    # never ends, say) is killed with every process the test started, not only bats
    p = subprocess.Popen(cmd, cwd=TREE, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        return p.wait(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return 124


def build(log):
    return subprocess.run(['make', '-s', '-j2', 'WERROR=-Werror', 'all', 'unitbins'],
                          cwd=TREE, stdout=log, stderr=log).returncode


def main():
    muts = parse(os.path.join(TOP, 'tests', 'mutations.txt'))
    if len(sys.argv) > 1:
        muts = [m for m in muts if any(a in m['name'] for a in sys.argv[1:])]
    if not muts:
        sys.exit('mutate: no mutations selected')
    os.makedirs(WORK, exist_ok=True)
    # A copy of the tracked files (and the new ones not yet committed), built in place.
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=TOP,
                           capture_output=True, text=True, check=True).stdout.split('\n')
    for rel in filter(None, files):
        src, dst = os.path.join(TOP, rel), os.path.join(TREE, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst) or open(src, 'rb').read() != open(dst, 'rb').read():
            # a fresh mtime (not copy2's), so make rebuilds what a copy left by an
            # interrupted run had built from its mutated file
            shutil.copy(src, dst)
    # Files the tree no longer has go from the copy too (a stale one would still build).
    keep = set(filter(None, files))
    for root, dirs, names in os.walk(TREE):
        rel_root = os.path.relpath(root, TREE)
        if rel_root == '.':
            dirs[:] = [d for d in dirs if d not in ('build', 'bin')]
        for n in names:
            rel = os.path.normpath(os.path.join(rel_root, n))
            if rel not in keep:
                os.remove(os.path.join(root, n))
    logpath = os.path.join(WORK, 'log')
    log = open(logpath, 'w')
    if build(log):
        sys.exit(f'mutate: the unmutated tree does not build (see {logpath})')
    tests = sorted({t for m in muts for t in m['tests']})  # all, so none goes stale unseen
    for t in tests:
        if run_test(t, log):
            sys.exit(f'mutate: "{t}" fails on the unmutated tree (see {logpath})')
    flags = set()
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('flags'):
                flags = set(line.split(':', 1)[1].split())
                break
    except OSError:
        pass
    survived = skipped = 0
    for m in muts:
        if m.get('needs') and m['needs'] not in flags:
            skipped += 1
            print(f"mutate: {m['name']}: not run: this CPU lacks {m['needs']}", flush=True)
            continue
        path = os.path.join(TREE, m['file'])
        orig = open(path).read()
        old, new = unescape(m['from']), unescape(m['to'])
        n = orig.count(old)
        if n != 1:
            sys.exit(f"mutate: {m['name']}: '{m['from']}' occurs {n} times in {m['file']} "
                     f"(tests/mutations.txt:{m['line']} is stale)")
        t0 = time.time()
        try:
            open(path, 'w').write(orig.replace(old, new))
            print(f"== {m['name']}", file=log, flush=True)
            if build(log):
                # A bug that does not compile tests the compiler, not the suite.
                verdict, caught = 'DOES NOT BUILD (make it compile)', False
            else:
                failing = [t for t in m['tests'] if run_test(t, log)]
                caught = bool(failing)
                verdict = 'caught by ' + ', '.join(failing) if failing else 'SURVIVED'
        finally:
            open(path, 'w').write(orig)
        survived += not caught
        print(f"mutate: {m['name']}: {verdict} ({time.time() - t0:.0f} s)", flush=True)
    build(log)
    ran = len(muts) - skipped
    print(f'mutate: {ran - survived} passed, {survived} failed' +
          (f', {skipped} skipped' if skipped else ''))
    return 1 if survived else 0


if __name__ == '__main__':
    sys.exit(main())
