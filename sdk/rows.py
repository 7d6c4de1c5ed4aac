"""Pipeline rows: ``trace_row`` (one row) and ``trace_batch`` (N rows served together).

A row's span is the parent of everything its pipeline does. Inside it, the encoder hook
records what the encoder read for each row, and the language-head span of the same row picks
that reading up (checkpoint hash, top-k, a link to the encoder span) from here, so a failure
seen on the LLM span leads to the encoder without a join.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanContext, Status, StatusCode

from vlmscope import conventions as cv
from vlmscope.images import image_base64_png, image_sha256
from vlmscope.labels import object_names
from vlmscope.tracing import flush_if_forked, get_settings, get_tracer

_log = logging.getLogger("vlmscope")


@dataclass(frozen=True)
class EncoderReading:
    """What the encoder reported for one row: enough for the LLM span to carry."""

    span_context: SpanContext
    model: str | None
    checkpoint_sha256: str | None
    top_k_labels: tuple[str, ...]
    top_k_scores: tuple[float, ...]


@dataclass
class RowContext:
    """The rows being traced right now, what the encoder read for each, and what the
    language head answered for each."""

    row_ids: tuple[str, ...]
    row_spans: tuple[trace.Span, ...]
    instructions: tuple[str | None, ...]
    readings: dict[str, EncoderReading] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    """The last answer a language-head span recorded for each row (by row id)."""
    batch_size: int | None = None
    """Rows of the enclosing ``trace_batch`` (None inside a lone ``trace_row``)."""
    batch_span: trace.Span | None = None
    """The enclosing ``trace_batch``'s span (None inside a lone ``trace_row``)."""


_current: contextvars.ContextVar[RowContext | None] = contextvars.ContextVar(
    "vlmscope_rows", default=None
)


def current_rows() -> RowContext | None:
    """The innermost ``trace_row``/``trace_batch`` context, or None outside one."""
    return _current.get()


def batch_attributes() -> dict[str, int]:
    """:data:`~vlmscope.conventions.VLMSCOPE_BATCH_SIZE` for a span inside ``trace_batch``."""
    rows = _current.get()
    if rows is None or rows.batch_size is None:
        return {}
    return {cv.VLMSCOPE_BATCH_SIZE: rows.batch_size}


