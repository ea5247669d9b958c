#!/usr/bin/env python3
"""Checks, by disassembly, that no USDT probe site of an x86-64 binary can clobber live data
below %rsp (the red zone).

Linux's optimized uprobe turns a uprobe on a 5-byte nop (the probe sites of OTP patch 0004)
into a `call` into a trampoline, which pushes its return address at -8(%rsp). Code that keeps
data below %rsp without moving it (a leaf function's locals, a spilled USDT argument) loses it.
The patched emulators are compiled with -mno-red-zone so that nothing lives there; this script
checks the result on the binary (docs/probes.md, "The red zone").

For every function that holds a site (the stapsdt notes' locations, mapped to the symbol that
contains them; inlined sites count for the function they are inlined into), or for every
function with --all, it flags:
  * a memory operand below %rsp: -N(%rsp);
  * in a function that sets up %rbp as its frame pointer (mov %rsp,%rbp in its prologue), a
    memory operand -N(%rbp) deeper than the frame the prologue allocated (the pushes after
    that mov plus its sub $M,%rsp);
  * a site's USDT argument operand with either form.
A heuristic on the compiler's usual prologues (not a proof): indexed operands
(-N(%rsp,%reg,s)) are not judged, their address depends on the index. It prints what it
flags and exits 1 when anything is flagged.

    scripts/check_red_zone.py "$(beam_dtrace_build/build.sh --print-prefix)"/erts-*/bin/beam.jit
    scripts/check_red_zone.py --all PREFIX/erts-*/bin/beam.debug.jit

Needs binutils (readelf, nm, objdump).
"""
import argparse
import bisect
import os
import re
import subprocess
import sys

NOTE_RE = re.compile(r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+),.*?Arguments: ?([^\n]*)",
                     re.S)
INSN_RE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
BELOW_RSP_RE = re.compile(r"-0x([0-9a-f]+)\(%rsp\)")
RBP_NEG_RE = re.compile(r"-0x([0-9a-f]+)\(%rbp\)")
ARG_RE = re.compile(r"-?\d+@(-?\d+)\(%(rsp|rbp)\)")
PROLOGUE_LEN = 12


def run(*cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"check_red_zone: {' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc.stdout


def sites(binary):
    """(provider, name, address, arguments) of every stapsdt note."""
    out = run("readelf", "-n", "--wide", binary)
    return [(m.group(1), m.group(2), int(m.group(3), 16), m.group(4).strip())
            for m in NOTE_RE.finditer(out)]


def functions(binary):
    """Sorted (start, size, name) of the binary's defined code symbols."""
    funcs = []
    for line in run("nm", "-S", "-n", "--defined-only", binary).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            start, size = int(parts[0], 16), int(parts[1], 16)
            if size:
                funcs.append((start, size, parts[3]))
    return funcs


def containing(funcs, starts, address):
    i = bisect.bisect_right(starts, address) - 1
    if i >= 0 and funcs[i][0] <= address < funcs[i][0] + funcs[i][1]:
        return funcs[i]
    return None


def disassembly(binary, funcs, starts, wanted):
    """The instructions of every function in wanted, from one objdump of the binary."""
    insns = {f: [] for f in wanted}
    proc = subprocess.Popen(["objdump", "-d", "-w", "--no-show-raw-insn", binary],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        m = INSN_RE.match(line)
        if not m:
            continue
        addr = int(m.group(1), 16)
        func = containing(funcs, starts, addr)
        if func in insns:
            insns[func].append((addr, m.group(2), m.group(3)))
    if proc.wait() != 0:
        raise SystemExit(f"objdump failed on {binary}")
    return insns


def frame_extent(insns):
    """Bytes the prologue allocated below %rbp, or None if the function keeps no frame pointer.

    The pushes after mov %rsp,%rbp and the sub $N,%rsp (or add $-N,%rsp) before the first
    branch; the compiler may interleave argument moves with the pushes. A frame larger than a
    page under -fstack-clash-protection is allocated a page at a time, each sub followed by a
    probe of the new top (sub $0x1000,%rsp; orq $0x0,(%rsp); ...; sub $R,%rsp): every sub of
    that run counts."""
    for i, (_, op, args) in enumerate(insns[:PROLOGUE_LEN]):
        if op == "mov" and args.startswith("%rsp,%rbp"):
            extent = 0
            allocating = False  # inside the run of subs and their stack-clash probes
            for _, op2, args2 in insns[i + 1:i + 1 + 2 * PROLOGUE_LEN]:
                immediate = re.match(r"\$0x([0-9a-f]+),%rsp$", args2)
                if op2 == "push" and not allocating:
                    extent += 8
                elif op2 == "sub" and immediate:
                    extent += int(immediate.group(1), 16)
                    allocating = True
                elif op2 == "add" and immediate and not allocating:
                    return extent + (1 << 64) - int(immediate.group(1), 16)
                elif allocating and op2 in ("or", "orq") and args2 == "$0x0,(%rsp)":
                    continue
                elif allocating or op2.startswith(("j", "call", "ret")):
                    break
            return extent
    return None


def check_function(insns, func_sites):
    extent = frame_extent(insns)
    problems = []
    for addr, op, args in insns:
        if op == "lea":  # computes an address, stores nothing
            continue
        if BELOW_RSP_RE.search(args):
            problems.append(f"{addr:#x}: {op} {args} (below %rsp)")
        elif extent is not None:
            for m in RBP_NEG_RE.finditer(args):
                if int(m.group(1), 16) > extent:
                    problems.append(f"{addr:#x}: {op} {args} (below the {extent}-byte frame)")
    for provider, probe, addr, arguments in func_sites:
        for m in ARG_RE.finditer(arguments):
            offset, reg = int(m.group(1)), m.group(2)
            if offset < 0 and (reg == "rsp" or extent is None or -offset > extent):
                problems.append(f"{addr:#x}: site {provider}:{probe} argument {m.group(0)} below %rsp")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--all", action="store_true",
                        help="check every function of the binary, not only those holding sites")
    args = parser.parse_args()
    failed = False
    for binary in args.binaries:
        if not os.path.isfile(binary):
            raise SystemExit(f"check_red_zone: no such file: {binary}")
        funcs = functions(binary)
        starts = [f[0] for f in funcs]
        by_func = {}
        unmapped = 0
        for site in sites(binary):
            func = containing(funcs, starts, site[2])
            if func is None:
                unmapped += 1
            else:
                by_func.setdefault(func, []).append(site)
        targets = funcs if args.all else sorted(by_func)
        code = disassembly(binary, funcs, starts, set(targets))
        flagged = 0
        for func in targets:
            problems = check_function(code[func], by_func.get(func, []))
            if problems:
                flagged += 1
                print(f"{binary}: {func[2]}:")
                for p in problems:
                    print(f"  {p}")
        n_sites = sum(len(v) for v in by_func.values()) + unmapped
        print(f"{binary}: {n_sites} sites in {len(by_func)} functions ({unmapped} outside any symbol); "
              f"{len(targets)} functions checked, {flagged} flagged")
        failed |= flagged > 0 or unmapped > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
