#!/usr/bin/env python3
"""make mutate: deliberate bugs the test suite must catch (tests/mutations.txt).

Copies the tree once per worker, then for each mutation alone, in one worker's copy:
replaces its `from` text (which must occur exactly once, so a stale mutation is an error,
never a silent pass), rebuilds, and runs its tests, which must fail. The same tests run
first on the unmutated copies and must pass there, so a broken test cannot "catch"
everything. Exit 1 if any mutation survives.
Usage: tests/mutate.py [NAME-SUBSTRING...]   (only the matching mutations)
Workers: PETCNN_MUTATE_JOBS (default: the CPU count, at most 4); each builds with make -j2.
"""
import os, queue, shlex, shutil, signal, subprocess, sys, threading, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
WORK = os.path.join(TOP, 'build', 'mutate')
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


def run_test(tree, t, log):
    """0 if the test passes, non-zero if it fails."""
    kind, _, rest = t.partition(' ')
    env = dict(os.environ, PETCNN_BIN=os.path.join(tree, 'bin'),
               PETCNN_BUILD=os.path.join(tree, 'build'), PETCNN_PYTHON=PY)
    # main has refused every kind but these two
    if kind == 'unit':
        cmd = [os.path.join(tree, 'build', 'tests', rest.strip())]
    else:
        cmd = ['bats'] + shlex.split(rest)
    # its own process group, so that a mutation that hangs a program (a write loop that
    # never ends, say) is killed with every process the test started, not only bats
    p = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        return p.wait(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return 124


def build(tree, log, targets=('all', 'unitbins')):
    return subprocess.run(['make', '-s', '-j2', 'WERROR=-Werror', *targets],
                          cwd=tree, stdout=log, stderr=log).returncode


def targets(m):
    """What m's tests run: its unit binaries alone where it names no bats file (linking
    the fifty programs is most of a rebuild), else everything (bats files run both)."""
    if all(t.startswith('unit ') for t in m['tests']):
        return [os.path.join('build', 'tests', t.split()[1]) for t in m['tests']]
    return ['all', 'unitbins']


def sync(tree, files):
    """Makes tree a copy of the tracked files (and the new ones not yet committed)."""
    for rel in files:
        src, dst = os.path.join(TOP, rel), os.path.join(tree, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst) or open(src, 'rb').read() != open(dst, 'rb').read():
            # a fresh mtime (not copy2's), so make rebuilds what a copy left by an
            # interrupted run had built from its mutated file
            shutil.copy(src, dst)
    # Files the tree no longer has go from the copy too (a stale one would still build).
    keep = set(files)
    for root, dirs, names in os.walk(tree):
        rel_root = os.path.relpath(root, tree)
        if rel_root == '.':
            dirs[:] = [d for d in dirs if d not in ('build', 'bin')]
        for n in names:
            rel = os.path.normpath(os.path.join(rel_root, n))
            if rel not in keep:
                os.remove(os.path.join(root, n))


def in_parallel(fn, items):
    """fn(item) for each item, one thread each; their results in items' order."""
    out, errors = [None] * len(items), []

    def one(k):
        try:
            out[k] = fn(items[k])
        except BaseException as e:  # raised again below, so that no worker fails unseen
            errors.append(e)
    # daemons: an interrupted run exits (a copy left mutated is mended by the next sync)
    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


class Worker:
    """One copy of the tree (build/mutate/tree, tree1, ...) and its log."""

    def __init__(self, k):
        self.tree = os.path.join(WORK, 'tree' + (str(k) if k else ''))
        self.logpath = os.path.join(WORK, 'log' + (str(k) if k else ''))
        self.log = None

    def first_failing(self, tests):
        """The first of tests that fails on this copy as it is, or None."""
        return next((t for t in tests if run_test(self.tree, t, self.log)), None)

    def mutation(self, m):
        """(caught, verdict) for mutation m, applied alone to this copy."""
        path = os.path.join(self.tree, m['file'])
        orig = open(path).read()
        try:
            open(path, 'w').write(orig.replace(unescape(m['from']), unescape(m['to'])))
            print(f"== {m['name']}", file=self.log, flush=True)
            if build(self.tree, self.log, targets(m)):
                # A bug that does not compile tests the compiler, not the suite.
                return False, 'DOES NOT BUILD (make it compile)'
            failing = [t for t in m['tests'] if run_test(self.tree, t, self.log)]
            return bool(failing), ('caught by ' + ', '.join(failing) if failing else 'SURVIVED')
        finally:
            open(path, 'w').write(orig)


def cpu_flags():
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('flags'):
                return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def main():
    muts = parse(os.path.join(TOP, 'tests', 'mutations.txt'))
    if len(sys.argv) > 1:
        muts = [m for m in muts if any(a in m['name'] for a in sys.argv[1:])]
    if not muts:
        sys.exit('mutate: no mutations selected')
    for m in muts:
        for t in m['tests']:
            if t.partition(' ')[0] not in ('unit', 'bats'):
                sys.exit(f'mutate: unknown test kind in "{t}" (unit or bats)')
        n = open(os.path.join(TOP, m['file'])).read().count(unescape(m['from']))
        if n != 1:
            sys.exit(f"mutate: {m['name']}: '{m['from']}' occurs {n} times in {m['file']} "
                     f"(tests/mutations.txt:{m['line']} is stale)")
    jobs = os.environ.get('PETCNN_MUTATE_JOBS') or str(min(os.cpu_count() or 1, 4))
    if not jobs.isdigit() or int(jobs) < 1:
        sys.exit(f'mutate: PETCNN_MUTATE_JOBS={jobs}: expected a count of copies, 1 or more')
    jobs = int(jobs)
    workers = [Worker(k) for k in range(max(1, min(jobs, len(muts))))]
    files = list(filter(None, subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard'], cwd=TOP,
        capture_output=True, text=True, check=True).stdout.split('\n')))
    for w in workers:
        os.makedirs(w.tree, exist_ok=True)
        sync(w.tree, files)
        w.log = open(w.logpath, 'w')
    for w, rc in zip(workers, in_parallel(lambda w: build(w.tree, w.log), workers)):
        if rc:
            sys.exit(f'mutate: the unmutated tree does not build (see {w.logpath})')
    # every test named, so none goes stale unseen, shared out over the copies
    tests = sorted({t for m in muts for t in m['tests']})
    shares = [tests[k::len(workers)] for k in range(len(workers))]
    failing = in_parallel(lambda k: workers[k].first_failing(shares[k]), list(range(len(workers))))
    for w, t in zip(workers, failing):
        if t:
            sys.exit(f'mutate: "{t}" fails on the unmutated tree (see {w.logpath})')
    flags, todo, skipped = cpu_flags(), queue.Queue(), 0
    for m in muts:
        if m.get('needs') and m['needs'] not in flags:
            skipped += 1
            print(f"mutate: {m['name']}: not run: this CPU lacks {m['needs']}", flush=True)
        else:
            todo.put(m)
    lock, survived, passed = threading.Lock(), [], []

    def drain(w):
        while True:
            try:
                m = todo.get_nowait()
            except queue.Empty:
                break
            t0 = time.time()
            caught, verdict = w.mutation(m)
            with lock:
                (passed if caught else survived).append(m['name'])
                print(f"mutate: {m['name']}: {verdict} ({time.time() - t0:.0f} s)", flush=True)
        build(w.tree, w.log)
    in_parallel(drain, workers)  # raises what any worker raised: no mutation goes unrun
    copies = f"{len(workers)} cop{'y' if len(workers) == 1 else 'ies'} of the tree"
    print(f'mutate: {len(passed)} passed, {len(survived)} failed' +
          (f', {skipped} skipped' if skipped else '') + f' ({copies})')
    return 1 if survived else 0


if __name__ == '__main__':
    sys.exit(main())
