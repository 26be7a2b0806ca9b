#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_spool_reader (tests/fuzz/corpus/spool/).

The seeds are committed; this script documents how they were made and
rewrites them when the spool format changes (src/data/datalog.h):
a 64-byte header, then 64-byte records from header.rec_off on."""
import os
import struct
import sys

COMMITTED = 0x434F4D4D
ITEM, STAGE, BATCH, SITE, STR = 1, 2, 3, 4, 5


def header(version=2, rec_off=64, closed=1, error=0, error_op=0, dropped=0, worker=1, pid=4321):
    h = b"CPSPOOL1" + struct.pack("<IiiIQIiIIQQ", version, pid, worker, closed, 123456789,
                                  rec_off, error, error_op, 0, dropped, 0)
    assert len(h) == 64
    return h.ljust(rec_off, b"\0") if rec_off >= 64 else h


def rec(type_, site=0, epoch=0, index=0, t=0, dur=0, aux=0, flags=0, commit=COMMITTED):
    r = struct.pack("<IHHIIqQQQQ", commit, type_, flags, site, epoch, index, t, dur, aux,
                    0).ljust(64, b"\0")  # the union is as large as text[56]
    assert len(r) == 64
    return r


def text(b):
    return struct.pack("<IHH", COMMITTED, STR, 0) + b.ljust(56, b"\0")


def site(sid, name, file, kind=4, line=3, aux=None):
    blob = name + b"\0" + file + b"\0"
    out = rec(SITE, site=sid, index=line, aux=len(blob) if aux is None else aux, flags=kind)
    for i in range(0, len(blob), 56):
        out += text(blob[i:i + 56])
    return out


def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = {
        "valid_v2": header() + site(1, b"VideoDataset", b"ds.py")
        + rec(ITEM, 1, index=7, t=1000, dur=500) + site(2, b"decode", b"ds.py", kind=6)
        + rec(STAGE, 2, index=7, dur=200) + site(3, b"loader", b"t.py", kind=5)
        + rec(BATCH, 3, epoch=1, index=8, t=2000, dur=40),
        "valid_v1": header(version=1, rec_off=4096)[:64].ljust(4096, b"\0")
        + site(1, b"ds", b"a.py") + rec(ITEM, 1, index=1, t=5, dur=5),
        "long_name": header() + site(9, b"n" * 200, b"f" * 100) + rec(ITEM, 9, dur=1),
        "site_id_2p31": header() + site(0x80000000, b"x", b"y") + rec(ITEM, 0x80000000, dur=1),
        "name_without_nul": header() + rec(SITE, site=4, aux=56) + text(b"A" * 56)
        + rec(ITEM, 4, dur=1),
        "huge_durations": header() + site(1, b"d", b"f") + rec(ITEM, 1, t=2**64 - 1, dur=2**64 - 1)
        + rec(ITEM, 1, dur=2**46) * 4,
        "bad_counts": header() + site(1, b"d", b"f", aux=2**40) + rec(BATCH, 1, index=-1)
        + rec(BATCH, 1, index=2**63 - 1) + rec(77) + text(b"orphan"),
        "uncommitted_tail": header(closed=0) + site(1, b"d", b"f") + rec(ITEM, 1, dur=3)
        + rec(ITEM, 1, dur=4, commit=0) + rec(ITEM, 1, dur=5)[:30],
        "enospc": header(closed=1, error=28, error_op=1, dropped=99) + site(1, b"d", b"f")
        + rec(ITEM, 1, dur=3),
        "bad_rec_off": header(rec_off=64)[:48] + struct.pack("<IiII", 100, 0, 0, 0) + b"\0" * 64,
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "spool"))
