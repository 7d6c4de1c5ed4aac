"""``instrument_generator``: an LLM span around a transformers model's ``generate``.

The model's ``generate`` is replaced by a wrapper on that one instance (the class is left
alone); ``uninstrument()`` deletes the wrapper so the class method shows through again.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from vlmscope import conventions as cv
from vlmscope.encoder_families import is_hf_pipeline
from vlmscope.llm import llm_span
from vlmscope.rows import current_rows, warn_once

_GENERATION_PARAMETERS = (
    "max_new_tokens", "max_length", "min_new_tokens", "do_sample", "temperature", "top_p",
    "top_k", "num_beams", "repetition_penalty", "no_repeat_ngram_size", "seed",
)


class GeneratorInstrumentation:
    """The wrapper on one model's ``generate``; :meth:`uninstrument` removes it."""

    def __init__(self, model: Any, tokenizer: Any, name: str | None, provider: str) -> None:
        if not callable(getattr(model, "generate", None)):
            raise TypeError(
                f"instrument_generator needs a model with a generate() method, got "
                f"{type(model).__name__}"
            )
        self.model = model
        self.tokenizer = tokenizer
        config = getattr(model, "config", None)
        self.name = name or getattr(config, "_name_or_path", None) or getattr(
            config, "model_type", None) or type(model).__name__
        self.provider = provider
        self._had_instance_attr = "generate" in vars(model)
        self._original = model.generate
        try:
            self._positional = [
                p.name for p in inspect.signature(self._original).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            self._positional = ["inputs"]
        @functools.wraps(self._original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self._generate(*args, **kwargs)

        wrapper._vlmscope_instrumentation = self  # type: ignore[attr-defined]
        model.generate = wrapper
        self._wrapper = wrapper

    def _parameters(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        config = getattr(self.model, "generation_config", None)
        override = kwargs.get("generation_config")
        for key in _GENERATION_PARAMETERS:
            if key in kwargs:
                value = kwargs[key]
            elif override is not None and getattr(override, key, None) is not None:
                value = getattr(override, key)
            else:
                value = getattr(config, key, None) if config is not None else None
            if isinstance(value, bool | int | float | str):
                params[key] = value
        return params

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name: the positional ones named by ``generate``'s own
        signature (transformers' takes ``inputs``; BLIP's ``pixel_values``, then
        ``input_ids``)."""
        return {**dict(zip(self._positional, args, strict=False)), **kwargs}

    @staticmethod
    def _token_ids(arguments: dict[str, Any]) -> Any:
        """The prompt's token ids (an N x L integer tensor), or None: ``input_ids``, else
        ``inputs`` when it holds ids (a vision encoder-decoder's ``inputs`` are pixels)."""
        for key in ("input_ids", "inputs"):
            value = arguments.get(key)
            if getattr(value, "ndim", None) == 2 and not value.is_floating_point():
                return value
        return None

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        try:
            arguments = self._arguments(args, kwargs)
            input_ids = self._token_ids(arguments)
            # A head conditioned on image features is often called with inputs_embeds only;
            # an image-to-text model (BLIP) with its pixels only.
            batch = next((v for v in (input_ids, arguments.get("inputs_embeds"),
                                      arguments.get("pixel_values"), arguments.get("inputs"))
                          if hasattr(v, "shape")), None)
            n = int(batch.shape[0]) if batch is not None else 1
            instructions = self._instructions(n)
            parameters = self._parameters(kwargs)
            span_cm = llm_span(
                self.name, self.provider, instructions,
                operation=cv.GEN_AI_OPERATION_TEXT_COMPLETION, parameters=parameters,
                name=f"{cv.GEN_AI_OPERATION_TEXT_COMPLETION} {self.name}",
            )
            llm = span_cm.__enter__()
        except Exception as error:
            warn_once("generate-pre", "vlmscope could not open the LLM span: %s", error)
            return self._original(*args, **kwargs)
        try:
            output = self._original(*args, **kwargs)
        except BaseException as error:
            span_cm.__exit__(type(error), error, error.__traceback__)
            raise
        try:
            self._record(llm, input_ids, arguments.get("inputs_embeds"),
                         arguments.get("attention_mask"), output)
        except Exception as error:
            warn_once("generate-post", "vlmscope could not record the generated output: %s",
                      error)
            llm.span.set_attribute(cv.VLMSCOPE_INSTRUMENTATION_ERROR, str(error))
        finally:
            span_cm.__exit__(None, None, None)
        return output

    def _instructions(self, n: int) -> str | list[str] | None:
        rows = current_rows()
        if rows is None or not any(rows.instructions):
            return None
        if len(rows.instructions) == n:
            values = [i or "" for i in rows.instructions]
            return values[0] if n == 1 else values
        if len(rows.instructions) == 1:
            return rows.instructions[0]
        return None

    def _record(self, llm: Any, input_ids: Any, inputs_embeds: Any, attention_mask: Any,
                output: Any) -> None:
        sequences = getattr(output, "sequences", output)
        if not hasattr(sequences, "shape"):
            return
        encoder_decoder = bool(getattr(getattr(self.model, "config", None),
                                       "is_encoder_decoder", False))
        prompt = input_ids if hasattr(input_ids, "shape") else inputs_embeds
        # A decoder-only model returns the prompt, then the new tokens (with only
        # inputs_embeds, just the new tokens); a model that returns sequences of its own
        # (BLIP drops the prompt's last token and gives its caption with the prompt's text)
        # is decoded whole, as its users read it.
        prompt_len = 0
        if hasattr(input_ids, "shape"):
            width = int(input_ids.shape[1])
            if sequences.shape[1] >= width and bool(
                    (sequences[:, :width] == input_ids.to(sequences.device)).all()):
                prompt_len = width
        if attention_mask is not None:
            input_tokens = [int(x) for x in attention_mask.sum(dim=1).tolist()]
        elif hasattr(prompt, "shape"):
            input_tokens = [int(prompt.shape[1])] * int(prompt.shape[0])
        else:
            input_tokens = None
        generated = sequences if encoder_decoder else sequences[:, prompt_len:]
        generation = getattr(self.model, "generation_config", None)
        pad_id = getattr(generation, "pad_token_id", None)
        counted = (generated != pad_id if pad_id is not None
                   else generated.new_ones(generated.shape).bool())
        # An encoder-decoder's sequences (and a captioner's, BLIP's) start with the token
        # generation starts from, which the model did not generate.
        start = getattr(generation, "decoder_start_token_id" if encoder_decoder
                        else "bos_token_id", None)
        if prompt_len == 0 and isinstance(start, int) and generated.shape[1] > 0 \
                and (encoder_decoder or not hasattr(inputs_embeds, "shape")):
            counted[:, 0] &= generated[:, 0] != start
        output_tokens = [int(x) for x in counted.sum(dim=1).tolist()]
        if self.tokenizer is not None:
            texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        else:
            texts = None
        single = int(generated.shape[0]) == 1
        llm.set_output(
            (texts[0] if single else texts) if texts is not None else None,
            input_tokens=(input_tokens[0] if single else input_tokens)
            if input_tokens is not None else None,
            output_tokens=output_tokens[0] if single else output_tokens,
        )

    def uninstrument(self) -> None:
        """Restore the model's own ``generate``; safe to call twice."""
        if getattr(self.model, "generate", None) is self._wrapper:
            if self._had_instance_attr:
                self.model.generate = self._original
            else:
                del self.model.generate


def instrument_generator(
    model: Any, tokenizer: Any = None, *, name: str | None = None, provider: str = "huggingface"
) -> GeneratorInstrumentation:
    """Trace every ``model.generate(...)`` call of a transformers model as an LLM span.

    The span has the GenAI and OpenInference attributes, the generation parameters, prompt
    and generated token counts per row, and, with a ``tokenizer`` (or a processor: anything
    with ``batch_decode``), the decoded output of each row; without one there is no answer
    text to judge, and a warning says so once. Inside ``trace_row``/``trace_batch`` it
    carries the encoder's reading of the same rows and links to the encoder span.
    A transformers ``Pipeline`` (``pipeline("image-text-to-text", ...)``) is instrumented
    through its ``model``, with its processor or tokenizer unless one is given.
    Instrumenting twice replaces the first wrapper.
    """
    if is_hf_pipeline(model):
        tokenizer = tokenizer or getattr(model, "processor", None) or getattr(
            model, "tokenizer", None)
        model = model.model
    if tokenizer is None:
        warn_once("generator-no-tokenizer",
                  "instrument_generator(%s) has no tokenizer: each answer is recorded as its "
                  "token count only, with no text to judge; pass the tokenizer (or the "
                  "processor) as the second argument", type(model).__name__)
    existing = getattr(model, "generate", None)
    previous = getattr(existing, "_vlmscope_instrumentation", None)
    if previous is not None:
        previous.uninstrument()
    return GeneratorInstrumentation(model, tokenizer, name, provider)
