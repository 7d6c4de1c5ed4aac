"""``vlmscope.configure()``: the tracer provider, its span processor and where spans go."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from vlmscope import conventions as cv
from vlmscope._version import __version__
from vlmscope.settings import (
    DEFAULT_DB,
    DEFAULT_MAX_EXPORT_BATCH_SIZE,
    DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_SCHEDULE_DELAY_MS,
    ENDPOINT_ENV,
    Settings,
    default_db,
)

_log = logging.getLogger("vlmscope")

TRACER_NAME = "vlmscope"
"""Instrumentation scope name of every span vlmscope creates."""

DEFAULT_SERVICE_NAME = "vlmscope-app"
"""``service.name`` when neither the argument nor ``OTEL_SERVICE_NAME`` gives one."""


@dataclass
class _ExporterCounts:
    """What a wrapped exporter did so far (the fields :func:`export_stats` reads)."""

    exported_spans: int = 0
    failed_spans: int = 0
    failed_batches: int = 0
    last_error: str | None = None


class _CountingExporter(SpanExporter):
    """Counts what the exporter it wraps did with each batch (``stats``, as the store's
    exporter keeps them), so that :func:`export_stats` reports an OTLP endpoint's losses too.
    Never raises: an exporter that raises has failed its batch."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.handed_spans = 0
        """Spans handed to ``export`` so far (counted before the exporter runs)."""
        self._counts = _ExporterCounts()

    @property
    def stats(self) -> Any:
        """The wrapped exporter's own ``stats`` when it keeps them (the store's exporter
        knows what it committed later), else what this wrapper counted."""
        return getattr(self.exporter, "stats", self._counts)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.handed_spans += len(spans)
        try:
            result = self.exporter.export(spans)
        except Exception as error:  # an exporter must not raise; count it as a failure
            _log.warning("vlmscope: %s raised while exporting %d spans: %s",
                         type(self.exporter).__name__, len(spans), error)
            result, reason = SpanExportResult.FAILURE, f"{type(error).__name__}: {error}"
        else:
            reason = f"{type(self.exporter).__name__} answered {result.name}"
        if result is SpanExportResult.SUCCESS:
            self._counts.exported_spans += len(spans)
        else:
            self._counts.failed_spans += len(spans)
            self._counts.failed_batches += 1
            self._counts.last_error = reason
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class _CountingBatchSpanProcessor(SpanProcessor):
    """The SDK's ``BatchSpanProcessor``, with the spans it would drop counted through public
    hooks only: a sampled span that ends is forwarded while fewer than ``max_queue_size``
    spans wait (ended, not yet handed to the exporter, which :class:`_CountingExporter`
    counts); past that it is dropped here and counted in :attr:`dropped_spans`. The batch
    processor's own queue has the same bound and never holds more than is counted waiting,
    so it never drops a span unseen. (It would drop the oldest waiting span; this drops the
    newest, which the OpenTelemetry specification allows as well.)"""

    def __init__(self, exporter: _CountingExporter, *, max_queue_size: int,
                 schedule_delay_millis: float, max_export_batch_size: int) -> None:
        self.counting_exporter = exporter
        self._batch = BatchSpanProcessor(
            exporter, max_queue_size=max_queue_size, schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size)
        self.max_queue_size = max_queue_size
        self.ended_spans = 0
        """Sampled spans that ended and were forwarded to the batch processor."""
        self.dropped_spans = 0
        """Sampled spans dropped because ``max_queue_size`` spans were waiting."""
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._batch.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        with self._lock:
            if self.ended_spans - self.counting_exporter.handed_spans >= self.max_queue_size:
                self.dropped_spans += 1
                return
            self.ended_spans += 1
        self._batch.on_end(span)

    def shutdown(self) -> None:
        self._batch.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._batch.force_flush(timeout_millis)


