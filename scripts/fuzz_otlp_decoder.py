#!/usr/bin/env python3
"""Fuzz the native OTLP decoder (collectors/_otlp_native.c) built with AddressSanitizer and
UndefinedBehaviorSanitizer, for a bounded time.

    python scripts/fuzz_otlp_decoder.py --seconds 60

Builds the extension with ``-fsanitize=address,undefined`` into a temporary folder, then runs
itself again under the sanitizer runtime (``LD_PRELOAD``) and feeds the decoder random bytes,
truncated and bit-flipped real requests and requests with hostile limits; every body that
protobuf parses must decode to the reference decoder's items (or be declined with
ValueError, as the collector then decodes it in Python). A sanitizer report or a mismatch
exits non-zero. The decoder parses bytes from the network, so this runs in CI
(``.ci/run``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(folder: Path) -> Path:
    """The decoder built with the sanitizers, in ``folder``."""
    out = folder / ("_otlp_native" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                    f"-I{sysconfig.get_paths()['include']}",
                    str(ROOT / "collectors" / "_otlp_native.c"), "-o", str(out)], check=True)
    return out


def mutations(rng: random.Random, valid: bytes) -> bytes:
    """One hostile body derived from a valid request."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 512))
    if kind == 1:
        return valid[:rng.randrange(len(valid) + 1)]
    body = bytearray(valid)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(body))
        if kind == 2:
            body[at] ^= 1 << rng.randrange(8)
        elif kind == 3:
            body[at] = rng.choice([0x00, 0x7F, 0x80, 0xFF])
        else:
            body[at:at] = rng.randbytes(rng.randint(1, 16))
    return bytes(body)


def fuzz(library: Path, seconds: float, seed: int) -> int:
    """Run the decoder in ``library`` on hostile bodies for ``seconds``; 0 when it agreed."""
    spec = importlib.util.spec_from_file_location("vlmscope.collectors._otlp_native", library)
    assert spec is not None and spec.loader is not None
    native = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native)
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from tests.helpers import request
    from vlmscope.collectors import otlp

    rng = random.Random(seed)
    valid = [request(rng.randint(1, 30), service="fuzz")[0].SerializeToString()
             for _ in range(20)]
    deadline = time.monotonic() + seconds
    tried = declined = 0
    while time.monotonic() < deadline:
        body = mutations(rng, rng.choice(valid))
        limits = otlp.OtlpLimits(max_attributes=rng.choice([1, 8, 1024]),
                                 max_value_chars=rng.choice([1, 64, 256 * 1024]),
                                 max_array_items=rng.choice([1, 16, 65_536]),
                                 max_depth=rng.choice([1, 4, 16]))
        tried += 1
        try:
            got = native.decode(body, limits.max_attributes, limits.max_value_chars,
                                limits.max_array_items, limits.max_depth, otlp.resource_info)
        except ValueError:
            declined += 1
            continue
        try:
            parsed = ExportTraceServiceRequest.FromString(body)
        except DecodeError:
            continue  # protobuf refuses what the decoder took: the collector answers 400
        if got != otlp.span_items(parsed, limits):
            print(f"mismatch on body {body.hex()}", file=sys.stderr)
            return 1
    print(f"fuzzed the native OTLP decoder under ASan/UBSan: {tried} bodies in {seconds:.0f} "
          f"s, {declined} declined, no fault, no mismatch")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--library", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.library is not None:
        return fuzz(args.library, args.seconds, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        library = build(Path(folder))
        runtime = subprocess.run(["gcc", "-print-file-name=libasan.so"], check=True,
                                 capture_output=True, text=True).stdout.strip()
        env = {**os.environ, "LD_PRELOAD": runtime, "VLMSCOPE_PURE_PYTHON": "1",
               "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
               "PYTHONPATH": str(ROOT)}
        return subprocess.run([sys.executable, __file__, "--seconds", str(args.seconds),
                               "--seed", str(args.seed), "--library", str(library)],
                              env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
