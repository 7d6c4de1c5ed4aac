"""Language-head spans: the manual API for any LLM (hosted or local).

An LLM span carries the OTel GenAI attributes and the OpenInference ones, and, when it runs
inside ``trace_row``/``trace_batch`` after the encoder, that encoder's reading of the same
rows (checkpoint hash, top-1 and top-k) plus a span link to the encoder span.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import Link

from vlmscope import conventions as cv
from vlmscope.encoder import resolve_row_ids
from vlmscope.rows import batch_attributes, current_rows
from vlmscope.tracing import get_settings, get_tracer


def _encoder_context(row_ids: list[str] | None) -> tuple[dict[str, Any], list[Link]]:
    """Attributes and links that tie an LLM span to the encoder reading of its rows."""
    rows = current_rows()
    if rows is None or row_ids is None:
        return {}, []
    readings = [rows.readings.get(row_id) for row_id in row_ids]
    if not any(readings):
        return {}, []
    attrs: dict[str, Any] = {}
    checkpoints = {r.checkpoint_sha256 for r in readings if r and r.checkpoint_sha256}
    if len(checkpoints) == 1:
        attrs[cv.VISION_ENCODER_CHECKPOINT_SHA256] = checkpoints.pop()
    k = min((len(r.top_k_labels) for r in readings if r), default=0)
    if k and all(readings):
        attrs[cv.VISION_ENCODER_TOP_K] = k
        attrs[cv.VISION_ENCODER_TOP_K_LABELS] = [x for r in readings for x in r.top_k_labels[:k]]
        attrs[cv.VISION_ENCODER_TOP_K_SCORES] = [s for r in readings for s in r.top_k_scores[:k]]
        attrs[cv.VISION_ENCODER_TOP1_LABEL] = [r.top_k_labels[0] for r in readings]
        attrs[cv.VISION_ENCODER_TOP1_SCORE] = [r.top_k_scores[0] for r in readings]
    links: list[Link] = []
    seen: set[int] = set()
    for reading in readings:
        if reading and reading.span_context.span_id not in seen:
            seen.add(reading.span_context.span_id)
            links.append(Link(reading.span_context, {cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ENCODER}))
    first = next(r for r in readings if r)
    attrs[cv.VISION_ENCODER_SPAN_ID] = format(first.span_context.span_id, "016x")
    return attrs, links


class LLMSpan:
    """Handle of an open language-head span; :meth:`set_output` records the answer(s)."""

    def __init__(self, span: trace.Span, row_ids: list[str] | None = None) -> None:
        self.span = span
        self._row_ids = row_ids

    def set_output(
        self,
        text: str | Sequence[str] | None,
        input_tokens: int | Sequence[int] | None = None,
        output_tokens: int | Sequence[int] | None = None,
        *,
        finish_reasons: Sequence[str] | None = None,
        response_model: str | None = None,
    ) -> None:
        """Record the answer (a list of N answers for a batched call; None when the text is
        not known; bytes are decoded as UTF-8; a value that is neither text nor a list, a
        number say, is one answer written with ``str``) and the token counts (a number, or
        one per row)."""
        settings = get_settings()
        if text is None:
            texts: list[str] = []
        elif isinstance(text, str):
            texts = [text]
        elif isinstance(text, bytes | bytearray):  # a raw response body: its text
            texts = [bytes(text).decode("utf-8", "replace")]
        elif isinstance(text, Iterable) and not isinstance(text, Mapping):
            texts = [str(t) for t in text]
        else:
            texts = [str(text)]
        attrs: dict[str, Any] = {}
        if not texts:
            pass
        elif len(texts) == 1:
            if not settings.hide_outputs:
                attrs[cv.OUTPUT_VALUE] = texts[0]
                attrs[cv.OUTPUT_MIME_TYPE] = cv.MIME_TEXT
        elif not settings.hide_outputs:
            attrs[cv.VLMSCOPE_LLM_OUTPUTS] = texts
            attrs[cv.OUTPUT_VALUE] = orjson.dumps(texts).decode()
            attrs[cv.OUTPUT_MIME_TYPE] = cv.MIME_JSON
        if texts and settings.capture_prompts and not settings.hide_outputs:
            attrs[cv.GEN_AI_OUTPUT_MESSAGES] = orjson.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": t}]} for t in texts]
            ).decode()
        for total_key, oi_key, per_row_key, value in (
            (cv.GEN_AI_USAGE_INPUT_TOKENS, cv.LLM_TOKEN_COUNT_PROMPT,
             cv.VLMSCOPE_LLM_INPUT_TOKENS, input_tokens),
            (cv.GEN_AI_USAGE_OUTPUT_TOKENS, cv.LLM_TOKEN_COUNT_COMPLETION,
             cv.VLMSCOPE_LLM_OUTPUT_TOKENS, output_tokens),
        ):
            if value is None:
                continue
            if isinstance(value, numbers.Number):  # int, numpy's int64, a float count
                total = int(value)
            else:
                per_row = [int(v) for v in value]
                total = sum(per_row)
                if len(per_row) > 1:
                    attrs[per_row_key] = per_row
            attrs[total_key] = total
            attrs[oi_key] = total
        if input_tokens is not None and output_tokens is not None:
            attrs[cv.LLM_TOKEN_COUNT_TOTAL] = attrs[cv.LLM_TOKEN_COUNT_PROMPT] + attrs[
                cv.LLM_TOKEN_COUNT_COMPLETION
            ]
        if finish_reasons is not None:
            attrs[cv.GEN_AI_RESPONSE_FINISH_REASONS] = list(finish_reasons)
        if response_model is not None:
            attrs[cv.GEN_AI_RESPONSE_MODEL] = response_model
        self.span.set_attributes(attrs)
        rows = current_rows()
        if rows is not None and self._row_ids is not None and len(texts) == len(self._row_ids):
            rows.outputs.update(zip(self._row_ids, texts, strict=True))


def llm_attributes(
    model: str,
    provider: str | None,
    instruction: str | Sequence[str] | None,
    operation: str,
    parameters: dict[str, Any] | None,
    row_ids: list[str] | None,
) -> dict[str, Any]:
    """The attributes an LLM span starts with (without the encoder's reading)."""
    settings = get_settings()
    attrs: dict[str, Any] = {
        cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_LLM,
        cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_LLM,
        cv.GEN_AI_OPERATION_NAME: operation,
        cv.GEN_AI_REQUEST_MODEL: model,
        cv.LLM_MODEL_NAME: model,
        **batch_attributes(),
    }
    if provider is not None:
        attrs[cv.GEN_AI_PROVIDER_NAME] = provider
        attrs[cv.LLM_PROVIDER] = provider
    if row_ids is not None:
        attrs[cv.VLMSCOPE_ROW_IDS] = row_ids
    if instruction is not None and not settings.hide_inputs:
        if isinstance(instruction, str):
            attrs[cv.INPUT_VALUE] = instruction
            attrs[cv.INPUT_MIME_TYPE] = cv.MIME_TEXT
        else:
            values = [str(i) for i in instruction]
            attrs[cv.VLMSCOPE_LLM_INSTRUCTIONS] = values
            attrs[cv.INPUT_VALUE] = orjson.dumps(values).decode()
            attrs[cv.INPUT_MIME_TYPE] = cv.MIME_JSON
    if parameters:
        attrs[cv.LLM_INVOCATION_PARAMETERS] = orjson.dumps(parameters, default=str).decode()
        for key, conv_key in (
            ("max_new_tokens", cv.GEN_AI_REQUEST_MAX_TOKENS),
            ("max_tokens", cv.GEN_AI_REQUEST_MAX_TOKENS),
            ("temperature", cv.GEN_AI_REQUEST_TEMPERATURE),
            ("top_p", cv.GEN_AI_REQUEST_TOP_P),
            ("top_k", cv.GEN_AI_REQUEST_TOP_K),
            ("seed", cv.GEN_AI_REQUEST_SEED),
        ):
            value = parameters.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attrs[conv_key] = value
    return attrs


@contextlib.contextmanager
def llm_span(
    model: str,
    provider: str | None = None,
    instruction: str | Sequence[str] | None = None,
    *,
    operation: str = cv.GEN_AI_OPERATION_CHAT,
    parameters: dict[str, Any] | None = None,
    row_ids: Sequence[str] | None = None,
    name: str | None = None,
) -> Iterator[LLMSpan]:
    """Trace one call of a language head (e.g. a hosted LLM's client).

    ``instruction`` is a string, or one per row for a batched call; ``parameters`` are the
    generation parameters (``temperature``, ``max_tokens``, ...). Inside ``trace_row`` the
    span carries the encoder's reading of the row and links to the encoder span.

    >>> with vlmscope.llm_span(model="gpt-4o", provider="openai",  # doctest: +SKIP
    ...                        instruction="What animal is this?") as span:
    ...     reply = client.chat(...)
    ...     span.set_output(reply.text, input_tokens=reply.usage.input,
    ...                     output_tokens=reply.usage.output)
    """
    n = 1 if instruction is None or isinstance(instruction, str) else len(instruction)
    if row_ids is not None:
        n = len(row_ids)
    else:
        rows = current_rows()
        if rows is not None and n == 1 and len(rows.row_ids) > 1:
            n = len(rows.row_ids)  # one call serving the whole batch
    ids = resolve_row_ids(n, row_ids)
    attrs = llm_attributes(model, provider, instruction, operation, parameters, ids)
    encoder_attrs, links = _encoder_context(ids)
    attrs.update(encoder_attrs)
    if get_settings().capture_prompts and instruction is not None:
        texts = [instruction] if isinstance(instruction, str) else list(instruction)
        attrs[cv.GEN_AI_INPUT_MESSAGES] = orjson.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts]
        ).decode()
    with get_tracer().start_as_current_span(
        name or f"{operation} {model}",
        attributes=attrs,
        links=links,
        kind=trace.SpanKind.CLIENT,
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        yield LLMSpan(span, ids)
