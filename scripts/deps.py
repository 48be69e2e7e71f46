#!/usr/bin/env python3
"""Checks the dependency graph from `cargo metadata` (issue 17's audit).

The RustSec advisory database cannot be fetched from this machine's network
(github.com does not resolve), so `cargo audit` and `cargo deny check
advisories` cannot run in CI here. What can be checked offline is checked:

- licences: every package's SPDX expression must be satisfiable with the
  allowed licences below (OR takes any side, AND needs both);
- sources: every package comes from crates.io or this workspace (no git or
  other registries);
- duplicate versions: crates present in more than one version are printed,
  and a duplicate not in scripts/deps-duplicates.txt fails the check, so a
  new one is a decision rather than an accident.

When `cargo audit` is installed and TASKDAEMON_ADVISORY_DB names a copy of
the advisory database, `scripts/deps.sh` runs it too.
"""

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ALLOWED = {
    "MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause",
    "BSD-3-Clause", "ISC", "Unicode-3.0", "Unicode-DFS-2016", "Zlib", "0BSD",
    "CC0-1.0", "Unlicense", "BSL-1.0", "CDLA-Permissive-2.0", "MPL-2.0", "WTFPL",
}
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
BASELINE = Path(__file__).with_name("deps-duplicates.txt")


def tokens(expression):
    # "MIT/Apache-2.0" is the old way of writing "MIT OR Apache-2.0".
    expression = re.sub(r"\s*/\s*", " OR ", expression)
    return re.findall(r"\(|\)|[^\s()]+(?:\s+WITH\s+[^\s()]+)?", expression)


def satisfiable(expression):
    """Whether an SPDX expression holds with only ALLOWED licences."""
    items = tokens(expression)
    position = 0

    def parse_or():
        nonlocal position
        value = parse_and()
        while position < len(items) and items[position] == "OR":
            position += 1
            value = parse_and() or value
        return value

    def parse_and():
        nonlocal position
        value = parse_atom()
        while position < len(items) and items[position] == "AND":
            position += 1
            value = parse_atom() and value
        return value

    def parse_atom():
        nonlocal position
        if position >= len(items):
            raise ValueError(f"unexpected end of {expression!r}")
        item = items[position]
        position += 1
        if item == "(":
            value = parse_or()
            if position >= len(items) or items[position] != ")":
                raise ValueError(f"unbalanced parentheses in {expression!r}")
            position += 1
            return value
        return re.sub(r"\s+", " ", item) in ALLOWED

    value = parse_or()
    if position != len(items):
        raise ValueError(f"cannot read {expression!r}")
    return value


def main():
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    problems = []
    versions = defaultdict(set)
    for package in metadata["packages"]:
        name, version = package["name"], package["version"]
        versions[name].add(version)
        if package["source"] not in (None, CRATES_IO):
            problems.append(f"{name} {version} comes from {package['source']}")
        licence = package["license"]
        if licence is None:
            problems.append(f"{name} {version} declares no SPDX licence")
        else:
            try:
                if not satisfiable(licence):
                    problems.append(f"{name} {version}: licence {licence!r} is not allowed")
            except ValueError as e:
                problems.append(f"{name} {version}: {e}")
    allowed_duplicates = {
        line.split("#")[0].strip()
        for line in BASELINE.read_text().splitlines()
        if line.split("#")[0].strip()
    }
    duplicates = {n: sorted(v) for n, v in versions.items() if len(v) > 1}
    for name, found in sorted(duplicates.items()):
        marker = "" if name in allowed_duplicates else "  <- new"
        print(f"duplicate: {name} {', '.join(found)}{marker}")
        if name not in allowed_duplicates:
            problems.append(f"{name} is present in {len(found)} versions ({', '.join(found)}); "
                            f"remove the duplicate or list it in {BASELINE.name}")
    print(f"{len(metadata['packages'])} packages, {len(duplicates)} duplicated crates, "
          f"{len(problems)} problems")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