class _RowSpanProcessor(SpanProcessor):
    """Ties spans that other instrumentations start inside a row to it: a span without a
    vlmscope role gets the row's id when it starts (see
    :func:`vlmscope.rows.stamp_current_row`), so an LLM call traced by OpenInference or
    OpenLLMetry becomes the row's LLM record. With ``forward``, spans that end are also
    handed to the processor :func:`configure` set up last: this is how vlmscope's
    processor rides on a tracer provider it does not own (the application's, or one an
    earlier :func:`configure` made global)."""

    def __init__(self, forward: bool = False) -> None:
        from vlmscope.rows import stamp_current_row

        self._forward = forward
        # Called for every span that starts: straight to the function, no frame between.
        self.on_start = stamp_current_row  # type: ignore[method-assign]

    def on_end(self, span: ReadableSpan) -> None:
        try:
            attributes = span.attributes
            if attributes:
                role = attributes.get(cv.VLMSCOPE_SPAN_ROLE)
                if role is None and (_ANSWER in attributes or _LEGACY_ANSWER in attributes) \
                        and _PROMPT not in attributes and _LEGACY_PROMPT not in attributes:
                    _warn_prompt_missing(span)
                if role is None or role == cv.ROLE_LLM:
                    row_ids = attributes.get(cv.VLMSCOPE_ROW_IDS)
                    if row_ids is not None and len(row_ids) == 1:
                        _unanswered.call_ended(span, attributes, row_ids[0])
                    elif row_ids is None and role is None:
                        _warn_if_in_a_batch(span, attributes)
                elif role == cv.ROLE_ROW:
                    _unanswered.row_ended(span, attributes.get(cv.VLMSCOPE_ROW_ID))
        except Exception:  # a check for the user's benefit never breaks their pipeline
            pass
        processor = _state.processor if self._forward and _state.provider is not None \
            else None
        if processor is not None:
            processor.on_end(span)

    def shutdown(self) -> None:
        """Nothing of its own to close (vlmscope's processor closes with its provider)."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing of its own to flush."""
        return True


_ANSWER, _LEGACY_ANSWER = cv.GEN_AI_OUTPUT_MESSAGES, f"{cv.GEN_AI_COMPLETION}.0.content"
_PROMPT, _LEGACY_PROMPT = cv.GEN_AI_INPUT_MESSAGES, f"{cv.GEN_AI_PROMPT}.0.content"
"""A GenAI span with an answer attribute and no prompt attribute recorded its answer but not
its prompt (OpenLLMetry does that to a request with a base64 image, unless given
``upload_base64_image=``): its row gets no instruction, so the user is told once."""


def _warn_prompt_missing(span: ReadableSpan) -> None:
    from vlmscope.rows import warn_once

    scope = span.instrumentation_scope.name if span.instrumentation_scope else "?"
    warn_once("prompt-missing",
              "the LLM span %r of %s recorded the answer but not the prompt, so its row has no "
              "instruction; OpenLLMetry drops the prompt of a request that carries a base64 "
              "image unless its instrumentor is given an image hook: "
              "OpenAIInstrumentor(upload_base64_image=vlmscope.image_reference)",
              span.name, scope)


def _warn_if_in_a_batch(span: ReadableSpan, attributes: Any) -> None:
    """Say once that an LLM call made right inside ``trace_batch`` (its parent the batch's
    span, not ``trace_row(row_id)``'s nor a span of the user's, such as an ``llm_span`` that
    records the rows' answers) is tied to no row: one call is not one row there."""
    from vlmscope.rows import current_rows, warn_once

    rows = current_rows()
    if rows is None or rows.batch_span is None or span.parent is None \
            or rows.batch_span.get_span_context().span_id != span.parent.span_id:
        return
    from vlmscope.collectors.normalize import is_llm_call

    if is_llm_call(dict(attributes)):
        warn_once("batch-call-unrowed",
                  "the LLM call %r inside trace_batch is tied to no row, so its answer reaches "
                  "none; for a call made per image, wrap it in vlmscope.trace_row(row_id) "
                  "inside the batch", span.name)


CONTENT_SWITCHES = (
    ("com.anthropic.sdk", "the anthropic SDK's own tracing records the messages with "
     "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE=content, or "
     "Anthropic(open_telemetry={'traces': {'content_mode': 'content'}})"),
    *((f"opentelemetry.instrumentation.{name}", "OpenTelemetry's GenAI instrumentations "
       "put the messages on the span with OTEL_SEMCONV_STABILITY_OPT_IN="
       "gen_ai_latest_experimental and OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="
       "span_only") for name in ("openai_v2", "google_genai", "vertexai")),
    ("opentelemetry.instrumentation.", "OpenLLMetry records the messages unless "
     "TRACELOOP_TRACE_CONTENT=false"),
    ("openinference.instrumentation.", "OpenInference records the messages unless "
     "OPENINFERENCE_HIDE_OUTPUTS is set"),
)
"""How each instrumentation is told to record an LLM call's messages, by the start of its
scope name, the first that applies (:func:`_UnansweredRows.row_ended` names it):
OpenTelemetry's own GenAI instrumentations before OpenLLMetry's, which share the prefix."""


