"""What instrument_encoder adds to a real forward: ResNet-50, 32 images at 224x224, on CPU.

Inside ``trace_batch`` of 32 rows, a torchvision ResNet-50 (built from config, random
weights), instrumented with the default options (top-5, pooled-feature statistics, image
content hashes, checkpoint hash computed once), and its uninstrumented twin (a deep copy)
run their forward, alternating, in one process with vlmscope configured onto a DuckDB store
in a temporary folder. Only the forward call is timed, by the wall clock and by the
process's CPU time (all threads; less moved by other processes on a shared machine). The
ratio of the medians is what counts (target: at most 1.02x); each pair runs back to back,
in alternating order.

    .venv/bin/python benchmarks/bench_encoder_overhead.py [--pairs 5] [--batch 32]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import vlmscope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="bare/instrumented pairs timed")
    parser.add_argument("--batch", type=int, default=32, help="images per forward")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    args = parser.parse_args()

    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    images = torch.rand(args.batch, 3, args.size, args.size)
    row_ids = [f"row-{i}" for i in range(args.batch)]

    with tempfile.TemporaryDirectory() as folder:
        vlmscope.configure(db=Path(folder) / "bench.duckdb")

        twin = copy.deepcopy(model)  # the same weights, never instrumented
        handle = vlmscope.instrument_encoder(model)

        def forward(instrumented: bool) -> tuple[float, float]:
            """Wall and CPU seconds of one forward."""
            with vlmscope.trace_batch(row_ids), torch.no_grad():
                wall, cpu = time.perf_counter(), time.process_time()
                (model if instrumented else twin)(images)
                return time.perf_counter() - wall, time.process_time() - cpu

        forward(False)
        forward(True)  # warm-up: allocator, and the checkpoint hash vlmscope computes once
        bare: list[tuple[float, float]] = []
        traced: list[tuple[float, float]] = []
        for pair in range(args.pairs):
            order = (False, True) if pair % 2 == 0 else (True, False)
            for instrumented in order:
                (traced if instrumented else bare).append(forward(instrumented))
        handle.uninstrument()
        vlmscope.shutdown()

    print(f"ResNet-50, {args.batch} images {args.size}x{args.size}, "
          f"{torch.get_num_threads()} threads, {args.pairs} pairs")
    for clock, index in (("wall", 0), ("CPU", 1)):
        plain = [t[index] for t in bare]
        hooked = [t[index] for t in traced]
        print(f"{clock:4}: bare median {statistics.median(plain) * 1e3:9.1f} ms, "
              f"instrumented median {statistics.median(hooked) * 1e3:9.1f} ms; "
              f"ratio of medians {statistics.median(hooked) / statistics.median(plain):.4f}x, "
              f"of minima {min(hooked) / min(plain):.4f}x (target <= 1.02x)")


if __name__ == "__main__":
    main()
