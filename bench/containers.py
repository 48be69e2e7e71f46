"""Measures container execution mode; see bench/containers.sh."""
import os, shutil, socket, statistics, subprocess, sys, tempfile, time

TD = os.environ["TD"]
ROUNDS = int(os.environ.get("ROUNDS", "10"))
COUNT = int(os.environ.get("COUNT", "10"))
IMAGE = "localhost/td-busybox:bench"
tmp = tempfile.mkdtemp(prefix="td-bench-containers-")
sock = os.path.join(tmp, "podman.sock")
host = "unix://" + sock
env = dict(os.environ, DOCKER_HOST=host, NO_COLOR="1")


def ping():
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        data = s.recv(4096)
        return data.endswith(b"OK")
    except OSError:
        return False


def podman(*args, **kw):
    return subprocess.run(["podman", "--url", host, *args], check=True,
                          capture_output=True, text=True, **kw)


def wait_until(check, what, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.002)
    sys.exit(f"timed out waiting for {what}")


def rss_kb(pid, field="VmRSS:"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pids_with(*needles):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(n in cmd for n in needles):
            out.append(int(pid))
    return out


def remove_ours():
    # The engine's storage is shared with other users: only our labels.
    for label in ["td-bench=" + tmp, "taskdaemon.workspace=" + ws]:
        ids = subprocess.run(["podman", "--url", host, "ps", "-aq", "--filter", "label=" + label],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["podman", "--url", host, "rm", "-f", "-t", "0", *ids],
                           capture_output=True)


service = subprocess.Popen(["podman", "--runtime", "runc", "system", "service", "--time=0", host],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ws = os.path.join(tmp, "ws")
try:
    wait_until(ping, "the podman service")
    root = os.path.join(tmp, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
    for applet in ["sh", "echo", "sleep", "true"]:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    subprocess.run(["tar", "-C", root, "-cf", os.path.join(tmp, "rootfs.tar"), "."], check=True)
    podman("import", os.path.join(tmp, "rootfs.tar"), IMAGE)
    os.makedirs(ws)
    td = lambda *a: subprocess.run([TD, "--workspace", ws, *a], env=env, check=True,
                                   capture_output=True, text=True)
    td("init")
    td("start")
    cmd = ["sh", "-c", "echo up; sleep 300"]

    # spawn -> running (first output line in the log)
    ours, theirs = [], []
    for _ in range(ROUNDS):
        t0 = time.monotonic()
        tid = td("spawn", "--image", IMAGE, "--", *cmd).stdout.strip().splitlines()[-1]
        log = os.path.join(ws, ".taskdaemon/procs", tid, "stdout.log")
        wait_until(lambda: os.path.exists(log) and b"up" in open(log, "rb").read(), "spawn output")
        ours.append(time.monotonic() - t0)
        td("kill", tid, "--grace", "0s")

        t0 = time.monotonic()
        p = subprocess.Popen(["podman", "--url", host, "run", "--rm", "--label", "td-bench=" + tmp,
                              IMAGE, *cmd],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        p.stdout.readline()
        theirs.append(time.monotonic() - t0)
        p.kill()
        p.wait()
    remove_ours()

    def ms(xs):
        return f"p50 {statistics.median(xs) * 1000:7.1f} ms  min {min(xs) * 1000:7.1f} ms"
    print(f"spawn->running ({ROUNDS} rounds, to the first output line)")
    print(f"  taskdaemon spawn --image : {ms(ours)}")
    print(f"  podman run               : {ms(theirs)}")
    print(f"  ratio (p50)              : {statistics.median(ours) / statistics.median(theirs):.2f}x")

    # overhead per supervised container
    import json
    daemon = int(json.loads(td("status", "--json").stdout)["pid"])
    before = rss_kb(daemon)
    ids = [td("spawn", "--image", IMAGE, "--", "sleep", "300").stdout.strip().splitlines()[-1]
           for _ in range(COUNT)]
    def container_ids():
        import json
        rows = json.loads(subprocess.run([TD, "--workspace", ws, "ps", "--json"], env=env,
                                         capture_output=True).stdout)
        return [r["container_id"] for r in rows if r.get("container_id")]
    wait_until(lambda: len(container_ids()) == COUNT, "container ids")
    time.sleep(1)  # let RSS settle after start-up; a figure, not an assertion
    def per(pids, field):
        return sum(rss_kb(p, field) for p in pids) / max(len(pids), 1)
    shims = pids_with(ws, " __shim ")
    runners = pids_with(ws, " __container ")
    conmon = [p for cid in container_ids() for p in pids_with("conmon", cid)]
    grown = rss_kb(daemon) - before
    print(f"overhead per supervised container ({COUNT} running; RSS, and its private part RssAnon)")
    print(f"  shim                     : {per(shims, 'VmRSS:'):8.0f} KiB  ({per(shims, 'RssAnon:'):.0f} KiB anon)")
    print(f"  container runner         : {per(runners, 'VmRSS:'):8.0f} KiB  ({per(runners, 'RssAnon:'):.0f} KiB anon)")
    print(f"  daemon growth            : {grown / COUNT:8.0f} KiB")
    print(f"  podman's conmon (beside) : {per(conmon, 'VmRSS:'):8.0f} KiB  ({per(conmon, 'RssAnon:'):.0f} KiB anon)")
    for tid in ids:
        td("kill", tid, "--grace", "0s")
finally:
    subprocess.run([TD, "--workspace", ws, "stop"], env=env, capture_output=True)
    remove_ours()
    service.terminate()
    service.wait()
    shutil.rmtree(tmp, ignore_errors=True)
