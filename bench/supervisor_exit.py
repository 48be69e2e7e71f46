"""Exit-detection latency of supervisord, for bench/run.sh.

Usage: python3 supervisor_exit.py SOCKET PROGRAM MARKER RUNS

PROGRAM is a supervisord program (autostart=false, autorestart=false,
startsecs=0) whose command stamps its own exit time into MARKER in ns, like
`sh -c 'sleep 0.3; exec date +%s%N > MARKER'`. Each run starts it over
XML-RPC and polls its state every 0.5 ms. supervisord keeps stop times in
whole seconds, so only `visible` is printed: `visible median p95 mean min`,
in milliseconds after the stamp.
"""

import math
import os
import sys
import time
import xmlrpc.client

from supervisor.xmlrpc import SupervisorTransport


def main():
    socket, program, marker, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    proxy = xmlrpc.client.ServerProxy(
        "http://127.0.0.1", transport=SupervisorTransport(None, None, "unix://" + socket)
    )
    visible = []
    for _ in range(runs):
        if os.path.exists(marker):
            os.remove(marker)
        proxy.supervisor.startProcess(program, True)
        deadline = time.monotonic() + 30
        while True:
            state = proxy.supervisor.getProcessInfo(program)["statename"]
            if state not in ("STARTING", "RUNNING"):
                seen = time.time_ns()
                break
            if time.monotonic() > deadline:
                sys.exit(f"{program} did not end within 30s")
            time.sleep(0.0005)
        for _ in range(100):
            try:
                with open(marker) as f:
                    exited = int(f.read().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.01)
        else:
            sys.exit(f"no exit stamp in {marker}")
        visible.append((seen - exited) / 1e6)
    v = sorted(visible)
    n = len(v)
    median = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    p95 = v[min(n, max(1, math.ceil(0.95 * n))) - 1]
    print(f"visible {median:.2f} {p95:.2f} {sum(v) / n:.2f} {v[0]:.2f}")


if __name__ == "__main__":
    main()
