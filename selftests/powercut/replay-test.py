#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# Host test of replay.c: a dm-log-writes log built here by hand (the layout
# of drivers/md/dm-log-writes.c), replayed onto image files; the expected
# images come from this script's own model, not from replay.c.
#
# usage: replay-test.py REPLAY_BINARY     prints "replay: N passed, N failed"
import os
import struct
import subprocess
import sys
import tempfile

FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
SS = 512
BIN = sys.argv[1]
passed = failed = 0


def check(name, ok, detail=''):
    global passed, failed
    if ok:
        passed += 1
        print(f'ok {name}')
    else:
        failed += 1
        print(f'not ok {name} {detail}')


def make_log(path, entries, magic=0x6a736677736872, version=1, count=None):
    """entries: (sector, nr, flags, data bytes or mark name)"""
    out = bytearray(struct.pack('<QQQI', magic, version,
                                len(entries) if count is None else count, SS))
    out += bytes(SS - len(out))
    for sector, nr, flags, data in entries:
        if flags & MARK:
            hdr = struct.pack('<QQQQ', sector, 0, flags, len(data)) + data
            out += hdr + bytes(SS - len(hdr))
        else:
            out += struct.pack('<QQQQ', sector, nr, flags, 0) + bytes(SS - 32)
            if not flags & DISCARD:
                assert len(data) == nr * SS
                out += data
    with open(path, 'wb') as f:
        f.write(out)


def run(*args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)


def blk(ch, n):
    return ch.encode() * (SS * n)


