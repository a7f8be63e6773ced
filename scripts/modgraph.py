#!/usr/bin/env python3
"""The module graph of src/: which module names which (through `use crate::…`, `crate::…` paths
and `super::…`), its import cycles, and the source files over the line budget.

    python3 scripts/modgraph.py            exit 1 on a cycle or an over-long file
    python3 scripts/modgraph.py --edges    also print every edge

A module is a file (`src/a/b.rs` or `src/a/b/mod.rs` is `a::b`). Unit tests (a `tests.rs`
file, or the `#[cfg(test)] mod tests` block at the end of a file) are left out of the graph: a
test may reach anywhere. Every file counts whole against the line budget, tests included,
unless its module doc says why in a line that starts `//! Length:`.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
BUDGET = 500


budget_only = []


def modules():
    found = {}
    for root, _, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".rs"):
                continue
            if name == "tests.rs":
                budget_only.append(os.path.join(root, name))
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = ["crate"] if rel == ["lib"] else ["main"]
            found[tuple(rel)] = path
    return found


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"#\[cfg\(test\)\]\s*mod tests\b", text)
    return text[: m.start()] if m else text


def expand(group):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']"""
    group = group.strip()
    i = group.find("{")
    if i < 0:
        return [group]
    prefix, body = group[:i], group[i + 1 : group.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for part in parts:
        if part.strip():
            out += [prefix + p for p in expand(part)]
    return out


def paths(text, me):
    found = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)::[^;]*);", text, re.S):
        found += expand(re.sub(r"\s+", "", m.group(1)))
    for m in re.finditer(r"(?<![:\w])((?:crate|super)(?:::\w+)+)", text):
        found.append(m.group(1))
    out = []
    for p in found:
        segs = p.split("::")
        base = list(me)
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] in ("super", "self"):
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
        out.append(base + segs)
    return out


def main():
    mods = modules()
    graph = {m: set() for m in mods}
    long = []
    for me, path in mods.items():
        raw = open(path).read()
        lines = raw.count("\n")
        body = strip(raw)
        if lines > BUDGET and "//! Length:" not in raw:
            long.append((lines, path))
        key = me if me not in (("crate",), ("main",)) else ()
        for full in paths(body, list(key) if key else []):
            for n in range(len(full), 0, -1):
                target = tuple(full[:n])
                if target in mods:
                    break
            else:
                continue
            if target != me and not (len(target) < len(me) and me[: len(target)] == target):
                graph[me].add(target)
    # Tarjan's strongly connected components.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    name = lambda m: "::".join(m)
    if "--edges" in sys.argv:
        for v in sorted(graph):
            for w in sorted(graph[v]):
                print(f"{name(v)} -> {name(w)}")
    for comp in comps:
        members = set(comp)
        print("cycle: " + ", ".join(sorted(name(m) for m in comp)))
        for v in sorted(comp):
            for w in sorted(graph[v] & members):
                print(f"    {name(v)} -> {name(w)}")
    for path in budget_only:
        lines = open(path).read().count("\n")
        if lines > BUDGET:
            long.append((lines, path))
    for lines, path in sorted(long, reverse=True):
        print(f"over {BUDGET} lines: {os.path.relpath(path, os.path.join(SRC, '..'))} ({lines})")
    print(f"modules: {len(mods)}, edges: {sum(len(s) for s in graph.values())}, cycles: {len(comps)}, long files: {len(long)}")
    return 1 if comps or long else 0


if __name__ == "__main__":
    sys.exit(main())
