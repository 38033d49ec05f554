"""What Kytos' thread-per-event delivery costs, versus handling on the event loop.

Kytos 2021.1 wraps every ``@listen_to`` handler in ``run_on_thread``: each event
delivery starts a new thread.  This benchmark pushes N events through a real
Kytos app buffer and the controller's own ``notify_listeners`` dispatch, with
(a) a threaded handler (``@listen_to``) and (b) an inline handler
(``xmpp_ofc.kytos_events.listen_on_loop`` style: ``.events`` set, no thread),
and reports events/s and the delivery latency (put -> handler start).

    .venv/bin/python benchmarks/event_dispatch.py [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time

os.environ.setdefault("VIRTUAL_ENV", tempfile.mkdtemp(prefix="xmpp_ofc-bench-"))

from xmpp_ofc import kytos_py311

kytos_py311.apply()


def run(mode: str, events: int, one_at_a_time: bool) -> tuple[float, list[float]]:
    from kytos.core.buffers import KytosBuffers
    from kytos.core.events import KytosEvent
    from kytos.core.helpers import run_on_thread

    latencies: list[float] = []
    done = threading.Event()
    lock = threading.Lock()

    handled = threading.Semaphore(0)

    def handler(event: KytosEvent) -> None:
        with lock:
            latencies.append(time.perf_counter() - event.content["sent"])
            if len(latencies) == events:
                done.set()
        handled.release()

    deliver = run_on_thread(handler) if mode == "threaded" else handler

    async def main() -> float:
        buffers = KytosBuffers(loop=asyncio.get_running_loop())

        async def consume() -> None:  # Controller.app_event_handler, minus logging
            while not done.is_set():
                event = await buffers.app.aget()
                if event.name == "stop":
                    return
                deliver(event)

        consumer = asyncio.create_task(consume())
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        for index in range(events):
            buffers.app.put(KytosEvent(name="bench", content={"sent": time.perf_counter()}))
            if one_at_a_time:  # latency: wait until the handler ran
                await loop.run_in_executor(None, handled.acquire)
            elif index % 500 == 0:
                await asyncio.sleep(0)  # throughput: let the consumer run now and then
        await asyncio.get_running_loop().run_in_executor(None, done.wait, 60)
        elapsed = time.perf_counter() - start
        buffers.app.put(KytosEvent(name="stop"))
        await consumer
        return elapsed

    elapsed = asyncio.run(main())
    return elapsed, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.events} events")
    print(f"{'mode':10} {'load':14} {'events/s':>10} {'p50 us':>8} {'p99 us':>8}")
    for one_at_a_time in (True, False):
        load = "1 outstanding" if one_at_a_time else "burst"
        count = args.events // 10 if one_at_a_time else args.events
        for mode in ("threaded", "inline"):
            elapsed, latencies = run(mode, count, one_at_a_time)
            quantiles = statistics.quantiles(latencies, n=100)
            print(
                f"{mode:10} {load:14} {count / elapsed:10.0f} "
                f"{quantiles[49] * 1e6:8.0f} {quantiles[98] * 1e6:8.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
