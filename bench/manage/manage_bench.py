#!/usr/bin/env python3
"""bench/manage/run's measurements (see that script for what and why).

Talks to veneerd with Python's http.client over its UNIX socket, so the numbers are veneerd's and
the worker's, not a CLI process's start-up.
"""
import argparse
import http.client
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=300):
        super().__init__("veneerd", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def call(conn, method, path, body=None, expect=(200,)):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status not in expect:
        sys.exit(f"bench/manage: {method} {path}: HTTP {response.status}: {data[:300]!r}")
    return json.loads(data) if data else None


def wait_for_byte(fd, timeout=60.0):
    """Blocks until the marker arrives on the FIFO; the time it did (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            sys.exit("bench/manage: the guest's marker byte never arrived")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            now = time.perf_counter()
            if os.read(fd, 64):
                return now


def drain(fd):
    while select.select([fd], [], [], 0)[0]:
        if not os.read(fd, 4096):
            break


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--veneer", required=True)
    parser.add_argument("--veneerd", required=True)
    parser.add_argument("--work", required=True, help="scratch directory (state dir, FIFO, config)")
    parser.add_argument("--image", required=True, help="the start-marker guest image")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--info-requests", type=int, default=1000)
    args = parser.parse_args()

    state = os.path.join(args.work, "state")
    sock = os.path.join(state, "veneerd.sock")
    fifo = os.path.join(args.work, "marker.fifo")
    config = os.path.join(args.work, "marker.toml")
    os.mkfifo(fifo)
    # Read-write: the FIFO never reports end-of-file between runs, only the marker's arrival.
    fifo_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    with open(config, "w") as f:
        f.write(f"""name = "marker"
memory = "16M"
vcpus = 1
[boot]
format = "flat"
image = "{args.image}"
mode = "real"
load_address = 0x7c00
[[device]]
id = "com1"
plugin = "serial16550"
output = "{fifo}"
""")

    log = open(os.path.join(args.work, "veneerd.log"), "w")
    veneerd = subprocess.Popen([args.veneerd, "--state-dir", state, "--worker", args.veneer, "--log-level", "warning"],
                               stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                call(UnixConnection(sock), "GET", "/v1")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.time() > deadline or veneerd.poll() is not None:
                    sys.exit("bench/manage: veneerd did not come up; see " + log.name)
                time.sleep(0.05)

        conn = UnixConnection(sock)
        call(conn, "POST", "/v1/vms", {"config": open(config).read(), "directory": args.work}, expect=(201,))

        def api_start():
            drain(fifo_fd)
            c = UnixConnection(sock)
            c.connect()
            t0 = time.perf_counter()
            c.request("POST", "/v1/vms/marker/start")
            t1 = wait_for_byte(fifo_fd)
            response = c.getresponse()
            body = response.read()
            if response.status != 200:
                sys.exit(f"bench/manage: start: HTTP {response.status}: {body[:300]!r}")
            c.close()
            call(conn, "POST", "/v1/vms/marker/stop")
            return (t1 - t0) * 1000

        def bare_start():
            drain(fifo_fd)
            t0 = time.perf_counter()
            # In a session of its own, as veneerd starts workers: with autogroup scheduling a new
            # session is also a new CPU share, which on a busy host alone changes start times.
            process = subprocess.Popen([args.veneer, "run", config], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            t1 = wait_for_byte(fifo_fd)
            process.terminate()
            process.wait()
            return (t1 - t0) * 1000

        api_start(), bare_start()  # warm-up: page cache, plugin loading
        api, bare = [], []
        for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both alike
            api.append(api_start())
            bare.append(bare_start())

        # A running worker for the latency and memory figures.
        call(conn, "POST", "/v1/vms/marker/start")
        wait_for_byte(fifo_fd)
        latencies = []
        for _ in range(args.info_requests):
            t0 = time.perf_counter()
            info = call(conn, "GET", "/v1/vms/marker")
            latencies.append((time.perf_counter() - t0) * 1000)
        worker = info.get("worker") or {}
        overhead = worker.get("overheadBytes", 0)
        rss_kib = 0
        with open(f"/proc/{worker.get('pid', 0)}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss_kib = int(line.split()[1])
        call(conn, "POST", "/v1/vms/marker/stop")
        call(conn, "DELETE", "/v1/vms/marker", expect=(204,))

        print(f"info-latency-ms p50 {percentile(latencies, 50):.3f} p99 {percentile(latencies, 99):.3f} "
              f"({args.info_requests} requests, one keep-alive connection)")
        print(f"start-api-ms median {statistics.median(api):.1f} min {min(api):.1f} max {max(api):.1f} ({args.runs} runs)")
        print(f"start-bare-ms median {statistics.median(bare):.1f} min {min(bare):.1f} max {max(bare):.1f} ({args.runs} runs)")
        print(f"worker-rss-mib {rss_kib / 1024:.1f} (guest RAM 16 MiB, of which the guest touched one page)")
        print(f"start-ratio {statistics.median(api) / statistics.median(bare):.2f}")
        print(f"worker-overhead-mib {overhead / (1 << 20):.1f}")
    finally:
        veneerd.terminate()
        veneerd.wait()
        os.close(fifo_fd)


if __name__ == "__main__":
    main()