class _UnansweredRows:
    """Tells the user once when a row's answer will be missing because its LLM call recorded
    none: an instrumentation that records metadata only (the anthropic SDK's own tracing by
    default, OpenLLMetry with ``TRACELOOP_TRACE_CONTENT=false``), or one that does not
    assemble a streamed answer (the anthropic SDK's, for ``stream=True``). It follows the
    store's rule for the row's answer (the LLM call that ended last,
    :data:`vlmscope.collectors.spec.PARTS`): when that call succeeded without an answer, the
    row's ``output`` is NULL, and every evaluator would score a missing answer."""

    _MAX_ROWS = 10_000
    """Rows followed at once; one whose row span never ends is forgotten past this."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, str], tuple[int, bool, str, str]] = {}
        self._lock = threading.Lock()

    def call_ended(self, span: ReadableSpan, attributes: Any, row_id: Any) -> None:
        """An LLM call of the row ``row_id`` ended (a span that is not one is ignored)."""
        if not isinstance(row_id, str) or span.end_time is None:
            return
        if attributes.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_LLM:
            answered = True  # vlmscope's own span: the user's set_output decides
        else:
            from vlmscope.collectors.normalize import is_llm_call, llm_answer

            values = dict(attributes)
            if not is_llm_call(values):
                return
            answered = (span.status.status_code is trace.StatusCode.ERROR
                        or llm_answer(values) is not None)
        scope = span.instrumentation_scope.name if span.instrumentation_scope else "?"
        key = (span.context.trace_id, row_id)
        with self._lock:
            last = self._last.get(key)
            if last is None or span.end_time >= last[0]:
                if last is None and len(self._last) >= self._MAX_ROWS:
                    self._last.pop(next(iter(self._last)))
                self._last[key] = (span.end_time, answered, span.name, scope)

    def row_ended(self, span: ReadableSpan, row_id: Any) -> None:
        """The row ``row_id`` ended: warn once if its last LLM call recorded no answer."""
        with self._lock:
            last = self._last.pop((span.context.trace_id, row_id), None)
        if last is None or last[1]:
            return
        from vlmscope.rows import warn_once

        _, _, name, scope = last
        switch = next((hint for prefix, hint in CONTENT_SWITCHES
                       if scope.startswith(prefix)), None)
        warn_once("answer-missing",
                  "row %r has no answer: its last LLM call (span %r of %s) recorded none, so "
                  "the row's output is NULL and evaluators score it as missing; the "
                  "instrumentation records metadata only, or did not assemble a streamed "
                  "answer%s", row_id, name, scope, f" ({switch})" if switch else "")


_unanswered = _UnansweredRows()

_attached: set[int] = set()  # ids of the providers a forwarding _RowSpanProcessor rides on
_global_provider: TracerProvider | None = None  # the global provider vlmscope set, if any


def _reach_global_provider(resource: Resource) -> str:
    """Make the spans of every instrumentation reach the processor :func:`configure` set up
    last. When no global provider is set, vlmscope sets one that hands every span to that
    processor (it outlives each configure: OpenTelemetry lets the global be set once per
    process); when the application set an SDK provider, a forwarding processor rides on it
    (once per provider). Returns "set", "attached", "already" or "impossible"."""
    global _global_provider
    current = trace.get_tracer_provider()
    if _global_provider is not None and current is _global_provider:
        return "already"
    if isinstance(current, trace.ProxyTracerProvider):
        forwarding = TracerProvider(resource=resource)
        forwarding.add_span_processor(_RowSpanProcessor(forward=True))
        trace.set_tracer_provider(forwarding)
        if trace.get_tracer_provider() is forwarding:
            _global_provider = forwarding
            _attached.add(id(forwarding))
            return "set"
        current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if id(current) not in _attached:
            current.add_span_processor(_RowSpanProcessor(forward=True))
            _attached.add(id(current))
        return "attached"
    return "impossible"


@dataclass(frozen=True)
class ExportStatus:
    """Spans written and lost since :func:`configure`, as :func:`export_stats` reports them."""

    destination: str
    exported_spans: int
    failed_spans: int
    dropped_spans: int
    last_error: str | None
    spooled_spans: int = 0
    """Spans waiting in the store's durable spool (the file was held or damaged); they are
    committed, once, when a writer can write the store."""


@dataclass
class _State:
    provider: TracerProvider | None = None
    processor: SpanProcessor | None = None
    exporter: SpanExporter | None = None
    counting: _CountingExporter | None = None
    destination: str = ""
    settings: Settings = Settings()
    tracer: trace.Tracer | None = None
    pid: int = 0
    """The process that configured: another one is a forked child."""
    endpoint: tuple[str, dict[str, str] | None] | None = None
    """With ``endpoint=``: it and the headers, to make a forked child its own exporter."""


_state = _State()
_lock = threading.RLock()
_atexit_registered = False


def configure(
    db: str | os.PathLike[str] = DEFAULT_DB,
    endpoint: str | None = None,
    service_name: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    capture_images: bool | None = None,
    capture_prompts: bool | None = None,
    capture_embeddings: bool | None = None,
    hide_inputs: bool | None = None,
    hide_outputs: bool | None = None,
    base64_max_length: int | None = None,
    exporter: SpanExporter | None = None,
    batch: bool = True,
    schedule_delay_ms: int = DEFAULT_SCHEDULE_DELAY_MS,
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
    max_export_batch_size: int = DEFAULT_MAX_EXPORT_BATCH_SIZE,
    resource_attributes: dict[str, Any] | None = None,
    set_global: bool | None = None,
) -> TracerProvider:
    """Send vlmscope's spans somewhere; returns the tracer provider.

    By default spans go to the embedded DuckDB store ``db`` (``VLMSCOPE_DB`` overrides the
    default path), each span converted as it ends and written in batches by
    :class:`~vlmscope.collectors.processor.DuckDBSpanProcessor` (``batch=False``: one write
    per span, for tests). With ``endpoint`` (or ``VLMSCOPE_ENDPOINT``) they go to an OTLP/HTTP
    collector such as ``vlmscope collect``, Phoenix or Jaeger through the official OTLP
    exporter (``{endpoint}/v1/traces``), with ``headers``. ``exporter`` overrides both.

    Privacy switches default to the environment (see :mod:`vlmscope.settings`), then off.
    ``service_name`` defaults to ``OTEL_SERVICE_NAME``, then ``vlmscope-app``.

    Calling it again flushes and replaces the previous set-up. Spans are flushed at
    interpreter exit; :func:`shutdown` flushes on demand.

    Other instrumentations (OpenInference, OpenLLMetry, ...) trace through OpenTelemetry's
    global tracer provider, so by default (``set_global`` None or True) their spans are
    made to reach the same place: when none is set, vlmscope sets a global provider that
    hands every span to the processor configured last (OpenTelemetry allows one global
    provider per process, so it outlives a reconfiguration); when the application already
    set its own SDK ``TracerProvider``, vlmscope's processor is attached to it instead (its
    spans keep the application's resource); when
    the global provider is of another kind, a warning says so once (then pass
    ``tracer_provider=`` the returned provider to each instrumentor). ``set_global=False``
    leaves the global provider alone.
    """
    if schedule_delay_ms <= 0 or max_queue_size <= 0 or max_export_batch_size <= 0:
        raise ValueError(
            "schedule_delay_ms, max_queue_size and max_export_batch_size must be positive"
        )
    if max_export_batch_size > max_queue_size:
        raise ValueError("max_export_batch_size must not exceed max_queue_size")
    settings = Settings.from_env(
        capture_images=capture_images,
        capture_prompts=capture_prompts,
        capture_embeddings=capture_embeddings,
        hide_inputs=hide_inputs,
        hide_outputs=hide_outputs,
        base64_max_length=base64_max_length,
    )
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or None
    destination_is_store = False
    otlp: tuple[str, dict[str, str] | None] | None = None
    if exporter is not None:
        destination = type(exporter).__name__
    elif endpoint:
        exporter = _otlp_exporter(endpoint, headers)
        destination = endpoint
        otlp = (endpoint, headers)
    else:
        from vlmscope.collectors.exporter import DuckDBSpanExporter

        if os.fspath(db) == DEFAULT_DB:
            db = default_db()
        exporter = DuckDBSpanExporter(db)
        destination = os.fspath(db)
        destination_is_store = True

    service = service_name or os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    resource = Resource.create({**(resource_attributes or {}), "service.name": service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(_RowSpanProcessor())
    # What an exporter other than the store's did is counted on the way in and out of it.
    counting = None if destination_is_store else _CountingExporter(exporter)
    if batch and destination_is_store:
        from vlmscope.collectors.processor import DuckDBSpanProcessor

        processor: SpanProcessor = DuckDBSpanProcessor(
            exporter,  # type: ignore[arg-type]
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_ms,
            max_export_batch_size=max_export_batch_size,
        )
    elif batch:
        assert counting is not None
        processor = _CountingBatchSpanProcessor(
            counting,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_ms,
            max_export_batch_size=max_export_batch_size,
        )
    else:
        processor = SimpleSpanProcessor(counting or exporter)
    provider.add_span_processor(processor)

    global _atexit_registered
    with _lock:
        shutdown()
        _state.provider = provider
        _state.processor = processor
        _state.exporter = exporter
        _state.counting = counting
        _state.destination = destination
        _state.settings = settings
        _state.tracer = provider.get_tracer(TRACER_NAME, __version__)
        _state.pid = os.getpid()
        _state.endpoint = otlp
        if set_global is not False:
            reached = _reach_global_provider(resource)
            if reached == "impossible":
                from vlmscope.rows import warn_once

                warn_once("global-provider",
                          "OpenTelemetry's global tracer provider is a %s, not an SDK "
                          "TracerProvider: spans of other instrumentations do not reach "
                          "vlmscope; pass tracer_provider=<the provider configure() "
                          "returned> to each instrumentor",
                          type(trace.get_tracer_provider()).__name__)
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
    return provider


def _otlp_exporter(endpoint: str, headers: dict[str, str] | None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    return OTLPSpanExporter(endpoint=url, headers=headers)


def shutdown() -> None:
    """Flush every queued span to its destination and close it. Safe to call twice."""
    with _lock:
        provider = _state.provider
        _state.provider = None
        _state.tracer = None
    if provider is not None:
        provider.shutdown()


def force_flush(timeout_millis: int = 30_000) -> bool:
    """Export every span ended so far without shutting down, and wait until the
    destination has them (for the DuckDB store: committed); True when all went out."""
    provider = _state.provider
    if provider is None:
        return True
    flushed = provider.force_flush(timeout_millis)
    exporter = _state.exporter
    # The batch processor hands spans over but does not flush its exporter.
    if exporter is not None:
        flushed = exporter.force_flush(timeout_millis) and flushed
    return flushed


_INHERITED_EXPORTERS: list[SpanExporter] = []
"""In a forked child, the parent's OTLP exporters: kept, never used or closed here."""