_warned: set[str] = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log an instrumentation problem at WARNING the first time, at DEBUG afterwards."""
    if key in _warned:
        _log.debug(message, *args)
    else:
        _warned.add(key)
        _log.warning(message + " (vlmscope goes on; further occurrences are logged at DEBUG)",
                     *args)


def stamp_current_row(span: Any, parent_context: Any = None) -> None:
    """Give a span that starts inside ``trace_row`` (in the row's trace) and has no vlmscope
    role the row's id (:data:`~vlmscope.conventions.VLMSCOPE_ROW_IDS`), so that the store
    can tell which row another instrumentation's LLM call served. Inside ``trace_batch``
    a span is not tied to one row, and nothing is stamped. Never raises.

    A span started where the row's context did not follow but OpenTelemetry's did (a worker
    thread handed the OpenTelemetry context, as ``opentelemetry-instrumentation-threading``
    and agent frameworks do) is tied through its parent: a row span's id, or the row id its
    parent was stamped with."""
    try:
        attributes = span.attributes
        if attributes is not None and (cv.VLMSCOPE_SPAN_ROLE in attributes
                                       or cv.VLMSCOPE_ROW_IDS in attributes):
            return
        rows = _current.get()
        row_id = _row_of_parent(span, parent_context) if rows is None else (
            rows.row_ids[0] if len(rows.row_ids) == 1 and span.get_span_context().trace_id
            == rows.row_spans[0].get_span_context().trace_id else None)
        if row_id is not None:
            span.set_attribute(cv.VLMSCOPE_ROW_IDS, [row_id])
    except Exception as error:  # instrumentation never breaks the pipeline
        warn_once("row-stamp", "vlmscope could not tie a span to its row: %s", error)


def _row_of_parent(span: Any, parent_context: Any) -> str | None:
    """The one row of the span's parent in the same trace: a row span's id, or the one row
    id the parent carries (stamped, or a batch of one, as in the row's own thread)."""
    parent = trace.get_current_span(parent_context)
    above = getattr(parent, "attributes", None)
    if not above or parent.get_span_context().trace_id != span.get_span_context().trace_id:
        return None
    if above.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_ROW and cv.VLMSCOPE_ROW_ID in above:
        return above[cv.VLMSCOPE_ROW_ID]
    ids = above.get(cv.VLMSCOPE_ROW_IDS)
    return ids[0] if ids is not None and len(ids) == 1 else None


def _row_attributes(
    row_id: str,
    cohort: str | None,
    expected: Any,
    objects: Sequence[str] | None,
    image: Any,
    instruction: str | None,
    run: str | None,
    attributes: dict[str, Any] | None,
    instruction_kind: str | None = None,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ROW,
        cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_CHAIN,
        cv.VLMSCOPE_ROW_ID: str(row_id),
    }
    if cohort is not None:
        attrs[cv.VLMSCOPE_COHORT] = str(cohort)
    if run is not None:
        attrs[cv.VLMSCOPE_RUN_NAME] = str(run)
    if expected is not None:
        attrs[cv.VLMSCOPE_ROW_EXPECTED] = str(expected)
    if objects is not None:
        attrs[cv.VLMSCOPE_ROW_OBJECTS] = object_names(objects)
    if instruction is not None:
        attrs[cv.VLMSCOPE_ROW_INSTRUCTION] = str(instruction)
    if instruction_kind is not None:
        attrs[cv.VLMSCOPE_INSTRUCTION_KIND] = instruction_kind
    if image is not None:
        try:
            attrs[cv.VISION_IMAGE_SHA256] = image_sha256(image)
            if isinstance(image, str):
                attrs[cv.VISION_IMAGE_URI] = image
            settings = get_settings()
            if settings.capture_images:
                encoded = image_base64_png(image, settings.base64_max_length)
                if encoded is not None:
                    attrs[cv.VISION_IMAGE_BASE64] = encoded
        except Exception as error:  # a bad image must not break the user's pipeline
            warn_once("row-image", "vlmscope could not record the image of row %s: %s",
                      row_id, error)
            attrs[cv.VLMSCOPE_INSTRUMENTATION_ERROR] = f"image: {error}"
    if attributes:
        attrs.update(attributes)
    return attrs


@contextlib.contextmanager
def trace_row(
    row_id: str,
    cohort: str | None = None,
    expected: Any = None,
    objects: Sequence[str] | None = None,
    image: Any = None,
    *,
    instruction: str | None = None,
    run: str | None = None,
    attributes: dict[str, Any] | None = None,
    instruction_kind: str | None = None,
) -> Iterator[trace.Span]:
    """Trace one pipeline row: everything inside becomes a child of its row span.

    ``expected`` (the right answer or label) and ``objects`` (what is really in the image: a
    list of names, or one name as a string; see :func:`vlmscope.labels.object_names`) are
    stored with the row when known at trace time; ``image`` (bytes, path, PIL image,
    array or tensor) is hashed, and recorded as base64 PNG when image capture is on.
    ``run`` names the run the row belongs to; ``instruction_kind`` says what the instruction
    asks for (one of :data:`~vlmscope.conventions.INSTRUCTION_KINDS`; evaluators read it
    from the instruction when it is not given; another value raises ``ValueError``). An
    exception raised inside marks the row ``ERROR`` and propagates unchanged.

    Inside :func:`trace_batch`, ``trace_row`` with one of the batch's row ids is that row,
    not a new one: what runs inside (a hosted LLM asked once per image after a batched
    encoder forward, its instrumentor's span included) is tied to it, and the arguments
    given here are added to it.

    >>> with vlmscope.trace_row("img-17", cohort="night", expected="cat"):  # doctest: +SKIP
    ...     answer = pipeline(image)
    """
    _check_kinds([instruction_kind])
    attrs = _row_attributes(row_id, cohort, expected, objects, image, instruction, run,
                            attributes, instruction_kind)
    batch = _current.get()
    if batch is not None and batch.batch_size is not None and str(row_id) in batch.row_ids:
        yield from _batch_row(batch, str(row_id), attrs, instruction)
        return
    tracer = get_tracer()
    try:
        with tracer.start_as_current_span(
            cv.ROW_SPAN_NAME, attributes=attrs, record_exception=True,
            set_status_on_exception=True
        ) as span:
            token = _current.set(RowContext((str(row_id),), (span,), (instruction,)))
            try:
                yield span
            finally:
                _current.reset(token)
    finally:
        flush_if_forked()


def _batch_row(batch: RowContext, row_id: str, attrs: dict[str, Any],
               instruction: str | None) -> Iterator[trace.Span]:
    """The body of ``trace_row(row_id)`` inside a batch holding ``row_id``: the batch's row
    span, current for the block and given ``attrs``; calls inside are the row's own (no
    batch size: an LLM asked for this row alone takes its whole time, not a share)."""
    i = batch.row_ids.index(row_id)
    span = batch.row_spans[i]
    span.set_attributes(attrs)
    context = RowContext((row_id,), (span,), (instruction or batch.instructions[i],),
                         readings=batch.readings, outputs=batch.outputs)
    with trace.use_span(span, end_on_exit=False, record_exception=True,
                        set_status_on_exception=True):
        token = _current.set(context)
        try:
            yield span
        finally:
            _current.reset(token)


def _check_kinds(kinds: Sequence[str | None]) -> None:
    bad = sorted({str(k) for k in kinds if k is not None and k not in cv.INSTRUCTION_KINDS})
    if bad:
        raise ValueError(f"unknown instruction kind(s) {', '.join(map(repr, bad))}; use one "
                         f"of {', '.join(cv.INSTRUCTION_KINDS)}")


def _aligned(name: str, values: Any, n: int, *, per_row_list: bool = False) -> list[Any]:
    """Broadcast a scalar to ``n`` rows, or check that a list has one entry per row."""
    if values is None:
        return [None] * n
    is_list = isinstance(values, list | tuple)
    if per_row_list:  # objects: a list of lists is per row; a flat list is for every row
        is_list = is_list and all(
            v is None or isinstance(v, list | tuple | set | frozenset) for v in values
        ) and len(values) > 0
    if not is_list:
        return [values] * n
    if len(values) != n:
        raise ValueError(f"trace_batch got {len(values)} {name} for {n} row_ids; give one per row")
    return list(values)


@contextlib.contextmanager
def trace_batch(
    row_ids: Sequence[str],
    cohort: str | Sequence[str] | None = None,
    expected: Sequence[Any] | None = None,
    objects: Sequence[Sequence[str]] | None = None,
    images: Sequence[Any] | None = None,
    *,
    instructions: Sequence[str] | None = None,
    run: str | None = None,
    instruction_kinds: str | Sequence[str | None] | None = None,
) -> Iterator[trace.Span]:
    """Trace N pipeline rows served by batched calls (one encoder forward, one ``generate``).

    Opens a batch span with one child row span per id. Per-row arguments are lists aligned
    with ``row_ids`` (``cohort`` may also be one value for all). A batched encoder forward
    inside records one reading per image, and a batched ``generate`` one output per row,
    each tied to its row id. ``instruction_kinds`` is what each instruction asks for (one
    kind for all, or one per row; see :func:`trace_row`). Raises ``ValueError`` when a list's
    length differs from ``row_ids``'.
    """
    ids = [str(r) for r in row_ids]
    if not ids:
        raise ValueError("trace_batch needs at least one row id")
    if len(set(ids)) != len(ids):
        raise ValueError("trace_batch row_ids must be unique within the batch")
    n = len(ids)
    cohorts = _aligned("cohorts", cohort, n)
    expecteds = _aligned("expected values", expected, n)
    object_lists = _aligned("object lists", objects, n, per_row_list=True)
    image_list = _aligned("images", images, n)
    instruction_list = _aligned("instructions", instructions, n)
    kind_list = _aligned("instruction kinds", instruction_kinds, n)
    _check_kinds(kind_list)

    tracer = get_tracer()
    try:
        with tracer.start_as_current_span(
            cv.BATCH_SPAN_NAME,
            attributes={
                cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_BATCH,
                cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_CHAIN,
                cv.VLMSCOPE_ROW_IDS: ids,
                cv.VLMSCOPE_BATCH_SIZE: n,
            },
            record_exception=True,
            set_status_on_exception=True,
        ) as batch_span:
            row_spans = tuple(
                tracer.start_span(
                    cv.ROW_SPAN_NAME,
                    attributes=_row_attributes(
                        ids[i], cohorts[i], expecteds[i], object_lists[i], image_list[i],
                        instruction_list[i], run, {cv.VLMSCOPE_BATCH_SIZE: n}, kind_list[i],
                    ),
                )
                for i in range(n)
            )
            token = _current.set(RowContext(tuple(ids), row_spans, tuple(instruction_list),
                                            batch_size=n, batch_span=batch_span))
            error: BaseException | None = None
            try:
                yield batch_span
            except BaseException as raised:
                error = raised
                raise
            finally:
                _current.reset(token)
                for span in row_spans:
                    if error is not None:
                        span.set_status(Status(StatusCode.ERROR,
                                               f"{type(error).__name__}: {error}"))
                    span.end()
    finally:
        flush_if_forked()
