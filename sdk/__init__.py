"""vlmscope: trace vision-language pipelines into DuckDB and say whether the encoder or the
language head is to blame.

Importing vlmscope imports neither torch nor transformers; the functions that need them
import them when called and say which extra to install when one is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vlmscope._optional import MissingExtraError
from vlmscope._version import __version__
from vlmscope.encoder import EncoderSpan, ZeroShot, encoder_span
from vlmscope.generator import GeneratorInstrumentation, instrument_generator
from vlmscope.images import image_reference, image_sha256
from vlmscope.llm import LLMSpan, llm_span
from vlmscope.rows import trace_batch, trace_row
from vlmscope.settings import Settings
from vlmscope.tracing import ExportStatus, configure, export_stats, force_flush, shutdown

if TYPE_CHECKING:
    from vlmscope import cohorts
    from vlmscope.collectors.frames import read_frame
    from vlmscope.dataset import Dataset
    from vlmscope.torch_encoder import EncoderInstrumentation


def instrument_encoder(
    model: Any,
    labels: Any = None,
    top_k: int = 5,
    layer: str | None = None,
    classifier: str | None = None,
    capture_embeddings: bool = False,
    name: str | None = None,
    zero_shot: Any = None,
    multi_label: bool = False,
    **kwargs: Any,
) -> EncoderInstrumentation:
    """Trace a torch image encoder's forward calls (needs ``vlmscope[torch]``).

    See :func:`vlmscope.torch_encoder.instrument_encoder` for the details.
    """
    from vlmscope.torch_encoder import instrument_encoder as _instrument

    return _instrument(model, labels, top_k, layer, classifier, capture_embeddings, name,
                       zero_shot, multi_label, **kwargs)


def checkpoint_sha256(model: Any) -> str:
    """SHA-256 of a torch module's weights (needs ``vlmscope[torch]``)."""
    from vlmscope.torch_encoder import checkpoint_sha256 as _checkpoint

    return _checkpoint(model)


def __getattr__(name: str) -> Any:
    """``vlmscope.Dataset``, ``vlmscope.cohorts`` and ``vlmscope.read_frame``, imported on
    first use (they pull in DuckDB, Arrow and, for perturbations, Pillow; ``import vlmscope``
    stays light)."""
    if name == "read_frame":
        from vlmscope.collectors.frames import read_frame

        return read_frame
    if name == "Dataset":
        from vlmscope.dataset import Dataset

        return Dataset
    if name == "cohorts":
        import importlib

        return importlib.import_module("vlmscope.cohorts")
    raise AttributeError(f"module 'vlmscope' has no attribute {name!r}")


__all__ = [
    "Dataset",
    "EncoderSpan",
    "ZeroShot",
    "ExportStatus",
    "GeneratorInstrumentation",
    "LLMSpan",
    "MissingExtraError",
    "Settings",
    "__version__",
    "checkpoint_sha256",
    "cohorts",
    "configure",
    "encoder_span",
    "export_stats",
    "force_flush",
    "image_reference",
    "image_sha256",
    "instrument_encoder",
    "instrument_generator",
    "llm_span",
    "read_frame",
    "shutdown",
    "trace_batch",
    "trace_row",
]
