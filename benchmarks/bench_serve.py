"""Latency and throughput of ``lightning-gans serve`` under concurrent clients, with batching on and off.

The same model is served twice, one server after the other on free localhost ports: ``--max_batch_size 16`` (with
``--batch_timeout``) and ``--max_batch_size 1`` (each request its own forward pass). Against each, ``--clients``
threads send ``--requests`` sample requests each (``{"n": 1, "seed": k}``) over keep-alive connections, all at once,
after a warm-up; the load stops by itself when every client has sent its requests. The table gives requests/s over
the whole load, the p50 and p99 latency, the mean number of requests per forward pass (the answers'
``X-Batch-Size``) and the failed requests, and the ratio of the two servers' requests/s.

    python benchmarks/bench_serve.py --pretrained pretrained/fast_mnist      # the README figures
    python benchmarks/bench_serve.py                                          # a tiny CGAN, anywhere
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load(url: str, clients: int, requests_each: int, n: int) -> dict:
    """``clients`` threads x ``requests_each`` POSTs to ``url``/sample; their latencies, statuses and batch sizes."""
    import requests

    latencies: list[float] = []
    batches: list[int] = []
    failed = 0
    lock = threading.Lock()
    start_line = threading.Barrier(clients)

    def client(k: int) -> None:
        nonlocal failed
        with requests.Session() as session:
            start_line.wait()
            for i in range(requests_each):
                t0 = time.perf_counter()
                try:
                    answer = session.post(f"{url}/sample", json={"n": n, "seed": k * 1000 + i}, timeout=120)
                    ok = answer.status_code == 200
                except requests.RequestException:
                    ok, answer = False, None
                took = time.perf_counter() - t0
                with lock:
                    if ok:
                        latencies.append(took)
                        batches.append(int(answer.headers.get("x-batch-size", 1)))
                    else:
                        failed += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "requests/s": len(latencies) / wall,
        "p50 ms": 1000 * statistics.median(latencies),
        "p99 ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "requests per batch": statistics.mean(batches),
        "failed": failed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained", help="a pretrained folder (default: a tiny CGAN written to a temporary folder)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--n", type=int, default=1, help="images per request")
    parser.add_argument("--batch_timeout", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server's worker (OMP_NUM_THREADS)")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args(argv)

    import os

    from tests.servers import start, tiny_folder, wait_until_up

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.pretrained or str(tiny_folder("CGAN", Path(tmp)))
        rows = {}
        for label, batch in (("batching on (16)", 16), ("batching off (1)", 1)):
            flags = ["--pretrained", folder, "--max_batch_size", str(batch), "--batch_timeout", str(args.batch_timeout)]
            proc = start("serve", flags, Path(tmp) / f"serve_{batch}.log")
            try:
                wait_until_up([proc], "/health")
                load(proc.url, args.clients, 5, args.n)  # warm-up
                rows[label] = load(proc.url, args.clients, args.requests, args.n)
            finally:
                proc.stop()
    on, off = rows["batching on (16)"], rows["batching off (1)"]
    lines = [
        f"`{args.pretrained or 'tiny CGAN'}`, {args.clients} clients x {args.requests} requests of n = {args.n}, "
        f"{args.threads} torch thread(s) in the worker, batch_timeout {args.batch_timeout} s",
        "",
        "| server | requests/s | p50 ms | p99 ms | requests per batch | failed |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        lines.append(
            f"| {label} | {r['requests/s']:.1f} | {r['p50 ms']:.1f} | {r['p99 ms']:.1f} | "
            f"{r['requests per batch']:.2f} | {r['failed']} |"
        )
    lines += ["", f"requests/s, batching on / off: {on['requests/s'] / off['requests/s']:.2f}x"]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
