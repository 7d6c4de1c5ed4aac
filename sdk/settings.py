"""Privacy switches and defaults, set by arguments to :func:`vlmscope.configure` or by
environment variables.

Environment variables (an explicit argument wins over the environment):

* ``VLMSCOPE_DB`` - path of the DuckDB store (default ``vlmscope.duckdb``).
* ``VLMSCOPE_ENDPOINT`` - an OTLP/HTTP base URL; when set, spans go there instead of DuckDB.
* ``VLMSCOPE_CAPTURE_IMAGES`` - record each image as base64 PNG on its row span (default off).
* ``VLMSCOPE_CAPTURE_PROMPTS`` - record the full prompt and answer as GenAI messages
  (``gen_ai.input.messages`` / ``gen_ai.output.messages``; default off).
* ``VLMSCOPE_CAPTURE_EMBEDDINGS`` - record feature vectors on encoder spans (default off).
* ``VLMSCOPE_BASE64_MAX_LENGTH`` - longest base64 image kept, in characters (default 32,000;
  longer images are not recorded, and the span says so).
* ``VLMSCOPE_HIDE_INPUTS`` / ``VLMSCOPE_HIDE_OUTPUTS`` - drop the instruction / the answer
  text from LLM spans entirely (default off; OpenInference's ``OPENINFERENCE_HIDE_INPUTS`` and
  ``OPENINFERENCE_HIDE_OUTPUTS`` are honoured too).

The instruction and the answer are what the evaluators score, so, as in OpenInference, they
are recorded unless hidden; the complete prompt, images and vectors are content that is off
until switched on.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_DB = "vlmscope.duckdb"
"""Where the embedded store lives unless told otherwise."""

DB_ENV = "VLMSCOPE_DB"
"""The environment variable that names the store instead of :data:`DEFAULT_DB`."""

PURE_PYTHON_ENV = "VLMSCOPE_PURE_PYTHON"
"""Set to 1 to run the pure-Python (and SQL) reference code even where the native extensions
are built: the span converter, the OTLP decoder and the pipeline-row assembler's twin."""

ENDPOINT_ENV = "VLMSCOPE_ENDPOINT"
"""The environment variable that sends spans to an OTLP/HTTP endpoint instead of the store."""

DEFAULT_BASE64_MAX_LENGTH = 32_000
"""Longest base64 image recorded, in characters."""

DEFAULT_SCHEDULE_DELAY_MS = 500
"""How often, in milliseconds, the batch processor hands queued spans to the exporter."""

DEFAULT_MAX_QUEUE_SIZE = 65_536
"""Spans queued before the batch processor starts dropping the oldest (each drop is counted)."""

DEFAULT_MAX_EXPORT_BATCH_SIZE = 4_096
"""Spans per export call (one Arrow insert per table)."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(*names: str) -> bool | None:
    for name in names:
        raw = os.environ.get(name)
        if raw is None:
            continue
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no, on/off")
    return None


def default_db() -> str:
    """The store every command and ``configure()`` use unless told: ``$VLMSCOPE_DB``, else
    :data:`DEFAULT_DB`."""
    return os.environ.get(DB_ENV, DEFAULT_DB)


class Settings(BaseModel):
    """What vlmscope records. Build with :meth:`from_env` to honour environment variables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    capture_images: bool = False
    capture_prompts: bool = False
    capture_embeddings: bool = False
    hide_inputs: bool = False
    hide_outputs: bool = False
    base64_max_length: int = Field(default=DEFAULT_BASE64_MAX_LENGTH, ge=0)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from the environment, with explicit non-None ``overrides`` on top."""
        values: dict[str, Any] = {}
        for field, names in {
            "capture_images": ("VLMSCOPE_CAPTURE_IMAGES",),
            "capture_prompts": ("VLMSCOPE_CAPTURE_PROMPTS",),
            "capture_embeddings": ("VLMSCOPE_CAPTURE_EMBEDDINGS",),
            "hide_inputs": ("VLMSCOPE_HIDE_INPUTS", "OPENINFERENCE_HIDE_INPUTS"),
            "hide_outputs": ("VLMSCOPE_HIDE_OUTPUTS", "OPENINFERENCE_HIDE_OUTPUTS"),
        }.items():
            value = _env_bool(*names)
            if value is not None:
                values[field] = value
        raw_cap = os.environ.get("VLMSCOPE_BASE64_MAX_LENGTH")
        if raw_cap is not None:
            try:
                values["base64_max_length"] = int(raw_cap)
            except ValueError as error:
                raise ValueError(
                    f"VLMSCOPE_BASE64_MAX_LENGTH={raw_cap!r} is not a whole number of characters"
                ) from error
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
