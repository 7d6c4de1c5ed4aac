"""Attribute names and values that vlmscope puts on spans: every one, once.

Three families live here:

* the OpenTelemetry GenAI semantic conventions (``gen_ai.*``), which any OTel backend reads;
* the OpenInference conventions that Arize Phoenix and FutureAGI's traceAI read
  (``openinference.span.kind``, ``llm.*``, ``input.value``, ``embedding.*``, ...);
* vlmscope's own namespaces: ``vision.encoder.*`` (what the image encoder produced),
  ``vision.image.*`` (the image itself) and ``vlmscope.*`` (pipeline rows, batches and runs).

Batches. One encoder forward or one ``generate`` call can serve N pipeline rows. Such a span
carries :data:`VLMSCOPE_ROW_IDS` (N row ids) and every per-image value as an array aligned with
it. Top-k labels and scores are flattened row-major: image ``i`` owns elements
``i*k .. (i+1)*k - 1`` where ``k`` is :data:`VISION_ENCODER_TOP_K`. A single-image span is
simply the case N = 1, so it reads naturally in Phoenix or Jaeger.

Nobody types an attribute string twice: import the constant.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# OpenTelemetry GenAI semantic conventions
# --------------------------------------------------------------------------------------------

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
"""The GenAI operation: ``chat``, ``text_completion``, ``generate_content`` or ``embeddings``."""

GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
"""Who serves the model: ``openai``, ``anthropic``, ``huggingface``, ``local``, ..."""

GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
"""The model name the request asked for."""

GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
"""The model name that answered, when the provider reports it."""

GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
"""Upper bound on generated tokens requested (transformers' ``max_new_tokens``)."""

GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
"""Sampling temperature requested."""

GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
"""Nucleus-sampling probability mass requested."""

GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
"""Top-k sampling cut-off requested."""

GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
"""Sampling seed requested, when given."""

GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
"""Tokens in the prompt (summed over the batch for a batched call)."""

GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
"""Tokens generated (summed over the batch for a batched call)."""

GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
"""Why generation stopped, one entry per choice (``stop``, ``length``, ...)."""

GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
"""Opt-in: the prompt as a JSON array of GenAI messages (captured only when prompts are)."""

GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
"""Opt-in: the answer as a JSON array of GenAI messages (captured only when prompts are)."""

GEN_AI_SYSTEM = "gen_ai.system"
"""Deprecated name of :data:`GEN_AI_PROVIDER_NAME`, still emitted by popular instrumentors."""

GEN_AI_PROMPT = "gen_ai.prompt"
"""Deprecated prefix of indexed prompt messages: ``gen_ai.prompt.N.role`` / ``.content``."""

GEN_AI_COMPLETION = "gen_ai.completion"
"""Deprecated prefix of indexed completions: ``gen_ai.completion.N.role`` / ``.content``."""

GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
"""Deprecated name of :data:`GEN_AI_USAGE_INPUT_TOKENS`."""

GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
"""Deprecated name of :data:`GEN_AI_USAGE_OUTPUT_TOKENS`."""

GEN_AI_OPERATION_GENERATE_CONTENT = "generate_content"
"""GenAI operation name of a multimodal content generation call."""

GEN_AI_OPERATION_CHAT = "chat"
"""Value of :data:`GEN_AI_OPERATION_NAME` for chat-style calls."""

GEN_AI_OPERATION_TEXT_COMPLETION = "text_completion"
"""Value of :data:`GEN_AI_OPERATION_NAME` for ``generate``-style completion calls."""

# --------------------------------------------------------------------------------------------
# OpenInference (Phoenix, traceAI)
# --------------------------------------------------------------------------------------------

OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
"""OpenInference span kind; one of the ``SPAN_KIND_*`` values below."""

SPAN_KIND_CHAIN = "CHAIN"
"""OpenInference kind of a pipeline row (and batch) span."""

SPAN_KIND_EMBEDDING = "EMBEDDING"
"""OpenInference kind of an encoder span."""

SPAN_KIND_LLM = "LLM"
"""OpenInference kind of a language-head span."""

SPAN_KIND_EVALUATOR = "EVALUATOR"
"""OpenInference kind of an evaluation span."""

LLM_MODEL_NAME = "llm.model_name"
"""OpenInference: the language model's name."""

LLM_PROVIDER = "llm.provider"
"""OpenInference: the language model's provider."""

LLM_SYSTEM = "llm.system"
"""OpenInference: the AI product family (``openai``, ``anthropic``, ...)."""

LLM_INPUT_MESSAGES = "llm.input_messages"
"""OpenInference prefix of indexed input messages: ``llm.input_messages.N.message.role``."""

LLM_OUTPUT_MESSAGES = "llm.output_messages"
"""OpenInference prefix of indexed output messages: ``llm.output_messages.N.message.content``."""

MESSAGE_ROLE = "message.role"
"""OpenInference: a message's role, under an indexed messages prefix."""

MESSAGE_CONTENT = "message.content"
"""OpenInference: a message's text, under an indexed messages prefix."""

MESSAGE_CONTENTS = "message.contents"
"""OpenInference: a multimodal message's parts, ``message.contents.M.message_content.*``."""

MESSAGE_CONTENT_TEXT = "message_content.text"
"""OpenInference: the text of one part of a multimodal message."""

LLM_INVOCATION_PARAMETERS = "llm.invocation_parameters"
"""OpenInference: the generation parameters as a JSON object string."""

LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
"""OpenInference: prompt tokens."""

LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
"""OpenInference: completion tokens."""

LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
"""OpenInference: prompt plus completion tokens."""

INPUT_VALUE = "input.value"
"""OpenInference: the span's input (the instruction, for an LLM span)."""

INPUT_MIME_TYPE = "input.mime_type"
"""OpenInference: MIME type of :data:`INPUT_VALUE` (``text/plain`` or ``application/json``)."""

OUTPUT_VALUE = "output.value"
"""OpenInference: the span's output (the answer, for an LLM span)."""

OUTPUT_MIME_TYPE = "output.mime_type"
"""OpenInference: MIME type of :data:`OUTPUT_VALUE`."""

EMBEDDING_MODEL_NAME = "embedding.model_name"
"""OpenInference: the encoder's name on an EMBEDDING span."""

EMBEDDING_EMBEDDINGS_PREFIX = "embedding.embeddings"
"""OpenInference: prefix of the per-item embedding attributes (see :func:`embedding_vector_key`)."""

TAG_TAGS = "tag.tags"
"""OpenInference: free-form tags of a span (list of strings)."""

METADATA = "metadata"
"""OpenInference: a JSON object string of user metadata."""

MIME_TEXT = "text/plain"
"""MIME type for plain-text inputs and outputs."""

MIME_JSON = "application/json"
"""MIME type for JSON inputs and outputs."""


def embedding_vector_key(index: int) -> str:
    """The OpenInference key of embedding ``index`` on an EMBEDDING span.

    >>> embedding_vector_key(0)
    'embedding.embeddings.0.embedding.vector'
    """
    return f"{EMBEDDING_EMBEDDINGS_PREFIX}.{index}.embedding.vector"


EMBEDDING_VECTOR_SUFFIX = ".embedding.vector"
"""Suffix that marks an embedding vector key (used to route vectors to the embeddings table)."""

# --------------------------------------------------------------------------------------------
# vision.encoder.*: what the image encoder produced
# --------------------------------------------------------------------------------------------

VISION_ENCODER_ARCHITECTURE = "vision.encoder.architecture"
"""Encoder architecture, e.g. ``resnet18`` or ``ResNetForImageClassification``."""

VISION_ENCODER_DEPTH = "vision.encoder.depth"
"""Encoder depth in layers (18, 34, 50, 101, 152 for ResNets; blocks for a vision
transformer), when known."""

VISION_ENCODER_CHECKPOINT_SHA256 = "vision.encoder.checkpoint.sha256"
"""SHA-256 (hex) of the encoder's weights: parameter and buffer names, dtypes, shapes, bytes."""

VISION_ENCODER_LAYER = "vision.encoder.layer"
"""Qualified name of the hooked feature layer (e.g. ``avgpool``)."""

VISION_ENCODER_CLASSIFIER = "vision.encoder.classifier"
"""Qualified name of the hooked classifier layer (e.g. ``fc``), when there is one."""

VISION_ENCODER_BATCH_SIZE = "vision.encoder.batch_size"
"""Images in this forward call (N)."""

VISION_ENCODER_EMBEDDING_DIM = "vision.encoder.embedding.dim"
"""Dimension of the pooled feature vector (512 for ResNet-18/34, 2048 for ResNet-50+)."""

VISION_ENCODER_EMBEDDING_L2_NORM = "vision.encoder.embedding.l2_norm"
"""Per image: L2 norm of the feature vector (array of N floats)."""

VISION_ENCODER_EMBEDDING_MEAN = "vision.encoder.embedding.mean"
"""Per image: mean of the feature vector's components (array of N floats)."""

VISION_ENCODER_EMBEDDING_STD = "vision.encoder.embedding.std"
"""Per image: standard deviation of the feature vector's components (array of N floats)."""

VISION_ENCODER_TOP_K = "vision.encoder.top_k.k"
"""k, the number of labels kept per image."""

VISION_ENCODER_TOP_K_LABELS = "vision.encoder.top_k.labels"
"""Top-k class labels, best first, flattened over the batch (N*k strings)."""

VISION_ENCODER_TOP_K_SCORES = "vision.encoder.top_k.scores"
"""Top-k softmax probabilities in [0, 1], aligned with the labels (N*k floats)."""

VISION_ENCODER_TOP_K_CLASS_IDS = "vision.encoder.top_k.class_ids"
"""Top-k class indices into the classifier's output, aligned with the labels (N*k ints)."""

VISION_ENCODER_ENTROPY = "vision.encoder.entropy"
"""Per image: entropy of the softmax distribution over all classes, in nats (N floats)."""

VISION_ENCODER_TOP1_LABEL = "vision.encoder.top1.label"
"""Per image: the top-1 label (N strings); also on the LLM span of the same rows."""

VISION_ENCODER_TOP1_SCORE = "vision.encoder.top1.score"
"""Per image: the top-1 probability (N floats); also on the LLM span of the same rows."""

VISION_ENCODER_MULTI_LABEL = "vision.encoder.multi_label"
"""True when the encoder's top-k scores are independent sigmoid scores (a multi-label head),
false or absent when they are one softmax distribution."""

VISION_ENCODER_ZERO_SHOT = "vision.encoder.zero_shot"
"""True when the top-k are a CLIP-style zero-shot reading: softmax over the labels of the
logit scale times the cosine similarity of the image embedding with each label's text
embedding; for SigLIP (a logit bias given), each label's own sigmoid of that plus the bias,
and ``vision.encoder.multi_label`` is true."""

VISION_ENCODER_SPAN_ID = "vision.encoder.span_id"
"""On an LLM span: hex span id of the encoder span whose reading it used (a link exists too)."""

# --------------------------------------------------------------------------------------------
# vision.image.*: the image
# --------------------------------------------------------------------------------------------

VISION_IMAGE_SHA256 = "vision.image.sha256"
"""SHA-256 (hex) of the image content: the pixel tensor's bytes, or the file bytes given."""

VISION_IMAGE_WIDTH = "vision.image.width"
"""Image width in pixels (N ints on an encoder span)."""

VISION_IMAGE_HEIGHT = "vision.image.height"
"""Image height in pixels (N ints on an encoder span)."""

VISION_IMAGE_CHANNELS = "vision.image.channels"
"""Colour channels of the image tensor."""

VISION_IMAGE_URI = "vision.image.uri"
"""Where the image lives (path or URL), when the user says so."""

VISION_IMAGE_BASE64 = "vision.image.base64"
"""Opt-in: the image as base64 PNG, capped by the settings' ``base64_max_length``."""

# --------------------------------------------------------------------------------------------
# vlmscope.*: pipeline rows, batches, runs
# --------------------------------------------------------------------------------------------

VLMSCOPE_SPAN_ROLE = "vlmscope.span.role"
"""What a span is in the pipeline: one of the ``ROLE_*`` values below."""

ROLE_ROW = "row"
"""Span role of a pipeline row's span."""

ROLE_BATCH = "batch"
"""Span role of the parent span of a :func:`vlmscope.trace_batch`."""

ROLE_ENCODER = "encoder"
"""Span role of an encoder forward call."""

ROLE_LLM = "llm"
"""Span role of a language-head call."""

VLMSCOPE_ROW_ID = "vlmscope.row.id"
"""The pipeline row's id, on its row span."""

VLMSCOPE_ROW_IDS = "vlmscope.row.ids"
"""On encoder and LLM spans: the row ids served, aligned with every per-image array."""

VLMSCOPE_COHORT = "vlmscope.cohort"
"""The cohort (data slice) a row belongs to."""

VLMSCOPE_RUN_NAME = "vlmscope.run.name"
"""The named run a row belongs to (what ``vlmscope diff`` compares)."""

VLMSCOPE_ROW_EXPECTED = "vlmscope.row.expected"
"""The expected answer or label of a row, when known at trace time."""

VLMSCOPE_ROW_OBJECTS = "vlmscope.row.objects"
"""The objects really in the image (list of strings), when known at trace time."""

VLMSCOPE_ROW_INSTRUCTION = "vlmscope.row.instruction"
"""The instruction given for the row, when known at trace time."""

VLMSCOPE_INSTRUCTION_KIND = "vlmscope.instruction.kind"
"""On a row span (or else its LLM span): what the instruction asks for, one of
:data:`INSTRUCTION_KINDS`; absent when not given."""

INSTRUCTION_KINDS = ("name", "list", "count", "probe", "describe")
"""The values of :data:`VLMSCOPE_INSTRUCTION_KIND`: name one object, list the objects, count
them, answer a yes/no probe, describe the image."""

VLMSCOPE_BATCH_SIZE = "vlmscope.batch.size"
"""On the row, encoder and LLM spans of a :func:`vlmscope.trace_batch`: the rows the batch
serves together (absent outside a batch); a row's share of a batched call's time is its
duration divided by this."""

VLMSCOPE_LLM_INSTRUCTIONS = "vlmscope.llm.instructions"
"""On a batched LLM span: one instruction per row (N strings)."""

VLMSCOPE_LLM_OUTPUTS = "vlmscope.llm.outputs"
"""On a batched LLM span: one decoded output per row (N strings)."""

VLMSCOPE_LLM_INPUT_TOKENS = "vlmscope.llm.input_tokens"
"""On a batched LLM span: prompt tokens per row (N ints)."""

VLMSCOPE_LLM_OUTPUT_TOKENS = "vlmscope.llm.output_tokens"
"""On a batched LLM span: generated tokens per row (N ints)."""

VLMSCOPE_INSTRUMENTATION_ERROR = "vlmscope.instrumentation.error"
"""Set when vlmscope itself failed to record something on this span (the pipeline went on)."""

ROW_SPAN_NAME = "vlmscope.row"
"""Name of a pipeline row's span."""

BATCH_SPAN_NAME = "vlmscope.batch"
"""Name of a batch's parent span."""

ENCODER_SPAN_NAME = "vision.encoder"
"""Name of an encoder forward span."""

LLM_SPAN_NAME = "llm.generate"
"""Default name of a language-head span."""

# --------------------------------------------------------------------------------------------
# vlmscope.training.*: training runs, epochs and training-side checks
# --------------------------------------------------------------------------------------------

ROLE_TRAINING_RUN = "training.run"
"""Span role of a training run's span (the parent of its epochs and checks)."""

ROLE_TRAINING_EPOCH = "training.epoch"
"""Span role of one training epoch's span."""

ROLE_TRAINING_CHECK = "training.check"
"""Span role of a training-side check's EVALUATOR span (overfitting, residual paths, ...)."""

TRAINING_RUN_SPAN_NAME = "vlmscope.training.run"
"""Name of a training run's span."""

TRAINING_EPOCH_SPAN_NAME = "vlmscope.training.epoch"
"""Name of a training epoch's span."""

TRAINING_CHECK_SPAN_NAME = "vlmscope.training.check"
"""Name of a training-side check's span."""

VLMSCOPE_TRAINING_RUN_NAME = "vlmscope.training.run.name"
"""The training run's name, on its run, epoch and check spans."""

VLMSCOPE_TRAINING_EPOCH = "vlmscope.training.epoch"
"""Epoch index, counted from 0."""

VLMSCOPE_TRAINING_STEPS = "vlmscope.training.steps"
"""Optimisation steps recorded in the epoch."""

VLMSCOPE_TRAINING_TRAIN_LOSS = "vlmscope.training.train.loss"
"""Mean training loss of the epoch over its finite steps, weighted by batch size (NaN when
no step was finite)."""

VLMSCOPE_TRAINING_TRAIN_ACCURACY = "vlmscope.training.train.accuracy"
"""Training accuracy of the epoch, in [0, 1]."""

VLMSCOPE_TRAINING_VAL_LOSS = "vlmscope.training.val.loss"
"""Validation loss at the end of the epoch."""

VLMSCOPE_TRAINING_VAL_ACCURACY = "vlmscope.training.val.accuracy"
"""Validation accuracy at the end of the epoch, in [0, 1]."""

VLMSCOPE_TRAINING_LEARNING_RATE = "vlmscope.training.learning_rate"
"""Learning rate of the optimizer's first parameter group at the end of the epoch."""

VLMSCOPE_TRAINING_NONFINITE_STEPS = "vlmscope.training.loss.nonfinite_steps"
"""Steps of the epoch whose loss was NaN or infinite (they are left out of the mean)."""

VLMSCOPE_TRAINING_GRAD_NORM_STAGES = "vlmscope.training.grad_norm.stages"
"""Names of the model's stages whose gradient norms are recorded (list of strings)."""

VLMSCOPE_TRAINING_GRAD_NORM_VALUES = "vlmscope.training.grad_norm.values"
"""Mean L2 norm of each stage's gradient over the epoch's steps, aligned with
:data:`VLMSCOPE_TRAINING_GRAD_NORM_STAGES`."""

VLMSCOPE_TRAINING_CHECKPOINT_SHA256 = "vlmscope.training.checkpoint.sha256"
"""SHA-256 of the weights an epoch produced (or a check examined); joins
:data:`VISION_ENCODER_CHECKPOINT_SHA256` on inference encoder spans."""

VLMSCOPE_TRAINING_CHECK_NAME = "vlmscope.training.check.name"
"""The check's name: ``overfitting``, ``instability``, ``gradient_flow``, ``residual_paths``
or ``leakage``."""

VLMSCOPE_TRAINING_CHECK_PASSED = "vlmscope.training.check.passed"
"""Whether the check found nothing wrong."""

VLMSCOPE_TRAINING_CHECK_LABEL = "vlmscope.training.check.label"
"""The check's verdict as a word (``ok``, ``overfitting``, ``broken``, ``leaked``, ...)."""

VLMSCOPE_TRAINING_CHECK_SCORE = "vlmscope.training.check.score"
"""The number the check judged (its report's docstring gives the unit)."""

VLMSCOPE_TRAINING_CHECK_EXPLANATION = "vlmscope.training.check.explanation"
"""Why the check decided as it did, with the values and thresholds involved."""

VLMSCOPE_TRAINING_CHECK_ANNOTATOR_KIND = "vlmscope.training.check.annotator_kind"
"""Who judged, in OpenInference's terms: always ``CODE`` for the training checks."""

# --------------------------------------------------------------------------------------------
# Evaluations: OpenInference annotations on EVALUATOR spans
# --------------------------------------------------------------------------------------------

ANNOTATION_NAME = "annotation.name"
"""OpenInference annotation: the evaluator's name."""

ANNOTATION_SCORE = "annotation.score"
"""OpenInference annotation: the score (float)."""

ANNOTATION_LABEL = "annotation.label"
"""OpenInference annotation: the label (string)."""

ANNOTATION_EXPLANATION = "annotation.explanation"
"""OpenInference annotation: why the evaluator decided so (string)."""

ANNOTATION_ANNOTATOR_KIND = "annotation.annotator_kind"
"""OpenInference annotation: who judged, one of :data:`ANNOTATOR_KINDS`."""

ANNOTATION_METADATA = "annotation.metadata"
"""OpenInference annotation: metadata as a JSON object string."""

LEGACY_ANNOTATION_SCORE = "annotation.result.score"
"""Read only: the score as vlmscope wrote it before it took OpenInference's
:data:`ANNOTATION_SCORE` (OTLP files exported then still import)."""

LEGACY_ANNOTATION_LABEL = "annotation.result.label"
"""Read only: the label as vlmscope wrote it before :data:`ANNOTATION_LABEL`."""

LEGACY_ANNOTATION_EXPLANATION = "annotation.result.explanation"
"""Read only: the explanation as vlmscope wrote it before :data:`ANNOTATION_EXPLANATION`."""

ANNOTATOR_KIND_CODE = "CODE"
"""Annotator kind of a rule written in code (every built-in evaluator, every training check)."""

ANNOTATOR_KIND_LLM = "LLM"
"""Annotator kind of a judgement made by a language model."""

ANNOTATOR_KIND_HUMAN = "HUMAN"
"""Annotator kind of a person's judgement."""

ANNOTATOR_KINDS = (ANNOTATOR_KIND_CODE, ANNOTATOR_KIND_LLM, ANNOTATOR_KIND_HUMAN)
"""The values of :data:`ANNOTATION_ANNOTATOR_KIND`, as OpenInference names them."""

ROLE_EVALUATION = "evaluation"
"""Span role of a span that carries one evaluation result."""

EVALUATION_SPAN_NAME = "vlmscope.evaluation"
"""Name of an evaluation span."""

VLMSCOPE_EVALUATION_RUN_ID = "vlmscope.evaluation.run_id"
"""The evaluation run the result belongs to."""

VLMSCOPE_EVALUATION_PASSED = "vlmscope.evaluation.passed"
"""Whether the judged row passed (bool)."""

VLMSCOPE_EVALUATION_TRACE_ID = "vlmscope.evaluation.trace_id"
"""The judged trace (hex); the judged span is the evaluation span's parent."""

VLMSCOPE_EVALUATION_ROW_ID = "vlmscope.evaluation.row_id"
"""The judged pipeline row's id."""
