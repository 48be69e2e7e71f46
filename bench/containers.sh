#!/usr/bin/env bash
# Benchmark for issue 18: container execution mode, against Podman's
# Docker-compatible service on a private socket (the image is a local
# busybox rootfs, imported here; no registry).
#
#   bash bench/containers.sh            # ROUNDS=10 COUNT=10 by default
#
# Prints, in one invocation:
#   spawn->running   from `taskdaemon spawn --image` to the container's first
#                    output line in its log, beside `podman run` of the same
#                    image and command (to its first line on stdout);
#   overhead         resident memory per supervised container of what
#                    taskdaemon adds (its shim + the container runner, and
#                    the daemon's growth), beside podman's own conmon.
# TD=path/to/taskdaemon uses that binary (default: a release build).
# Figures only: nothing here fails on a slow result.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -z "${TD:-}" ]]; then
  cargo build --release --locked -q -p taskdaemon-cli
  TD=$PWD/target/release/taskdaemon
fi
export TD ROUNDS=${ROUNDS:-10} COUNT=${COUNT:-10}
exec python3 bench/containers.py
