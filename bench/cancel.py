"""What a cancel costs the next client, through the real Cog server (coglet) with tiny weights.

Per cycle: a 1 s generation alone (the baseline), then a 120 s generation started asynchronously
and cancelled once its generation stage has begun, then the same 1 s generation again, timed from
the cancel. A cancel that does not stop the work leaves the lock to the cancelled generation and
the second 1 s generation waits for it (tens of seconds); a working one costs a decoding step.
Then a burst: ``--burst`` long generations started and cancelled at once (more than
``COG_MAX_CONCURRENCY=2``), followed by one 1 s generation, timed. Prints medians over
``--cycles``, and how many request directories are left ``REMIXER_KEEP_OUTPUTS_S`` after the end.

coglet 0.23.1 delivers a cancel that arrives while it is still submitting an async prediction
(its first milliseconds) as an exception in its own submitting thread: it reports the
prediction failed ("Failed to submit coroutine: CancelationException") while the coroutine,
never cancelled, runs to its end. The burst counts those; each such orphan holds the generation
lock for its whole length, which the 1 s generation after the burst then waits for.

The models are TINY and RANDOM (``devtools/tiny/cache.py``): the figures show whether
cancelled work stops, not production speed.

Usage::

    python bench/cancel.py [--cycles 5] [--burst 6]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.cog_server import CogServer, tiny_server  # noqa: E402

QUICK = {"prompt": "calm", "duration": 1.0, "model_version": "chord", "seed": 1}
LONG = {**QUICK, "duration": 120.0}
KEEP_S = 1.0


def _timed(server: CogServer, payload: dict) -> float:
    start = time.perf_counter()
    reply = server.predict(payload, timeout=600)
    assert reply["status"] == "succeeded", reply.get("error")
    return time.perf_counter() - start


def _generation_started(server: CogServer, prediction_id: str) -> None:
    deadline = time.time() + 60
    tag = f'"prediction_id":"{prediction_id}"'
    while not any(tag in line and "generation ..." in line for line in server.log_path.read_text().splitlines()):
        if time.time() > deadline:
            raise TimeoutError(f"{prediction_id} never reached generation")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--burst", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cancel-") as root:
        print("TINY RANDOM models: whether cancelled work stops, not production speed")
        with tiny_server(Path(root), REMIXER_KEEP_OUTPUTS_S=str(KEEP_S)) as server:
            before, after = [], []
            for cycle in range(args.cycles):
                before.append(_timed(server, QUICK))
                server.start(f"long-{cycle}", LONG)
                _generation_started(server, f"long-{cycle}")
                server.cancel(f"long-{cycle}")
                after.append(_timed(server, QUICK))
            for index in range(args.burst):
                server.start(f"burst-{index}", LONG)
                server.cancel(f"burst-{index}")
            burst = _timed(server, QUICK)
            time.sleep(KEEP_S + 1.5)
            left = len(list(server.tmp.glob("remixer-*")))
            orphans = server.log_path.read_text().count("Failed to submit coroutine: CancelationException")
        print(f"1 s generation alone:           median {statistics.median(before):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in before)})")
        print(f"1 s generation after a cancel:  median {statistics.median(after):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in after)})")
        print(f"1 s generation after {args.burst} start+cancel: {burst:.2f} s "
              f"({orphans} cancel(s) lost inside coglet's submission)")
        print(f"request directories left {KEEP_S + 1.5:g} s after the last request: {left}")


if __name__ == "__main__":
    main()
