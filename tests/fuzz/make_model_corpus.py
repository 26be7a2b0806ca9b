#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_model_reader (tests/fuzz/corpus/model/).

The seeds are committed; this script documents how they were made and
rewrites them when the model file format changes (src/model/model_io.h):
a 192-byte header, then sites, threads, nodes (preorder), flat functions,
the sampling section, the lines section (format version 2) and an 8-byte
trailer."""
import os
import struct
import sys

NONE = 0xFFFFFFFF
NCOUNTERS = 18


def site(name, file, line=1, kind=3):
    return struct.pack("<IHHII", line, kind, 0, len(name), len(file)) + name + b"\0" + file + b"\0"


def thread(root, tid=100, pid=4321, worker=-1, index=0, events=10, dropped=0):
    return struct.pack("<QiiIIQQ", tid, pid, worker, index, root, events, dropped)


def node(site_, parent, first_child=NONE, next_sibling=NONE, depth=0, count=1, incl=100,
         self_=50, rss=(0, 0, 0), smp=(0, 0, 0, 0, 0)):
    vals = [count, incl, self_, 0, 0, incl // max(count, 1), incl, incl, incl, incl, 0]
    return (struct.pack("<IIIII", site_, parent, first_child, next_sibling, depth)
            + struct.pack("<11Q", *vals) + struct.pack("<qqQ", *rss) + struct.pack("<5Q", *smp))


def func(site_, calls=1, incl=100, self_=50, smp=(0, 0, 0, 0, 0)):
    vals = [calls, incl, self_, 0, 0, incl, incl, incl, incl, incl]
    return (struct.pack("<I", site_) + struct.pack("<10Q", *vals) + struct.pack("<qqQ", 0, 0, 0)
            + struct.pack("<5Q", *smp))


def sampling(frames=(), stacks=(), timeline=(), enabled=0, counters=None):
    """frames: (site, line); stacks: (first, n); timeline: (t_ns, tid, pid, worker, stack,
    weight, state).  13 counters: interval, samples, running, idle, gil, ticks, missed,
    read_errors, dropped_stacks, dropped_samples, timeline_dropped, threads, sampler_cpu_ns."""
    c = counters if counters is not None else [0] * 13
    out = struct.pack("<6I", enabled, 0, 0, len(frames), len(stacks), len(timeline))
    out += struct.pack("<13Q", *c)
    out += b"".join(struct.pack("<II", *f) for f in frames)
    out += b"".join(struct.pack("<II", *st) for st in stacks)
    out += b"".join(struct.pack("<QQiiIIHH", *x, 0) for x in timeline)
    return out


def lines(rows=(), exact=0, dropped=0):
    """rows: (site, line, hits, time_ns, samples, sampled_ns, text or None), sorted."""
    out = struct.pack("<IIQ", exact, len(rows), dropped)
    for site_, line, hits, t, smp, sns, text in rows:
        out += struct.pack("<II4Q", site_, line, hits, t, smp, sns)
        out += struct.pack("<I", 0xFFFFFFFF if text is None else len(text)) + (text or b"")
    return out


def model(sites, threads, nodes, funcs, worker=1, pid=4321, counters=None, version=2, flags=0,
          length_delta=0, trailer=b"CPMEND\0\0", samp=None, lns=None):
    c = counters if counters is not None else [1700000000000000000, 5000, 40] + [0] * 15
    body = b"".join(sites) + b"".join(threads) + b"".join(nodes) + b"".join(funcs)
    body += (samp if samp is not None else sampling()) + (lns if lns is not None else lines())
    total = 192 + len(body) + len(trailer)
    hdr = (b"CPMODEL\0" + struct.pack("<IIQ", version, flags, total + length_delta)
           + struct.pack("<iiIIII", pid, worker, len(sites), len(threads), len(nodes), len(funcs))
           + struct.pack(f"<{NCOUNTERS}Q", *c))
    assert len(hdr) == 192
    return hdr + body + trailer


# dropped_nodes 2, nodes_cut 1, exited_threads 2, pool_buffers 3, merged 4, approx 1
CUT_COUNTERS = [1, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 1]


def main(out):
    os.makedirs(out, exist_ok=True)
    s3 = [site(b"decode", b"ds.py", 10), site(b"resize", b"ds.py", 20, kind=1),
          site(b"step", b"", 0, kind=0)]
    # root(0) -> decode(1) -> resize(2); root -> step(3)
    tree = [node(0, NONE, 1), node(1, 0, 2, 3, 1, 3, 300, 100),
            node(2, 1, NONE, NONE, 2, 3, 200, 200), node(3, 0, NONE, NONE, 1, 1, 50, 50)]
    funcs = [func(1, 3, 300, 100), func(2, 3, 200, 200), func(3, 1, 50, 50)]
    seeds = {
        "valid_one_thread": model(s3, [thread(0)], tree, funcs),
        "valid_two_threads": model(s3, [thread(0), thread(4, tid=101, index=1)],
                                   tree + [node(0, NONE, 5), node(1, 4, NONE, NONE, 1)], funcs),
        "valid_empty": model([], [], [], [], worker=0),
        "valid_cut_counters": model(s3, [thread(0)],
                                    [tree[0], node(1, 0, 2, NONE, 1), node(2, 1, NONE, NONE, 2)],
                                    funcs, counters=CUT_COUNTERS),
        "truncated": model(s3, [thread(0)], tree, funcs)[:300],
        "sibling_loop": model(s3, [thread(0)], tree[:3] + [node(3, 0, NONE, 1, 1)], funcs),
        "child_loop": model(s3, [thread(0)], [node(0, NONE, 1), node(1, 0, 0, NONE, 1)], funcs),
        "name_without_nul": model([struct.pack("<IHHII", 1, 3, 0, 4, 0) + b"abcdX\0"],
                                  [thread(0)], [node(0, NONE)], []),
        "huge_counts": model(s3, [thread(0)],
                             [node(0, NONE, 1), node(1, 0, NONE, NONE, 1, 2**64 - 1)],
                             [func(1, 2**63)]),
        "length_mismatch": model(s3, [thread(0)], tree, funcs, length_delta=-1),
        "bad_trailer": model(s3, [thread(0)], tree, funcs, trailer=b"CPMENX\0\0"),
        # root -> decode (sampled 4 times) -> resize; one sampled stack resize<decode
        "valid_sampled": model(
            s3, [thread(0)],
            [node(0, NONE, 1, smp=(4, 0, 4, 40, 0)),
             node(1, 0, 2, 3, 1, 3, 300, 100, smp=(4, 1, 4, 40, 10)),
             node(2, 1, NONE, NONE, 2, 3, 200, 200, smp=(3, 3, 3, 30, 30)),
             node(3, 0, NONE, NONE, 1, 1, 50, 50)],
            [func(1, 3, 300, 100, smp=(4, 1, 4, 40, 10)), func(2, 3, 200, 200),
             func(3, 1, 50, 50)],
            samp=sampling([(2, 21), (1, 11)], [(0, 0), (0, 2)],
                          [(1000, 100, 4321, -1, 1, 10, 1), (2000, 100, 4321, -1, 1, 10, 1)],
                          enabled=1, counters=[1000000, 4, 4, 0, 0, 4] + [0] * 7),
            lns=lines([(1, 11, 0, 0, 1, 10, b"x = decode(f)"), (2, 21, 0, 0, 3, 30, None)])),
        "old_version": model(s3, [thread(0)], tree, funcs, version=1),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "model"))