DEV = 64 * SS
BASE = bytes(range(256)) * (DEV // 256)
# 0 A: sectors 8-15 (8 KiB: two 4 KiB blocks); 1 flush; 2 B: sector 9;
# 3 FUA F: sector 32; 4 mark m1; 5 C: sectors 16-31 (two blocks); 6 discard 34-35;
# 7 flush+FUA with data G: sector 40; 8 mark end
ENTRIES = [(8, 8, 0, blk('a', 8)), (0, 0, FLUSH, b''), (9, 1, 0, blk('b', 1)),
           (32, 1, FUA, blk('f', 1)), (0, 0, MARK, b'm1'), (16, 16, 0, blk('c', 16)),
           (34, 2, DISCARD, b''), (40, 1, FLUSH | FUA, blk('g', 1)),
           (0, 0, MARK, b'end')]


def model(upto):
    img = bytearray(BASE)
    for sector, nr, flags, data in ENTRIES[:upto]:
        if flags & MARK or not nr:
            continue
        img[sector * SS:(sector + nr) * SS] = bytes(nr * SS) if flags & DISCARD else data
    return bytes(img)


with tempfile.TemporaryDirectory() as d:
    log, img = os.path.join(d, 'log'), os.path.join(d, 'img')
    make_log(log, ENTRIES)

    def fresh():
        with open(img, 'wb') as f:
            f.write(BASE)

    def image():
        with open(img, 'rb') as f:
            return f.read()

    r = run('list', log)
    lines = r.stdout.splitlines()
    check('list', r.returncode == 0 and len(lines) == 10 and
          lines[5].endswith('MARK m1') and lines[8] == '7 sector 40 nr 1 FLUSH FUA',
          r.stdout + r.stderr)
    for upto in range(len(ENTRIES) + 1):
        fresh()
        r = run('apply', log, img, 0, upto)
        check(f'apply 0..{upto}', r.returncode == 0 and image() == model(upto), r.stderr)
    # In steps: the same image as in one go.
    fresh()
    ok = all(run('apply', log, img, a, b).returncode == 0 for a, b in ((0, 2), (2, 5), (5, 9)))
    check('apply in steps', ok and image() == model(9))

    # Crash states between the flushes at 1 and 7: the FUA write (3) is
    # always there; every 4 KiB block of the others is old or new (tear),
    # every write whole or absent (drop); the newest copy of a block wins.
    seen = set()
    torn = 0
    for mode in ('drop', 'tear'):
        for seed in range(40):
            fresh()
            halves = []
            run('apply', log, img, 0, 2)
            r = run('crash', log, img, 2, 7, seed, mode)
            got = image()
            ok = r.returncode == 0 and got[32 * SS:33 * SS] == blk('f', 1)
            pre = model(2)
            for sector, nr, flags, data in ENTRIES[2:7]:
                if flags & (MARK | FUA) or not nr:
                    continue
                if flags & DISCARD:
                    data = bytes(nr * SS)
                unit = 8 if mode == 'tear' else nr
                for u in range(0, nr, unit):
                    lo, hi = (sector + u) * SS, (sector + min(nr, u + unit)) * SS
                    new = data[u * SS:u * SS + hi - lo]
                    part = got[lo:hi]
                    ok = ok and part in (pre[lo:hi], new)
                    seen.add((mode, sector, u, part == new))
                    if sector == 16:
                        halves.append(part == new)
            if mode == 'tear' and len(halves) == 2 and halves[0] != halves[1]:
                torn += 1
            # Outside what the entries wrote: untouched.
            ok = ok and got[:8 * SS] == pre[:8 * SS] and got[36 * SS:] == pre[36 * SS:]
            # A, before the flush, is durable where B does not cover it.
            ok = ok and got[8 * SS:9 * SS] == blk('a', 1) and got[10 * SS:16 * SS] == blk('a', 6)
            if not ok:
                break
        check(f'crash {mode}: FUA kept, the rest old or new', ok, r.stderr)
    check('crash: both kept and dropped writes seen',
          all((m, 16, 0, v) in seen for m in ('drop', 'tear') for v in (True, False)))
    check('crash tear: a write torn (one block new, the other old)', torn > 0)

    # Newest wins: two overlapping writes between flushes.
    ov = os.path.join(d, 'ov')
    make_log(ov, [(0, 0, FLUSH, b''), (0, 8, 0, blk('x', 8)), (0, 8, 0, blk('y', 8))])
    ok = True
    for seed in range(30):
        fresh()
        r = run('crash', ov, img, 1, 3, seed, 'drop')
        got = image()[:8 * SS]
        ok = ok and r.returncode == 0 and got in (BASE[:8 * SS], blk('x', 8), blk('y', 8))
        # x may only be there if y was dropped: the output says how many kept.
        if got == blk('x', 8):
            ok = ok and '1 pieces written' in r.stdout
    check('crash: the newest copy of a block wins', ok)

    # Bad input: a precise message, exit 1, the image unchanged.
    bad = os.path.join(d, 'bad')
    cases = [
        ('bad magic', lambda: make_log(bad, ENTRIES, magic=1), ('apply', bad, img, 0, 1),
         'bad magic'),
        ('bad version', lambda: make_log(bad, ENTRIES, version=2), ('apply', bad, img, 0, 1),
         'version 2'),
        ('entries beyond the log', lambda: make_log(bad, ENTRIES, count=12),
         ('apply', bad, img, 0, 1), 'beyond the log'),
        ('range beyond the entries', lambda: None, ('apply', log, img, 0, 10),
         'not within the 9 entries'),
        ('crash across a flush', lambda: None, ('crash', log, img, 0, 3, 1, 'drop'),
         'entry 1 is a flush'),
        ('unknown crash mode', lambda: None, ('crash', log, img, 2, 3, 1, 'zap'),
         "not 'zap'"),
        ('plan with a missing mark', lambda: None, ('plan', log, 'm1', 'nope', 'end', 1, 2),
         "mark 'nope' not in the log"),
    ]
    for name, prep, args, msg in cases:
        prep()
        fresh()
        r = run(*args)
        check(f'refused: {name}', r.returncode == 1 and msg in r.stderr and image() == BASE,
              f'rc {r.returncode} stderr {r.stderr!r}')

    r = run('plan', log, 'm1', 'end', 'end', 5, 4)
    pts = r.stdout.splitlines()
    # Prefixes: just after m1 (5) and after the flush at 7 (8); 4 crash
    # points in [5, 7), all inside the window.
    check('plan', r.returncode == 0 and 'prefix 5 1' in pts and 'prefix 8 1' in pts and
          len(pts) == 6 and all(p.split()[1] == '5' and p.split()[2] in ('6', '7')
                                for p in pts if not p.startswith('prefix')), r.stdout + r.stderr)

print(f'replay: {passed} passed, {failed} failed')
sys.exit(1 if failed else 0)
