#!/usr/bin/env python3
"""Counts the calls between files of this workspace in callgrind outputs.

Usage: crossings.py SMALL.out LARGE.out ITEMS [ROOT]

A crossing is a call whose caller is defined in one source file of the
workspace (under ROOT, not under target/) and whose callee in another.
Each output's count is the sum of such calls (callgrind's call counts);
the difference between the two runs, divided by ITEMS (how many more
items the large run made), is what one item costs: the run's setup and
teardown cancel out. Prints that figure and the file pairs crossed most.
"""
import collections
import os
import sys


def crossings(path, root):
    names = {"fl": {}, "fn": {}}
    pairs = collections.Counter()
    caller_file = None
    callee_file = None
    pending = False

    def resolve(kind, value):
        # Name compression: "(12) /path" defines id 12, "(12)" reuses it.
        value = value.strip()
        if value.startswith("("):
            key, _, rest = value.partition(")")
            key = key[1:]
            rest = rest.strip()
            if rest:
                names[kind][key] = rest
            return names[kind].get(key, "")
        return value

    def ours(file):
        return file.startswith(root) and "/target/" not in file

    with open(path, errors="replace") as out:
        for line in out:
            if line.startswith("fl="):
                caller_file = resolve("fl", line[3:])
                callee_file = caller_file
            elif line.startswith(("fi=", "fe=")):
                resolve("fl", line[3:])
            elif line.startswith("fn="):
                callee_file = caller_file
            elif line.startswith(("cfl=", "cfi=")):
                callee_file = resolve("fl", line[4:])
            elif line.startswith("cfn="):
                resolve("fn", line[4:])
            elif line.startswith("calls="):
                count = int(line[6:].split()[0])
                if caller_file != callee_file and ours(caller_file) and ours(callee_file):
                    a = os.path.relpath(caller_file, root)
                    b = os.path.relpath(callee_file, root)
                    pairs[(a, b)] += count
                pending = True
            elif pending:
                # The cost line after `calls=` ends the call: the next one
                # names its callee's file again, or is in the caller's.
                callee_file = caller_file
                pending = False
    return pairs


def main():
    small, large, items = sys.argv[1], sys.argv[2], int(sys.argv[3])
    root = os.path.abspath(sys.argv[4] if len(sys.argv) > 4 else ".") + "/"
    a, b = crossings(small, root), crossings(large, root)
    diff = collections.Counter()
    for pair in set(a) | set(b):
        diff[pair] = b[pair] - a[pair]
    total = sum(diff.values())
    print(f"file crossings per map item: {total / items:.1f}")
    by_file = collections.Counter()
    for (x, y), n in diff.items():
        by_file[x] += n
        by_file[y] += n
    print("files crossed most (calls in or out, per item):")
    for file, n in by_file.most_common(12):
        if n / items >= 0.5:
            print(f"  {n / items:6.1f}  {file}")
    print("pairs crossed most (per item):")
    for (x, y), n in diff.most_common(25):
        if n / items >= 0.5:
            print(f"  {n / items:6.1f}  {x} -> {y}")


if __name__ == "__main__":
    main()
