#!/usr/bin/env python3
"""Generates the boundary table of sketch/bucket_index.h with exact integer arithmetic.

The kernel's bucket index for a value v >= 1 is 64*e + j, where e = floor(log2 v) and j counts
the k in 1..63 with v >= 2^(e + k/64).  With v normalised so that its leading one is bit 63
(m = v << (63 - e)), that test is m >= 2^(63 + k/64), and since m is an integer it is the same
as m >= T[k] with

    T[k] = ceil(2^(63 + k/64)) = the smallest integer t with t^64 >= 2^(63*64 + k).

No floating point is used anywhere: t is found by an integer bisection on t^64.

    sketch/tools/gen_bucket_table.py            # prints the C table
    sketch/tools/gen_bucket_table.py --check sketch/bucket_index.h
                                                # exit 1 unless the header holds this table
"""
import re
import sys

SUBBUCKET_BITS = 6
SUBBUCKETS = 1 << SUBBUCKET_BITS


def boundary(k):
    """The smallest integer t with t^64 >= 2^(63*64 + k), i.e. ceil(2^(63 + k/64))."""
    target = 1 << (63 * SUBBUCKETS + k)
    lo, hi = 1 << 63, 1 << 64  # 2^63 <= 2^(63 + k/64) < 2^64 for 0 <= k < 64
    while lo < hi:
        mid = (lo + hi) // 2
        if mid**SUBBUCKETS >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def table():
    return [boundary(k) for k in range(SUBBUCKETS)]


def c_table():
    lines = []
    values = table()
    for row in range(0, SUBBUCKETS, 4):
        lines.append(
            "    " + " ".join("0x%016xULL," % v for v in values[row:row + 4]))
    return "\n".join(lines)


def header_table(text):
    match = re.search(
        r"orion_bucket_boundaries\[ORION_BUCKET_SUBBUCKETS\] = \{(.*?)\};", text, re.S)
    if not match:
        return None
    return [int(v, 16) for v in re.findall(r"0x([0-9a-fA-F]+)ULL", match.group(1))]


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        with open(argv[2], encoding="utf-8") as f:
            found = header_table(f.read())
        expected = table()
        if found != expected:
            print("%s: the boundary table differs from the exact one; regenerate it with %s"
                  % (argv[2], argv[0]), file=sys.stderr)
            return 1
        print("%s: all %d boundaries are exact" % (argv[2], len(expected)))
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(c_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
