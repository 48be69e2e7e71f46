#!/usr/bin/env python3
"""Times commands in turn, one run of each per round, and prints each one's
median and p95 in milliseconds, one line per command in the order given.

    python3 bench/alternate.py ROUNDS 'command one' 'command two' ...

Alternating cancels what drifts during a run (other load on the machine,
CPU frequency), which timing one command's runs and then the other's does
not: on a shared 2-core machine the two blocks can differ by a third. Each
command is split on whitespace and run without a shell, its output
discarded; a failing run stops the bench.
"""

import statistics
import subprocess
import sys
import time


def main() -> None:
    rounds = int(sys.argv[1])
    commands = [c.split() for c in sys.argv[2:]]
    times = [[] for _ in commands]
    for command in commands:
        for _ in range(5):  # warm the page cache and the daemons
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    for _ in range(rounds):
        for command, taken in zip(commands, times):
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
            taken.append((time.perf_counter() - start) * 1000)
    for taken in times:
        taken.sort()
        p95 = taken[max(0, int(len(taken) * 0.95) - 1)]
        print("%.2f %.2f" % (statistics.median(taken), p95))


if __name__ == "__main__":
    main()
