"""The native OTLP decoder (``collectors/_otlp_native.c``) against the pure-Python reference
decoder: the same span items, rejections and messages on many random requests, including
unusual but valid protobuf encodings; no crash on thousands of bad inputs; and the
pure-Python fallback when the extension is not there."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import PYTHON
from vlmscope.collectors import otlp

native = pytest.mark.skipif(
    otlp._native is None,
    reason="the native OTLP decoder is not built (no C compiler at install, or "
    "VLMSCOPE_PURE_PYTHON is set); the pure-Python decoder is in use")


# -- a raw protobuf encoder: any field, any wire type, in any order --------------------------

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _tag(number, 2) + _varint(len(payload)) + payload


def vi(number: int, value: int) -> bytes:
    """A varint field."""
    return _tag(number, 0) + _varint(value)


def f64(number: int, value: int) -> bytes:
    return _tag(number, 1) + struct.pack("<Q", value & (1 << 64) - 1)


def f32(number: int, value: int) -> bytes:
    return _tag(number, 5) + struct.pack("<I", value & (1 << 32) - 1)


def text(number: int, value: str) -> bytes:
    return ld(number, value.encode())


# -- strategies --------------------------------------------------------------------------------

KEYS = st.sampled_from(["k", "a", "service.name", "vlmscope.span.role", "vlmscope.row.id",
                        "openinference.span.kind", "embedding.embeddings.0.embedding.vector",
                        "vision.encoder.top_k.labels", "é", ""])
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["row", "encoder", "llm", "EMBEDDING",
                                                        "evaluation", "x" * 40]))
INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, -1, 2**62]))
UINT64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**63 - 1, 2**63]))
UINT32 = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 2**31 - 1, 2**31]))


def _noise(number_range: tuple[int, int] = (20, 40)) -> st.SearchStrategy[bytes]:
    """Fields a decoder must skip: unknown numbers of every wire type, and groups."""
    low, high = number_range
    number = st.integers(low, high)
    return st.one_of(
        st.builds(vi, number, UINT64),
        st.builds(f64, number, UINT64),
        st.builds(f32, number, UINT32),
        st.builds(ld, number, st.binary(max_size=6)),
        st.builds(lambda n, inner: _tag(n, 3) + vi(n + 1, inner) + _tag(n, 4), number,
                  UINT32),
    )


def _scalar_value() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(text, st.just(1), TEXT),
        st.builds(vi, st.just(2), st.sampled_from([0, 1, 2, 2**40])),  # bool: any varint
        st.builds(vi, st.just(3), INT64),
        st.builds(lambda d: _tag(4, 1) + struct.pack("<d", d), st.floats()),
        st.builds(ld, st.just(7), st.binary(max_size=7)),
        st.just(b""),  # an AnyValue with nothing set
    )


def _key_value(value: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(lambda k, v: text(1, k) + ld(2, v), KEYS, value),
        st.builds(lambda v, k: ld(2, v) + text(1, k), value, KEYS),  # value first
        st.builds(lambda k: text(1, k), KEYS),  # no value at all
    )


ANY_VALUE = st.recursive(
    _scalar_value(),
    lambda inner: st.one_of(
        st.builds(lambda items: ld(5, b"".join(ld(1, i) for i in items)),
                  st.lists(inner, max_size=4)),
        st.builds(lambda kvs: ld(6, b"".join(ld(1, kv) for kv in kvs)),
                  st.lists(_key_value(inner), max_size=3)),
        # a known AnyValue field number with the wrong wire type is an unknown field
        st.builds(lambda v: vi(1, 5) + v, inner),
        st.builds(lambda v, n: v + n, inner, _noise()),
    ),
    max_leaves=12,
)

KEY_VALUE = _key_value(ANY_VALUE)


def _attributes(number: int) -> st.SearchStrategy[bytes]:
    return st.builds(lambda kvs: b"".join(ld(number, kv) for kv in kvs),
                     st.lists(KEY_VALUE, max_size=5))


ID = st.one_of(st.binary(min_size=8, max_size=8), st.binary(min_size=16, max_size=16),
               st.binary(max_size=20))


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """``good`` about nine times in ten, else ``bad``: most spans are accepted, so that the
    values they carry are compared, and some are rejected."""
    return st.integers(0, 9).flatmap(lambda i: bad if i == 0 else good)


def _id(size: int) -> st.SearchStrategy[bytes]:
    return mostly(st.binary(min_size=size, max_size=size), ID)


EVENT = st.builds(lambda t, n, a, noise: f64(1, t) + text(2, n) + a + noise,
                  UINT64, TEXT, _attributes(3), st.one_of(st.just(b""), _noise()))
LINK = st.builds(lambda t, s, ts, a, fl: ld(1, t) + ld(2, s) + text(3, ts) + a + f32(6, fl),
                 _id(16), _id(8), st.sampled_from(["", "k=v"]), _attributes(4), UINT32)

STATUS = st.builds(lambda m, c: text(2, m) + vi(3, c), st.sampled_from(["", "boom"]),
                   st.sampled_from([0, 1, 2, 3, -1, -4, 2**31, 7]))


@st.composite
def span(draw: st.DrawFn, ids: list[tuple[bytes, bytes]]) -> bytes:
    """A Span with every field drawn, in a random order, some fields repeated."""
    if ids and draw(st.booleans()):  # a span repeated within the request
        trace, span_id = draw(st.sampled_from(ids))
    else:
        trace, span_id = draw(_id(16)), draw(_id(8))
        ids.append((trace, span_id))
    start = draw(mostly(st.integers(0, 2**62), UINT64))
    fields = [
        ld(1, trace), ld(2, span_id),
        text(3, draw(st.sampled_from(["", "a=b"]))),
        ld(4, draw(st.one_of(st.just(b""), _id(8)))),  # no parent, or one
        text(5, draw(st.one_of(TEXT, st.just("it's \"quoted\"")))),
        vi(6, draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, -1, -7, 2**32 + 2]))),
        f64(7, start),
        f64(8, draw(mostly(st.one_of(st.just(0), st.integers(start, start + 10**9)),
                           UINT64))),
        draw(_attributes(9)),
        vi(10, draw(mostly(st.integers(0, 9), UINT32))),
        b"".join(ld(11, e) for e in draw(st.lists(EVENT, max_size=2))),
        vi(12, draw(mostly(st.integers(0, 9), UINT32))),
        b"".join(ld(13, link) for link in draw(st.lists(LINK, max_size=2))),
        vi(14, draw(mostly(st.integers(0, 9), UINT32))),
        draw(st.one_of(st.just(b""), st.builds(lambda s: ld(15, s), STATUS))),
        f32(16, draw(mostly(st.integers(0, 2**31 - 1), UINT32))),
    ]
    # Role attributes so that records, evaluations and embeddings are derived too.
    role = draw(st.sampled_from(["", "row", "encoder", "llm", "evaluation"]))
    if role:
        fields.append(ld(9, text(1, "vlmscope.span.role") + ld(2, text(1, role))))
    if draw(st.booleans()):
        fields.append(draw(_noise()))
    if draw(st.integers(0, 9)) == 0:  # a scalar sent twice: the last one counts
        fields.append(text(5, "renamed"))
    if draw(st.integers(0, 19)) == 0:  # a known number with the wrong wire type
        fields.append(vi(1, 3))
    order = draw(st.permutations(range(len(fields))))
    return b"".join(fields[i] for i in order)


@st.composite
def request_body(draw: st.DrawFn) -> bytes:
    ids: list[tuple[bytes, bytes]] = []
    resources = []
    for _ in range(draw(st.integers(0, 2))):
        scopes = []
        for _ in range(draw(st.integers(0, 2))):
            scope = ld(1, text(1, draw(st.sampled_from(["", "lib"])))
                       + text(2, draw(st.sampled_from(["", "1.0"]))))
            spans = b"".join(ld(2, s) for s in draw(st.lists(span(ids), max_size=4)))
            scopes.append(draw(st.sampled_from([scope + spans, spans + scope, spans])))
        resource = ld(1, draw(_attributes(1)) + vi(2, draw(UINT32)))
        body = b"".join(ld(2, s) for s in scopes)
        body = draw(st.sampled_from([resource + body, body + resource, body]))
        body += text(3, draw(st.sampled_from(["", "https://schema"])))
        resources.append(body)
    return b"".join(ld(1, r) for r in resources)


LIMITS = st.one_of(
    st.builds(otlp.OtlpLimits, st.integers(1, 6), st.integers(1, 20), st.integers(1, 5),
              st.integers(1, 4)),
    st.builds(otlp.OtlpLimits, st.integers(1, 6), st.integers(1, 20), st.integers(1, 5),
              st.integers(1, 4)),
    st.just(otlp.DEFAULT_LIMITS), st.just(otlp.OtlpLimits(2**80, 2**80, 2**80, 2**80)))


def assert_same(body: bytes, limits: otlp.OtlpLimits) -> bool:
    """Both decoders agree on ``body``; returns whether the native one decoded it itself."""
    try:
        request = otlp.parse_protobuf(body)
    except otlp.OtlpDecodeError:
        # Not a request: the receiver answers 400 before any decoder runs. The native
        # decoder must still fail cleanly on it.
        with contextlib.suppress(ValueError):
            otlp._native_items(body, limits)
        return False
    expected = otlp.span_items(request, limits)
    try:
        items = otlp._native_items(body, limits)
    except otlp._native.Unsupported:
        items = None
    if items is not None:
        # repr tells 1 from 1.0 and True, NaN from None: stricter than ==.
        assert repr(items) == repr(expected)
    got = otlp.decode_body(body, False, limits)
    want = otlp.decode_request_python(request, limits)
    assert got.batch.spans.equals(want.batch.spans)
    assert got.batch.derived.keys() == want.batch.derived.keys()
    for name, table in got.batch.derived.items():
        assert table.equals(want.batch.derived[name]), name
    assert (got.keys, got.rejected, got.message, got.evaluations) == (
        want.keys, want.rejected, want.message, want.evaluations)
    return items is not None


@native
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(request_body(), LIMITS)
def test_the_native_decoder_agrees_with_the_python_one(body, limits):
    assert assert_same(body, limits), "a request without merged fields fell back to Python"


@native
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_body(), LIMITS, st.data())
def test_fields_that_protobuf_merges_fall_back_to_python_with_the_same_result(body, limits,
                                                                               data):
    # Append a second copy of a singular message field somewhere: protobuf merges the two.
    extra = data.draw(st.sampled_from([
        ld(1, ld(1, ld(1, text(1, "service.name") + ld(2, text(1, "a"))))
           + ld(1, ld(1, text(1, "host") + ld(2, text(1, "b"))))),  # resource twice
        ld(1, ld(2, ld(1, text(1, "lib2")) + ld(2, ld(1, b"\x01" * 16) + ld(2, b"\x05" * 8))
                 + ld(1, text(2, "2.0")))),  # scope twice
        ld(1, ld(2, ld(2, ld(1, b"\x01" * 16) + ld(2, b"\x02" * 8) + ld(15, text(2, "a"))
                      + ld(15, vi(3, 2))))),  # status twice
        ld(1, ld(2, ld(2, ld(1, b"\x01" * 16) + ld(2, b"\x03" * 8) + ld(9, text(1, "k")
                      + ld(2, text(1, "v")) + ld(2, vi(3, 4)))))),  # KeyValue.value twice
        ld(1, ld(2, ld(2, ld(1, b"\x01" * 16) + ld(2, b"\x04" * 8) + ld(9, text(1, "k")
                      + ld(2, ld(5, ld(1, vi(3, 1))) + ld(5, ld(1, vi(3, 2))))))))]))
    assert not assert_same(body + extra, limits)


@native
def test_a_realistic_request_is_decoded_natively_and_identically():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    try:
        from bench_collector import encoded_requests
    finally:
        sys.path.pop(0)
    (body,) = encoded_requests(1, seed=3)
    assert assert_same(body, otlp.DEFAULT_LIMITS)
    assert otlp.decode_body(body, False).batch.num_spans == 512


@native
def test_the_native_decoder_survives_random_and_truncated_bytes():
    rng = random.Random(6)
    valid = [ld(1, ld(2, ld(2, ld(1, rng.randbytes(16)) + ld(2, rng.randbytes(8))
                            + text(5, "s") + ld(9, text(1, "k") + ld(2, ld(5, ld(1, vi(3, 1))
                                                                      + ld(1, text(1, "x")))))
                            + ld(11, f64(1, 5) + ld(3, text(1, "e")))
                            + ld(13, ld(1, rng.randbytes(16)) + ld(2, rng.randbytes(8))))))
             for _ in range(4)]
    deep = b"".join([ld(1, b"")])
    for _ in range(300):  # AnyValue nesting far beyond any limit
        deep = ld(5, ld(1, deep))
    valid.append(ld(1, ld(2, ld(2, ld(9, text(1, "deep") + ld(2, deep))))))
    limits = otlp.OtlpLimits(10**6, 10**6, 10**6, 10**6)
    outcomes = {"decoded": 0, "refused": 0}
    for i in range(6000):
        base = rng.choice(valid)
        kind = i % 4
        if kind == 0:
            body = rng.randbytes(rng.randint(0, 300))
        elif kind == 1:
            body = base[:rng.randint(0, len(base))]
        elif kind == 2:
            body = bytearray(base)
            for _ in range(rng.randint(1, 6)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            body = bytes(body)
        else:
            cut = rng.randrange(len(base))
            body = base[:cut] + rng.randbytes(rng.randint(1, 12)) + base[cut:]
        try:
            items = otlp._native_items(body, limits)
        except ValueError:
            outcomes["refused"] += 1
            continue
        assert isinstance(items, list)
        outcomes["decoded"] += 1
    assert outcomes["decoded"] > 100 and outcomes["refused"] > 100, outcomes


@native
def test_nesting_deeper_than_protobuf_allows_is_refused_not_a_crash():
    deep = ld(1, b"x")
    for _ in range(5000):
        deep = ld(5, ld(1, deep))
    body = ld(1, ld(2, ld(2, ld(1, b"\x01" * 16) + ld(2, b"\x02" * 8)
                          + ld(9, text(1, "deep") + ld(2, deep)))))
    with pytest.raises(ValueError):
        otlp._native_items(body, otlp.OtlpLimits(max_depth=10**9))
    # protobuf refuses the body too: the receiver answers 400.
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.decode_body(body, False)


def _realistic_body() -> bytes:
    return ld(1, ld(1, ld(1, text(1, "service.name") + ld(2, text(1, "svc"))))
              + ld(2, ld(2, ld(1, b"\x01" * 16) + ld(2, b"\x02" * 8) + text(5, "s")
                         + ld(9, text(1, "vlmscope.row.id") + ld(2, text(1, "r1")))
                         + ld(9, text(1, "vlmscope.span.role") + ld(2, text(1, "row"))))))


def test_the_python_decoder_takes_over_when_the_extension_is_missing(monkeypatch):
    body = _realistic_body()
    monkeypatch.setattr(otlp, "_native", None)
    assert not otlp.native_decoder()
    decoded = otlp.decode_body(body, False)
    assert decoded.batch.num_spans == 1
    assert decoded.batch.spans.column("service_name").to_pylist() == ["svc"]
    assert decoded.batch.derived["row_records"].column("row_id").to_pylist() == ["r1"]


def test_vlmscope_pure_python_switches_the_native_decoder_off():
    code = ("from vlmscope.collectors import otlp; import sys; "
            "d = otlp.decode_body(sys.stdin.buffer.read(), False); "
            "print(otlp.native_decoder(), d.batch.num_spans)")
    env = {**os.environ, otlp.PURE_PYTHON_ENV: "1"}
    result = subprocess.run([PYTHON, "-c", code], input=_realistic_body(), env=env,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["False", "1"]
    env[otlp.PURE_PYTHON_ENV] = "0"
    result = subprocess.run([PYTHON, "-c", code], input=_realistic_body(), env=env,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    # Switched back on, the decoder is used wherever it is built (this process may itself
    # run with the switch on, as CI's pure-Python part does).
    built = importlib.util.find_spec("vlmscope.collectors._otlp_native") is not None
    assert result.stdout.decode().split() == [str(built), "1"]


@native
def test_texts_the_decoder_keeps_for_reuse_are_never_mixed_up():
    """The native decoder hands out the str it made last of each short text again: with
    thousands of distinct keys and values, of every length up to past the kept ones and
    differing in a byte (so that they share cache slots, and one replaces another), every
    span still decodes to exactly its own texts, request after request."""
    rng = random.Random(9)
    alphabet = "ab\u00e9\u4e2d"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70)))
             for _ in range(3000)]
    texts += [t[:-1] + "z" for t in texts if t]  # same length and slot as often as not
    for round_ in range(3):
        spans = b""
        for i in range(200):
            key, value = rng.choice(texts), rng.choice(texts)
            spans += ld(2, ld(1, bytes([i % 256]) * 16) + ld(2, bytes([round_, i % 256]) * 4)
                        + text(5, rng.choice(texts))
                        + ld(9, text(1, key) + ld(2, text(1, value)))
                        + ld(9, text(1, key + "x") + ld(2, text(1, value))))
        body = ld(1, ld(2, spans))
        assert assert_same(body, otlp.DEFAULT_LIMITS)
