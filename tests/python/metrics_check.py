"""Prometheus metrics of `taustar serve`, read by the Prometheus project's own Python parser.

Starts `taustar serve --metrics-listen` on loopback with a study of 80 cells of ~0.1 s and
one worker thread (then a second after the first is hung with SIGSTOP), scrapes /metrics
every 100 ms while the study runs, and checks every scrape with
`prometheus_client`'s OpenMetrics parser (strict: a malformed line is an exception) and its
classic text parser. At the end the scraped numbers must equal the store's, read with
`taustar status --json`.

Usage (repository root, release binaries built): python3 tests/python/metrics_check.py
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

BIN = "target/release"
# Cells of ~0.1 s (a 4x4 Ising truth, exact fit), so one worker thread takes several seconds
# and many scrapes fall inside the study.
STUDY = """name = "metrics-check"
seed = 7
replicates = 20
[truth]
kind = "ising2d"
lattice = [4, 4]
temperature = [2.0, 3.5]
[data]
samples = [100, 1000]
[fit]
mode = "mle"
l2 = 0.01
"""
CELLS = 20 * 2 * 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        ctype = r.headers.get("Content-Type", "")
        assert ctype.startswith("application/openmetrics-text"), ctype
        return r.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value}, parsed strictly as OpenMetrics; the classic text
    parser (what older Prometheus servers and many tools use) must agree on every sample."""
    om = {}
    for fam in parse_openmetrics(text):
        for s in fam.samples:
            om[(s.name, frozenset(s.labels.items()))] = s.value
    classic = {}
    for fam in parse_text(text.replace("# EOF\n", "")):
        for s in fam.samples:
            classic[(s.name, frozenset(s.labels.items()))] = s.value
    for key, v in om.items():
        if key in classic:
            assert classic[key] == v, (key, v, classic[key])
    assert om, "no samples"
    return om


def value(m, name, **labels):
    return m[(name, frozenset(labels.items()))]


def status(db):
    out = subprocess.run([f"{BIN}/taustar", "status", "--db", db, "--json"], check=True, capture_output=True)
    return json.loads(out.stdout)


def main():
    work = tempfile.mkdtemp()
    study = os.path.join(work, "study.toml")
    with open(study, "w") as f:
        f.write(STUDY)
    db = os.path.join(work, "m.db")
    port, mport = free_port(), free_port()
    url = f"http://127.0.0.1:{mport}/metrics"
    serve_log = open(os.path.join(work, "serve.log"), "w")
    serve = subprocess.Popen(
        [f"{BIN}/taustar", "serve", study, "--db", db, "--listen", f"127.0.0.1:{port}",
         "--metrics-listen", f"127.0.0.1:{mport}", "--lease-secs", "2", "--heartbeat-secs", "0.3"],
        stdout=serve_log, stderr=subprocess.STDOUT)
    worker = None
    try:
        deadline = time.time() + 30
        while True:
            try:
                first = samples(scrape(url))
                break
            except OSError:
                assert serve.poll() is None, open(serve_log.name).read()
                assert time.time() < deadline, "the metrics listener never answered"
                time.sleep(0.05)
        assert value(first, "taustar_results_committed_total") == 0, first

        def start_worker(name):
            return subprocess.Popen(
                [f"{BIN}/taustar-worker", "--coordinator", f"127.0.0.1:{port}", "--threads", "1",
                 "--name", name, "--max-backoff", "1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        # A worker that hangs (SIGSTOP) holding a lease: the lease expires, another worker
        # computes the cell, and the woken worker's late result is a duplicate. So the
        # counters compared with the store at the end are not all zero.
        hung = start_worker("hung-worker")
        scrapes, mid_study, last_committed = 0, 0, 0
        deadline = time.time() + 300
        worker = None
        while True:
            m = samples(scrape(url))
            scrapes += 1
            cells = {st: value(m, "taustar_cells", state=st) for st in ("pending", "leased", "done", "failed")}
            committed = value(m, "taustar_results_committed_total")
            assert committed >= last_committed, "a counter went down"
            last_committed = committed
            total = sum(cells.values())
            assert total in (0, CELLS), cells  # 0 before the first sweep
            if 0 < cells["done"] < CELLS:
                mid_study += 1
            if worker is None and committed >= 3:
                os.kill(hung.pid, signal.SIGSTOP)
                worker = start_worker("metrics-worker")
            if worker is not None and cells["done"] == CELLS and worker.poll() is not None:
                break
            assert time.time() < deadline, f"the study did not finish: {cells}"
            time.sleep(0.1)
        os.kill(hung.pid, signal.SIGCONT)
        assert hung.wait(timeout=60) == 0, "the woken worker exits 0 once it hears the study is done"
        assert worker.returncode == 0, worker.returncode
        assert mid_study >= 3, f"only {mid_study} of {scrapes} scrapes saw the study running"
        st = status(db)
        m = samples(scrape(url))
        checks = [
            ("cells done", value(m, "taustar_cells", state="done"), st["cells_done"]),
            ("cells failed", value(m, "taustar_cells", state="failed"), st["cells_failed"]),
            ("cells pending", value(m, "taustar_cells", state="pending"), st["cells_pending"]),
            ("cells leased", value(m, "taustar_cells", state="leased"), st["cells_leased"]),
            ("results committed (fresh store: every done cell)", value(m, "taustar_results_committed_total"), st["cells_done"]),
            ("duplicates", value(m, "taustar_duplicates_ignored_total"), st["duplicates_ignored"]),
            ("rejected", value(m, "taustar_results_rejected_total"), st["results_rejected"]),
            ("quarantined", value(m, "taustar_results_quarantined_total"), st["results_quarantined"]),
        ]
        for what, got, want in checks:
            assert got == want, f"{what}: metrics say {got}, the store says {want}"
            print(f"ok   - {what}: {got:g} = store {want}")
        n = value(m, "taustar_commit_duration_seconds_count")
        assert n >= 1 and value(m, "taustar_commit_duration_seconds_bucket", le="+Inf") == n, m
        print(f"ok   - commit latency histogram: {n:g} transactions, mean "
              f"{1e3 * value(m, 'taustar_commit_duration_seconds_sum') / n:.2f} ms")
        seen = {dict(k[1])["name"]: v for k, v in m.items() if k[0] == "taustar_worker_last_seen_timestamp_seconds"}
        assert sorted(seen) == ["hung-worker", "metrics-worker"], seen
        assert all(abs(v - time.time()) < 120 for v in seen.values()), seen
        print(f"ok   - workers last seen: { {k: round(time.time() - v, 1) for k, v in seen.items()} } s ago")
        lost, dups = value(m, "taustar_leases_lost_total"), value(m, "taustar_duplicates_ignored_total")
        assert lost >= 1 and dups >= 1, f"the hung worker lost {lost:g} leases and sent {dups:g} late results"
        print(f"ok   - the hung worker: {lost:g} leases lost, {dups:g} late results ignored as duplicates")
        assert value(m, "taustar_store_writable") == 1 and value(m, "taustar_store_write_errors_total") == 0
        print(f"ok   - {scrapes} scrapes parsed by prometheus_client (OpenMetrics and classic), "
              f"{mid_study} during the study")
    finally:
        for p in (worker, serve):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
    assert serve.returncode == 0, open(serve_log.name).read()


if __name__ == "__main__":
    sys.exit(main())
