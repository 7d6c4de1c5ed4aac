"""Embedding vectors set on encoder spans: the same attributes the SDK's own setter stores."""

from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from vlmscope.encoder import set_vectors


def _tracer(limits: SpanLimits | None = None):
    memory = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits or SpanLimits())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider.get_tracer("t"), memory


VECTORS = {
    "embedding.embeddings.0.embedding.vector": [0.5, -1.25, 3.0],
    "embedding.embeddings.1.embedding.vector": np.array([1, 2, 3], dtype=np.float32),
    "embedding.embeddings.2.embedding.vector": (1, 2.5, np.float64(7.0)),
}


def test_vectors_equal_what_the_sdk_setter_stores() -> None:
    tracer, memory = _tracer()
    with tracer.start_as_current_span("fast", attributes={"a": 1}) as span:
        set_vectors(span, VECTORS)
    with tracer.start_as_current_span("sdk", attributes={"a": 1}) as span:
        span.set_attributes({k: [float(x) for x in v] for k, v in VECTORS.items()})
    fast, sdk = memory.get_finished_spans()
    assert dict(fast.attributes) == dict(sdk.attributes)
    assert list(fast.attributes) == list(sdk.attributes)
    for value in fast.attributes.values():
        assert type(value) in (int, tuple)
        assert type(value) is int or all(type(x) is float for x in value)


def test_the_attribute_count_limit_drops_the_oldest_as_the_sdk_does() -> None:
    tracer, memory = _tracer(SpanLimits(max_span_attributes=2))
    with tracer.start_as_current_span("fast", attributes={"a": 1}) as span:
        set_vectors(span, VECTORS)
    with tracer.start_as_current_span("sdk", attributes={"a": 1}) as span:
        span.set_attributes({k: [float(x) for x in v] for k, v in VECTORS.items()})
    fast, sdk = memory.get_finished_spans()
    assert dict(fast.attributes) == dict(sdk.attributes) and len(fast.attributes) == 2
    assert fast.dropped_attributes == sdk.dropped_attributes == 2


def test_an_ended_span_is_left_alone() -> None:
    tracer, memory = _tracer()
    span = tracer.start_span("done")
    span.end()
    set_vectors(span, VECTORS)
    assert dict(memory.get_finished_spans()[0].attributes) == {}


@pytest.mark.parametrize("bad", [["a", "b"], [1.0, None]])
def test_a_vector_that_is_not_numbers_goes_through_the_sdk(bad: list) -> None:
    tracer, memory = _tracer()
    with tracer.start_as_current_span("odd") as span:
        set_vectors(span, {"embedding.embeddings.0.embedding.vector": bad})
    stored = memory.get_finished_spans()[0].attributes
    assert stored["embedding.embeddings.0.embedding.vector"] == tuple(bad)