def _after_fork_in_child() -> None:
    """A forked child gets its own OTLP exporter: the inherited one's HTTP session may hold
    a keep-alive connection the parent uses too, and two processes writing requests on one
    socket lose batches. (The store's processor starts afresh on its own.)"""
    counting = _state.counting
    if counting is None or _state.endpoint is None:
        return
    try:
        _INHERITED_EXPORTERS.append(counting.exporter)
        counting.exporter = _otlp_exporter(*_state.endpoint)
    except Exception as error:  # a fork must not fail for tracing's sake
        _log.debug("vlmscope could not give a forked process its own exporter: %s", error)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def flush_if_forked() -> None:
    """In a process forked from a traced one, write what was traced so far, now: such a
    process may be killed rather than exit (``multiprocessing.Pool.terminate``), and its
    rows would be lost. Called at the end of each row; does nothing elsewhere; never
    raises."""
    processor = _state.processor
    if processor is not None and _state.pid != os.getpid():
        try:
            processor.force_flush()
        except Exception as error:
            _log.debug("vlmscope could not flush in a forked process: %s", error)


def export_stats() -> ExportStatus:
    """Spans written to and lost on the way to the configured destination, so far."""
    exporter = _state.exporter
    processor = _state.processor
    stats = getattr(_state.counting or exporter, "stats", None)
    return ExportStatus(
        destination=_state.destination,
        exported_spans=stats.exported_spans if stats else 0,
        failed_spans=stats.failed_spans if stats else 0,
        dropped_spans=getattr(processor, "dropped_spans", 0),
        last_error=stats.last_error if stats else None,
        spooled_spans=getattr(stats, "spooled_spans", 0) if stats else 0,
    )


def configured_exporter() -> SpanExporter | None:
    """The exporter :func:`configure` set up (a
    :class:`~vlmscope.collectors.exporter.DuckDBSpanExporter` for a store), None when
    vlmscope is not configured or was shut down."""
    return _state.exporter if _state.provider is not None else None


def get_tracer() -> trace.Tracer:
    """vlmscope's tracer: the configured one, else one from OpenTelemetry's global provider."""
    tracer = _state.tracer
    if tracer is None:
        return trace.get_tracer(TRACER_NAME)
    return tracer


def get_settings() -> Settings:
    """The privacy settings in force (from :func:`configure`, else the environment)."""
    if _state.provider is None:
        return Settings.from_env()
    return _state.settings
