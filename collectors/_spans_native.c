/* Convert finished OpenTelemetry spans (ReadableSpan) into the columns of the store's tables,
 * span by span, in C: the native twin of vlmscope.collectors.convert._spans_to_batch_python
 * and of normalize.RecordBuilder.add_span, which are the reference this mirrors value for
 * value (tests/store/test_spans_native.py compares the two on random spans).
 *
 * setup(names) is called once by convert.py with every attribute key, role value, schema
 * width and helper this code needs (orjson.dumps and its option, the kind and status name
 * maps, resource_info(resource) -> (resource JSON, service name), each table's column types
 * and coerce(value, type code)), so no attribute name is typed here.
 *
 * SpanColumns() accumulates spans:
 *   add(span)       converts one span; on error nothing of it is kept and the error is raised
 *   extend(spans, busy=None)
 *                   add() for each, stopping at the first error (raised); while
 *                   busy.writing is true (the store's writer thread is committing and
 *                   needs the GIL between its DuckDB calls), the GIL is handed over every
 *                   YIELD_EVERY spans
 *   len(acc)        spans accumulated
 *   take()          -> (span columns, {table: columns}) and starts afresh; a table's entry is
 *                   there only when it has rows; columns in schema order: those of simple
 *                   types (setup()'s types: string, timestamp, int64, int32, float64) as
 *                   Arrow buffers (rows, nulls, validity, offsets, data), the others as
 *                   lists, where each embedding vector is the bytes of its float32 values.
 *                   A value a buffer column cannot copy as it is goes to setup()'s coerce
 *                   (pyarrow's own conversion), so values are taken or refused as pyarrow
 *                   takes or refuses them.
 * It holds no reference to the spans it converted, so they are freed as soon as the SDK lets
 * them go (a queue of live spans is what costs a batch processor its garbage collections).
 * It is not thread-safe: the caller serialises add/extend/take.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h> /* clock_gettime */

enum { T_SPANS, T_ROWS, T_ENCODERS, T_LLMS, T_EMBEDDINGS, T_EVALUATIONS, N_TABLES };
static const Py_ssize_t WIDTH[N_TABLES] = {22, 15, 20, 17, 8, 11};
static const char *TABLE_NAMES[N_TABLES] = {
    "spans", "row_records", "encoder_records", "llm_records", "embeddings", "evaluations"};
#define MAX_WIDTH 22
#define YIELD_EVERY 64 /* spans extend() converts between hand-overs of the GIL */

/* Everything setup() provides, by name. */
static PyObject *DUMPS, *DUMPS_OPTION, *DUMPS_DEFAULT, *KIND_NAMES, *STATUS_NAMES, *RESOURCE_INFO;
static PyObject *COERCE;
/* The SDK's classes whose private fields are read directly (their properties return them
 * unchanged); any other class is read through its public properties. */
static PyObject *READABLE_SPAN, *SPAN_CONTEXT, *STATUS, *SCOPE, *BOUNDED_ATTRIBUTES,
    *BOUNDED_LIST, *TRACE_STATE;
static PyObject *K_ROLE, *K_SPAN_KIND, *V_EMBEDDING, *VECTOR_SUFFIX, *VECTOR_PREFIX;
static PyObject *ROLE_TRAINING_CHECK, *ROLE_EVALUATION, *ROLE_ROW, *ROLE_ENCODER, *ROLE_LLM;
static PyObject *K_ROW_ID, *K_RUN_NAME, *K_COHORT, *K_EXPECTED, *K_OBJECTS, *K_ROW_INSTRUCTION,
    *K_IMAGE_SHA256;
static PyObject *K_ROW_IDS, *K_BATCH_SIZE, *K_TOP_K, *K_TOP_K_LABELS, *K_TOP_K_SCORES,
    *K_TOP_K_CLASS_IDS, *K_ENTROPY, *K_L2_NORM, *K_ARCHITECTURE, *K_EMBEDDING_MODEL,
    *K_CHECKPOINT, *K_LAYER, *K_EMBEDDING_DIM, *K_MULTI_LABEL, *K_ROWS_IN_BATCH,
    *K_INSTRUCTION_KIND;
static PyObject *K_LLM_OUTPUTS, *K_LLM_INSTRUCTIONS, *K_LLM_INPUT_TOKENS, *K_LLM_OUTPUT_TOKENS,
    *K_LLM_MODEL_NAME, *K_REQUEST_MODEL, *K_PROVIDER_NAME, *K_LLM_PROVIDER, *K_ENCODER_SPAN_ID,
    *K_INPUT_VALUE, *K_OUTPUT_VALUE, *K_USAGE_INPUT_TOKENS, *K_USAGE_OUTPUT_TOKENS,
    *K_RESPONSE_MODEL, *K_RESPONSE_MODEL_ELSE, *FOREIGN_LLM_ROWS;
static PyObject *K_CHECK_NAME, *K_CHECK_SCORE, *K_CHECK_PASSED, *K_CHECK_LABEL,
    *K_CHECK_EXPLANATION, *K_METADATA, *K_CHECK_ANNOTATOR, *TRAINING_RUN_PREFIX;
static PyObject *K_EVAL_RUN_ID, *K_ANNOTATION_NAME, *K_ANNOTATION_SCORE, *K_EVAL_PASSED,
    *K_EVAL_ROW_ID, *K_EVAL_TRACE_ID, *K_ANNOTATION_LABEL, *K_ANNOTATION_EXPLANATION,
    *K_ANNOTATION_METADATA, *K_ANNOTATION_ANNOTATOR, *ANNOTATOR_CODE,
    *K_LEGACY_ANNOTATION_SCORE, *K_LEGACY_ANNOTATION_LABEL, *K_LEGACY_ANNOTATION_EXPLANATION;

static struct {
    const char *name;
    PyObject **slot;
} NAMES[] = {
    {"dumps", &DUMPS}, {"dumps_option", &DUMPS_OPTION}, {"dumps_default", &DUMPS_DEFAULT}, {"kind_names", &KIND_NAMES},
    {"status_names", &STATUS_NAMES}, {"resource_info", &RESOURCE_INFO}, {"coerce", &COERCE},
    {"readable_span", &READABLE_SPAN}, {"span_context", &SPAN_CONTEXT}, {"status", &STATUS},
    {"scope", &SCOPE}, {"bounded_attributes", &BOUNDED_ATTRIBUTES},
    {"bounded_list", &BOUNDED_LIST}, {"trace_state", &TRACE_STATE},
    {"role_key", &K_ROLE}, {"span_kind_key", &K_SPAN_KIND},
    {"span_kind_embedding", &V_EMBEDDING}, {"vector_suffix", &VECTOR_SUFFIX},
    {"vector_prefix", &VECTOR_PREFIX}, {"role_training_check", &ROLE_TRAINING_CHECK},
    {"role_evaluation", &ROLE_EVALUATION}, {"role_row", &ROLE_ROW},
    {"role_encoder", &ROLE_ENCODER}, {"role_llm", &ROLE_LLM},
    {"row_id", &K_ROW_ID}, {"run_name", &K_RUN_NAME}, {"cohort", &K_COHORT},
    {"expected", &K_EXPECTED}, {"objects", &K_OBJECTS},
    {"row_instruction", &K_ROW_INSTRUCTION}, {"image_sha256", &K_IMAGE_SHA256},
    {"row_ids", &K_ROW_IDS}, {"batch_size", &K_BATCH_SIZE}, {"top_k", &K_TOP_K},
    {"top_k_labels", &K_TOP_K_LABELS}, {"top_k_scores", &K_TOP_K_SCORES},
    {"top_k_class_ids", &K_TOP_K_CLASS_IDS}, {"entropy", &K_ENTROPY},
    {"l2_norm", &K_L2_NORM}, {"architecture", &K_ARCHITECTURE},
    {"embedding_model", &K_EMBEDDING_MODEL}, {"checkpoint", &K_CHECKPOINT},
    {"layer", &K_LAYER}, {"embedding_dim", &K_EMBEDDING_DIM},
    {"multi_label", &K_MULTI_LABEL}, {"rows_in_batch", &K_ROWS_IN_BATCH},
    {"instruction_kind", &K_INSTRUCTION_KIND},
    {"llm_outputs", &K_LLM_OUTPUTS}, {"llm_instructions", &K_LLM_INSTRUCTIONS},
    {"llm_input_tokens", &K_LLM_INPUT_TOKENS}, {"llm_output_tokens", &K_LLM_OUTPUT_TOKENS},
    {"llm_model_name", &K_LLM_MODEL_NAME}, {"request_model", &K_REQUEST_MODEL},
    {"provider_name", &K_PROVIDER_NAME}, {"llm_provider", &K_LLM_PROVIDER},
    {"encoder_span_id", &K_ENCODER_SPAN_ID}, {"input_value", &K_INPUT_VALUE},
    {"output_value", &K_OUTPUT_VALUE}, {"usage_input_tokens", &K_USAGE_INPUT_TOKENS},
    {"usage_output_tokens", &K_USAGE_OUTPUT_TOKENS}, {"check_name", &K_CHECK_NAME},
    {"response_model", &K_RESPONSE_MODEL}, {"response_model_else", &K_RESPONSE_MODEL_ELSE},
    {"foreign_llm_rows", &FOREIGN_LLM_ROWS},
    {"check_score", &K_CHECK_SCORE}, {"check_passed", &K_CHECK_PASSED},
    {"check_label", &K_CHECK_LABEL}, {"check_explanation", &K_CHECK_EXPLANATION},
    {"metadata", &K_METADATA}, {"check_annotator", &K_CHECK_ANNOTATOR},
    {"training_run_prefix", &TRAINING_RUN_PREFIX}, {"eval_run_id", &K_EVAL_RUN_ID},
    {"annotation_name", &K_ANNOTATION_NAME}, {"annotation_score", &K_ANNOTATION_SCORE},
    {"eval_passed", &K_EVAL_PASSED}, {"eval_row_id", &K_EVAL_ROW_ID},
    {"eval_trace_id", &K_EVAL_TRACE_ID}, {"annotation_label", &K_ANNOTATION_LABEL},
    {"annotation_explanation", &K_ANNOTATION_EXPLANATION},
    {"annotation_metadata", &K_ANNOTATION_METADATA},
    {"annotation_annotator", &K_ANNOTATION_ANNOTATOR}, {"annotator_code", &ANNOTATOR_CODE},
    {"legacy_annotation_score", &K_LEGACY_ANNOTATION_SCORE},
    {"legacy_annotation_label", &K_LEGACY_ANNOTATION_LABEL},
    {"legacy_annotation_explanation", &K_LEGACY_ANNOTATION_EXPLANATION},
};
#define N_NAMES (sizeof(NAMES) / sizeof(NAMES[0]))

/* Attribute names of the span objects, interned once. */
static PyObject *S_CONTEXT, *S_PARENT, *S_NAME, *S_KIND, *S_START, *S_END, *S_STATUS,
    *S_STATUS_CODE, *S_DESCRIPTION, *S_RESOURCE, *S_SCOPE, *S_SCOPE_NAME, *S_VERSION,
    *S_TRACE_STATE, *S_TRACE_FLAGS, *S_TO_HEADER, *S_TRACE_ID, *S_SPAN_ID, *S_PRIV_ATTRIBUTES,
    *S_ATTRIBUTES, *S_INNER_DICT, *S_PRIV_EVENTS, *S_EVENTS, *S_PRIV_LINKS, *S_LINKS,
    *S_DROPPED_ATTRIBUTES, *S_DROPPED_EVENTS, *S_DROPPED_LINKS, *S_TIMESTAMP, *S_ISDIGIT,
    *S_OPTION, *S_TIME_UNIX_NANO, *S_P_NAME, *S_P_CONTEXT, *S_P_PARENT, *S_P_START, *S_P_END,
    *S_P_STATUS, *S_P_KIND, *S_P_RESOURCE, *S_P_SCOPE, *S_P_STATUS_CODE, *S_P_DESCRIPTION,
    *S_P_VERSION, *S_DROPPED, *S_DQ, *S_WRITING;
static PyObject *KWNAMES_OPTION; /* ("default", "option") */
static int ready = 0;

/* ---- small helpers mirroring normalize.py ------------------------------------------- */

static int is_seq(PyObject *v) { return v != NULL && (PyList_Check(v) || PyTuple_Check(v)); }

/* a.get(key): borrowed, NULL when absent (or on error, with the error set). */
static PyObject *get(PyObject *a, PyObject *key) { return PyDict_GetItemWithError(a, key); }

static PyObject *none(void) { Py_RETURN_NONE; }

/* _text: None stays None, anything else str(). New reference. */
static PyObject *text(PyObject *v) {
    if (v == NULL || v == Py_None) return none();
    if (PyUnicode_CheckExact(v)) return Py_NewRef(v);
    return PyObject_Str(v);
}

/* _int: None and bools give None, int() otherwise, None where int() raises TypeError or
 * ValueError. New reference. */
static PyObject *to_int(PyObject *v) {
    if (v == NULL || v == Py_None || PyBool_Check(v)) return none();
    if (PyLong_CheckExact(v)) return Py_NewRef(v);
    PyObject *r = PyNumber_Long(v);
    if (r == NULL && (PyErr_ExceptionMatches(PyExc_TypeError) ||
                      PyErr_ExceptionMatches(PyExc_ValueError))) {
        PyErr_Clear();
        return none();
    }
    return r;
}

/* _at: values[index] for a list/tuple long enough, else None. Borrowed (never NULL). */
static PyObject *at(PyObject *values, Py_ssize_t index) {
    if (!is_seq(values)) return Py_None;
    Py_ssize_t n = PyList_Check(values) ? PyList_GET_SIZE(values) : PyTuple_GET_SIZE(values);
    if (index < 0 || index >= n) return Py_None;
    return PyList_Check(values) ? PyList_GET_ITEM(values, index)
                                : PyTuple_GET_ITEM(values, index);
}

/* [str(x) for x in values]. New reference. */
static PyObject *str_list(PyObject *values) {
    PyObject *fast = PySequence_Fast(values, "expected a sequence");
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *out = PyList_New(n);
    if (out == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = text(PySequence_Fast_GET_ITEM(fast, i));
        if (s == NULL) goto fail;
        PyList_SET_ITEM(out, i, s);
    }
    Py_DECREF(fast);
    return out;
fail:
    Py_XDECREF(out);
    Py_DECREF(fast);
    return NULL;
}

/* _strings: [str(v) ...] for a list/tuple, else None. */
static PyObject *strings(PyObject *v) { return is_seq(v) ? str_list(v) : none(); }

/* Truthiness of an attribute that may be absent. -1 on error. */
static int truthy(PyObject *v) { return v == NULL ? 0 : PyObject_IsTrue(v); }

/* x if x else y, for `a.get(x) or a.get(y)`; borrowed, may be NULL (absent). */
static PyObject *either(PyObject *a, PyObject *kx, PyObject *ky, int *error) {
    PyObject *x = get(a, kx);
    int t = truthy(x);
    if (t < 0) { *error = 1; return NULL; }
    return t ? x : get(a, ky);
}

/* PyObject_RichCompareBool(v, value, ==) with v possibly absent. */
static int equals(PyObject *v, PyObject *value) {
    if (v == NULL) return 0;
    return PyObject_RichCompareBool(v, value, Py_EQ);
}

static Py_ssize_t seq_len(PyObject *v) {
    return PyList_Check(v) ? PyList_GET_SIZE(v) : PyTuple_GET_SIZE(v);
}

/* format(value, "0{width}x") for an id; a fast path for ids in [0, 2^64) pieces. */
static PyObject *hex_id(PyObject *value, int width) {
    static const char digits[] = "0123456789abcdef";
    char buf[33];
    if (PyLong_CheckExact(value)) { /* a negative id fails a conversion: formatted below */
        uint64_t hi = 0, lo;
        int ok = 1;
        if (width == 16) {
            lo = PyLong_AsUnsignedLongLong(value);
            if (lo == (uint64_t)-1 && PyErr_Occurred()) { PyErr_Clear(); ok = 0; }
        } else {
            lo = PyLong_AsUnsignedLongLongMask(value);
            PyObject *shift = PyLong_FromLong(64);
            PyObject *high = shift ? PyNumber_Rshift(value, shift) : NULL;
            Py_XDECREF(shift);
            if (high == NULL) return NULL;
            hi = PyLong_AsUnsignedLongLong(high);
            Py_DECREF(high);
            if (hi == (uint64_t)-1 && PyErr_Occurred()) { PyErr_Clear(); ok = 0; }
        }
        if (ok) {
            for (int i = 0; i < 16; i++) buf[width - 1 - i] = digits[(lo >> (4 * i)) & 15];
            for (int i = 16; i < width; i++)
                buf[width - 1 - i] = digits[(hi >> (4 * (i - 16))) & 15];
            return PyUnicode_FromStringAndSize(buf, width);
        }
    }
    PyObject *spec = PyUnicode_FromString(width == 16 ? "016x" : "032x");
    if (spec == NULL) return NULL;
    PyObject *r = PyObject_Format(value, spec);
    Py_DECREF(spec);
    return r;
}

/* orjson.dumps(value, default=..., option=...).decode(). New reference. */
static PyObject *dumps(PyObject *value) {
    PyObject *args[3] = {value, DUMPS_DEFAULT, DUMPS_OPTION};
    PyObject *raw = PyObject_Vectorcall(DUMPS, args, 1, KWNAMES_OPTION);
    if (raw == NULL) return NULL;
    PyObject *s = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), NULL);
    Py_DECREF(raw);
    return s;
}

/* _plain: the mapping under an SDK BoundedAttributes (its _dict), else dict(x) or {}. */
static PyObject *plain(PyObject *attributes) {
    if (attributes == NULL || attributes == Py_None) return PyDict_New();
    PyObject *inner = PyObject_GetAttr(attributes, S_INNER_DICT);
    if (inner != NULL && PyDict_Check(inner)) return inner;
    Py_XDECREF(inner);
    PyErr_Clear();
    int t = PyObject_IsTrue(attributes);
    if (t < 0) return NULL;
    return t ? PyObject_CallOneArg((PyObject *)&PyDict_Type, attributes) : PyDict_New();
}

/* What holds the items of an SDK container, read without running its Python methods: the
 * deque of a BoundedList, the dict of a BoundedAttributes or TraceState; else obj itself.
 * New reference. */
static PyObject *inner(PyObject *obj) {
    PyObject *type = (PyObject *)Py_TYPE(obj);
    if (type == BOUNDED_LIST) return PyObject_GetAttr(obj, S_DQ);
    if (type == BOUNDED_ATTRIBUTES || type == TRACE_STATE) return PyObject_GetAttr(obj, S_INNER_DICT);
    return Py_NewRef(obj);
}

/* bool(obj), through inner(). */
static int is_true(PyObject *obj) {
    PyObject *items = inner(obj);
    if (items == NULL) return -1;
    int t = PyObject_IsTrue(items);
    Py_DECREF(items);
    return t;
}

/* obj.<public>, or obj.<private> where obj is exactly an SDK class whose property returns
 * that field as it is (a property call runs Python code; a field read does not). */
static PyObject *field(PyObject *obj, int own, PyObject *private, PyObject *public) {
    return PyObject_GetAttr(obj, own ? private : public);
}

/* A SpanContext item: trace id 0, span id 1, trace flags 3, trace state 4. */
static PyObject *context_item(PyObject *ctx, Py_ssize_t index, PyObject *public) {
    if ((PyObject *)Py_TYPE(ctx) == SPAN_CONTEXT && PyTuple_GET_SIZE(ctx) > index)
        return Py_NewRef(PyTuple_GET_ITEM(ctx, index));
    return PyObject_GetAttr(ctx, public);
}

static PyObject *context_hex(PyObject *ctx, Py_ssize_t index, PyObject *public, int width) {
    PyObject *v = context_item(ctx, index, public);
    if (v == NULL) return NULL;
    PyObject *r = hex_id(v, width);
    Py_DECREF(v);
    return r;
}

/* ReadableSpan.dropped_attributes/_events/_links for an exact ReadableSpan: the bounded
 * container's count, else 0. */
static PyObject *dropped_of(PyObject *container, PyObject *bounded_type) {
    int is = PyObject_IsInstance(container, bounded_type);
    if (is < 0) return NULL;
    return is ? PyObject_GetAttr(container, S_DROPPED) : PyLong_FromLong(0);
}

/* getattr(obj, private, True) falsy -> NULL result with *skip set; else obj.<public> (the
 * private field itself where own: the property returns a tuple copy of it). */
static PyObject *collection(PyObject *span, PyObject *private, PyObject *public, int own,
                            int *skip) {
    if (own) {
        PyObject *field_value = PyObject_GetAttr(span, private);
        if (field_value == NULL) return NULL;
        PyObject *items = inner(field_value);
        Py_DECREF(field_value);
        if (items == NULL) return NULL;
        int t = PyObject_IsTrue(items);
        if (t <= 0) {
            Py_DECREF(items);
            if (t == 0) *skip = 1;
            return NULL;
        }
        return items;
    }
    PyObject *own_items = PyObject_GetAttr(span, private);
    if (own_items == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return NULL;
        PyErr_Clear();
    } else {
        int t = PyObject_IsTrue(own_items);
        Py_DECREF(own_items);
        if (t < 0) return NULL;
        if (!t) { *skip = 1; return NULL; }
    }
    return PyObject_GetAttr(span, public);
}

/* Fill one event's dict: {"name", "time_unix_nano", "attributes"} (convert._events_json). */
static int event_fields(PyObject *e, PyObject *d) {
    PyObject *name = PyObject_GetAttr(e, S_NAME);
    PyObject *ts = name ? PyObject_GetAttr(e, S_TIMESTAMP) : NULL;
    PyObject *raw = ts ? PyObject_GetAttr(e, S_ATTRIBUTES) : NULL;
    PyObject *attrs = raw ? plain(raw) : NULL;
    int bad = attrs == NULL || PyDict_SetItem(d, S_NAME, name) < 0 ||
              PyDict_SetItem(d, S_TIME_UNIX_NANO, ts) < 0 ||
              PyDict_SetItem(d, S_ATTRIBUTES, attrs) < 0;
    Py_XDECREF(name); Py_XDECREF(ts); Py_XDECREF(raw); Py_XDECREF(attrs);
    return bad ? -1 : 0;
}

/* ctx.trace_state.to_header() if ctx.trace_state else None. */
static PyObject *trace_state_header(PyObject *ctx) {
    PyObject *ts = context_item(ctx, 4, S_TRACE_STATE);
    if (ts == NULL) return NULL;
    int t = is_true(ts);
    PyObject *r = t < 0 ? NULL : t ? PyObject_CallMethodNoArgs(ts, S_TO_HEADER) : none();
    Py_DECREF(ts);
    return r;
}

/* Fill one link's dict: {"trace_id", "span_id", "trace_state", "attributes"}
 * (convert._links_json). */
static int link_fields(PyObject *link, PyObject *d) {
    PyObject *ctx = PyObject_GetAttr(link, S_CONTEXT);
    PyObject *tid = ctx ? context_hex(ctx, 0, S_TRACE_ID, 32) : NULL;
    PyObject *sid = tid ? context_hex(ctx, 1, S_SPAN_ID, 16) : NULL;
    PyObject *ts = sid ? trace_state_header(ctx) : NULL;
    PyObject *raw = ts ? PyObject_GetAttr(link, S_ATTRIBUTES) : NULL;
    PyObject *attrs = raw ? plain(raw) : NULL;
    int bad = attrs == NULL || PyDict_SetItem(d, S_TRACE_ID, tid) < 0 ||
              PyDict_SetItem(d, S_SPAN_ID, sid) < 0 ||
              PyDict_SetItem(d, S_TRACE_STATE, ts) < 0 ||
              PyDict_SetItem(d, S_ATTRIBUTES, attrs) < 0;
    Py_XDECREF(ctx); Py_XDECREF(tid); Py_XDECREF(sid); Py_XDECREF(ts);
    Py_XDECREF(raw); Py_XDECREF(attrs);
    return bad ? -1 : 0;
}

/* The JSON of a span's events or links (one dict per item, filled by fill), or None when it
 * has none. */
static PyObject *items_json(PyObject *span, int own, PyObject *private, PyObject *public,
                            int (*fill)(PyObject *, PyObject *)) {
    int skip = 0;
    PyObject *collected = collection(span, private, public, own, &skip);
    if (collected == NULL) return skip ? none() : NULL;
    PyObject *out = NULL, *list = NULL, *fast = NULL;
    int t = is_true(collected);
    if (t <= 0) { Py_DECREF(collected); return t < 0 ? NULL : none(); }
    PyObject *items = inner(collected);
    fast = items ? PySequence_Fast(items, "span events and links must be sequences") : NULL;
    Py_XDECREF(items);
    if (fast == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    list = PyList_New(n);
    if (list == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PyDict_New();
        if (d == NULL) goto done;
        PyList_SET_ITEM(list, i, d);
        if (fill(PySequence_Fast_GET_ITEM(fast, i), d) < 0) goto done;
    }
    out = dumps(list);
done:
    Py_XDECREF(list);
    Py_XDECREF(fast);
    Py_DECREF(collected);
    return out;
}

/* ---- the accumulator ------------------------------------------------------------------ */

/* One column. Columns of the simple Arrow types are built as Arrow's own buffers here, so
 * that pyarrow wraps them (pa.Array.from_buffers) instead of converting a Python list value
 * by value, which took about a third of the conversion: 's' string (validity, int32 offsets,
 * UTF-8 data), 't' timestamp[ns] and 'l' int64, 'i' int32, 'd' float64 (validity, values).
 * Any other type ('o') stays a Python list. The types come from the schemas, by setup(). */
typedef struct {
    char type;
    Py_ssize_t nulls;
    uint8_t *validity; /* one bit a row, 1 = set */
    int32_t *offsets;  /* 's': rows + 1 of them */
    char *data;        /* 's': UTF-8 bytes; else 8 or 4 bytes a row */
    Py_ssize_t data_len, cap_rows, cap_data;
    PyObject *list; /* 'o' */
} Column;

static char TYPES[N_TABLES][MAX_WIDTH + 1]; /* set by setup() */

typedef struct {
    PyObject_HEAD
    Column columns[N_TABLES][MAX_WIDTH];
    Py_ssize_t rows[N_TABLES];
    Py_ssize_t count;                       /* spans */
    PyObject *resource;                     /* the last resource seen ... */
    PyObject *resource_json, *service_name; /* ... and what it serialises to */
} SpanColumns;

static Py_ssize_t value_width(char type) { return type == 'i' ? 4 : 8; }

static void free_column(Column *col) {
    PyMem_Free(col->validity);
    PyMem_Free(col->offsets);
    PyMem_Free(col->data);
    Py_CLEAR(col->list);
    memset(col, 0, sizeof(*col));
}

static int fresh_columns(SpanColumns *self) {
    for (int t = 0; t < N_TABLES; t++) {
        for (Py_ssize_t c = 0; c < WIDTH[t]; c++) {
            Column *col = &self->columns[t][c];
            free_column(col);
            col->type = TYPES[t][c];
            if (col->type == 'o' && (col->list = PyList_New(0)) == NULL) return -1;
        }
        self->rows[t] = 0;
    }
    self->count = 0;
    return 0;
}

/* Room for one more row in every column of table t, with `extra` more string bytes in
 * each string column c (extra[c]); on failure nothing changes but the capacity. */
static int reserve(SpanColumns *self, int t, const Py_ssize_t *extra) {
    Py_ssize_t rows = self->rows[t];
    for (Py_ssize_t c = 0; c < WIDTH[t]; c++) {
        Column *col = &self->columns[t][c];
        if (col->type == 'o') continue;
        if (rows + 1 > col->cap_rows) {
            Py_ssize_t cap = col->cap_rows ? col->cap_rows * 2 : 1024;
            uint8_t *validity = PyMem_Realloc(col->validity, (size_t)(cap + 7) / 8);
            if (validity == NULL) return (PyErr_NoMemory(), -1);
            memset(validity + (col->cap_rows + 7) / 8, 0,
                   (size_t)((cap + 7) / 8 - (col->cap_rows + 7) / 8));
            col->validity = validity;
            if (col->type == 's') {
                int32_t *offsets = PyMem_Realloc(col->offsets, (size_t)(cap + 1) * 4);
                if (offsets == NULL) return (PyErr_NoMemory(), -1);
                if (col->cap_rows == 0) offsets[0] = 0;
                col->offsets = offsets;
            } else {
                char *data = PyMem_Realloc(col->data, (size_t)(cap * value_width(col->type)));
                if (data == NULL) return (PyErr_NoMemory(), -1);
                col->data = data;
                col->cap_data = cap * value_width(col->type);
            }
            col->cap_rows = cap;
        }
        if (col->type == 's') {
            if (col->data_len + extra[c] > INT32_MAX) {
                PyErr_Format(PyExc_OverflowError, "more than 2 GiB of text in %s column %zd: "
                             "convert fewer spans at a time", TABLE_NAMES[t], c);
                return -1;
            }
            if (col->data_len + extra[c] > col->cap_data) {
                Py_ssize_t cap = col->cap_data ? col->cap_data : 16384;
                while (cap < col->data_len + extra[c]) cap *= 2;
                char *data = PyMem_Realloc(col->data, (size_t)cap);
                if (data == NULL) return (PyErr_NoMemory(), -1);
                col->data = data;
                col->cap_data = cap;
            }
        }
    }
    return 0;
}

typedef union { long long i; double d; } Number;

/* The fast path: 1 when v is a value of the column type that needs no conversion, 0 when
 * pyarrow has to decide (the error, if any, cleared). */
static int plain_value(char type, PyObject *v, const char **text, Py_ssize_t *size,
                       Number *n) {
    if (type == 's') {
        if (!PyUnicode_Check(v)) return 0;
        if ((*text = PyUnicode_AsUTF8AndSize(v, size)) == NULL) { PyErr_Clear(); return 0; }
        return 1;
    }
    if (type == 'd') {
        if (!PyFloat_Check(v)) return 0;
        n->d = PyFloat_AS_DOUBLE(v);
        return 1;
    }
    if (!PyLong_Check(v) || PyBool_Check(v)) return 0;
    int overflow;
    n->i = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (n->i == -1 && PyErr_Occurred())) { PyErr_Clear(); return 0; }
    return type != 'i' || (n->i <= INT32_MAX && n->i >= INT32_MIN);
}

/* The value of *slot for a column of `type`, asking COERCE (pyarrow's own conversion of
 * the value, convert.py) for any value off the fast path: it raises what pyarrow raises,
 * or gives the plain value (None for a null) that then replaces *slot. */
static int column_value_of(char type, PyObject **slot, const char **text, Py_ssize_t *size,
                           Number *n) {
    if (plain_value(type, *slot, text, size, n)) return 1;
    PyObject *code = PyUnicode_FromStringAndSize(&type, 1);
    PyObject *plain = code ? PyObject_CallFunctionObjArgs(COERCE, *slot, code, NULL) : NULL;
    Py_XDECREF(code);
    if (plain == NULL) return -1;
    Py_SETREF(*slot, plain);
    if (plain == Py_None) return 0;
    if (plain_value(type, plain, text, size, n)) return 1;
    PyErr_Format(PyExc_TypeError, "pyarrow gave a %.100s for a column of type %c",
                 Py_TYPE(plain)->tp_name, type);
    return -1;
}

/* Append one row to table t, stealing the references in values (all non-NULL). A value
 * that its column's type cannot hold raises what pyarrow raises for it, and appends
 * nothing. */
static int append_row(SpanColumns *self, int t, PyObject **values) {
    const char *texts[MAX_WIDTH];
    Py_ssize_t sizes[MAX_WIDTH] = {0};
    Number numbers[MAX_WIDTH];
    int status = -1;
    Py_ssize_t c, appended = 0;
    for (c = 0; c < WIDTH[t]; c++) {
        Column *col = &self->columns[t][c];
        if (col->type == 'o' || values[c] == Py_None) continue;
        if (column_value_of(col->type, &values[c], &texts[c], &sizes[c], &numbers[c]) < 0)
            goto fail;
    }
    if (reserve(self, t, sizes) < 0) goto fail;
    for (c = 0; c < WIDTH[t]; c++) { /* the only step that can fail now */
        Column *col = &self->columns[t][c];
        if (col->type == 'o') {
            if (PyList_Append(col->list, values[c]) < 0) goto undo;
            appended = c + 1;
        }
    }
    Py_ssize_t row = self->rows[t];
    for (c = 0; c < WIDTH[t]; c++) {
        Column *col = &self->columns[t][c];
        if (col->type == 'o') continue;
        int set = values[c] != Py_None;
        if (set) col->validity[row / 8] |= (uint8_t)(1u << (row % 8));
        else col->nulls++;
        if (col->type == 's') {
            if (set) memcpy(col->data + col->data_len, texts[c], (size_t)sizes[c]);
            col->data_len += sizes[c];
            col->offsets[row + 1] = (int32_t)col->data_len;
        } else if (col->type == 'i') {
            ((int32_t *)col->data)[row] = set ? (int32_t)numbers[c].i : 0;
        } else if (col->type == 'd') {
            ((double *)col->data)[row] = set ? numbers[c].d : 0.0;
        } else {
            ((int64_t *)col->data)[row] = set ? (int64_t)numbers[c].i : 0;
        }
    }
    self->rows[t]++;
    status = 0;
    goto fail; /* (done) */
undo:
    for (Py_ssize_t j = 0; j < appended; j++) {
        Column *col = &self->columns[t][j];
        if (col->type == 'o')
            PyList_SetSlice(col->list, self->rows[t], PyList_GET_SIZE(col->list), NULL);
    }
fail:
    for (c = 0; c < WIDTH[t]; c++) Py_DECREF(values[c]);
    return status;
}

/* Drop the rows of table t from row `keep` on. */
static void truncate_rows(SpanColumns *self, int t, Py_ssize_t keep) {
    for (Py_ssize_t c = 0; c < WIDTH[t]; c++) {
        Column *col = &self->columns[t][c];
        if (col->type == 'o') {
            if (PyList_GET_SIZE(col->list) > keep)
                PyList_SetSlice(col->list, keep, PyList_GET_SIZE(col->list), NULL);
            continue;
        }
        for (Py_ssize_t r = keep; r < self->rows[t]; r++) {
            if (!(col->validity[r / 8] & (1u << (r % 8)))) col->nulls--;
            col->validity[r / 8] &= (uint8_t)~(1u << (r % 8));
        }
        if (col->type == 's' && keep < self->rows[t]) col->data_len = col->offsets[keep];
    }
    if (self->rows[t] > keep) self->rows[t] = keep;
}

/* A built column for Python: (rows, nulls, validity or None, offsets or None, data), all
 * bytes; or the list of an 'o' column. */
static PyObject *column_value(Column *col, Py_ssize_t rows) {
    if (col->type == 'o') return Py_NewRef(col->list);
    PyObject *validity = col->nulls
        ? PyBytes_FromStringAndSize((const char *)col->validity, (rows + 7) / 8) : none();
    PyObject *offsets = col->type != 's' ? none()
        : PyBytes_FromStringAndSize(rows ? (const char *)col->offsets : "\0\0\0\0",
                                    (rows + 1) * 4);
    PyObject *data = PyBytes_FromStringAndSize(
        col->data ? col->data : "", col->type == 's' ? col->data_len
                                                     : rows * value_width(col->type));
    if (validity == NULL || offsets == NULL || data == NULL) {
        Py_XDECREF(validity); Py_XDECREF(offsets); Py_XDECREF(data);
        return NULL;
    }
    return Py_BuildValue("(nnNNN)", rows, col->nulls, validity, offsets, data);
}

/* Build a row from values that may be NULL (an error): append only when all are set. */
static int row(SpanColumns *self, int t, PyObject **values) {
    for (Py_ssize_t c = 0; c < WIDTH[t]; c++)
        if (values[c] == NULL) {
            for (Py_ssize_t j = 0; j < WIDTH[t]; j++) Py_XDECREF(values[j]);
            return -1;
        }
    return append_row(self, t, values);
}

/* row(), unless building the values raised (some may be None standing in for a failed
 * lookup): then drop them all. */
static int checked_row(SpanColumns *self, int t, PyObject **values) {
    if (PyErr_Occurred()) {
        for (Py_ssize_t j = 0; j < WIDTH[t]; j++) Py_XDECREF(values[j]);
        return -1;
    }
    return row(self, t, values);
}

typedef struct {
    PyObject *trace, *span, *start, *duration, *status_code, *status_message, *parent;
    PyObject *attrs;   /* dict, vectors removed */
    PyObject *vectors; /* list of (index, vector) */
} SpanFacts;

static int add_row_record(SpanColumns *self, SpanFacts *f) {
    PyObject *a = f->attrs;
    PyObject *row_id = get(a, K_ROW_ID);
    if (row_id == NULL || row_id == Py_None) return PyErr_Occurred() ? -1 : 0;
    PyObject *v[15] = {
        Py_NewRef(f->trace), Py_NewRef(f->span), text(row_id), text(get(a, K_RUN_NAME)),
        text(get(a, K_COHORT)), text(get(a, K_EXPECTED)), strings(get(a, K_OBJECTS)),
        text(get(a, K_ROW_INSTRUCTION)), text(get(a, K_IMAGE_SHA256)), Py_NewRef(f->start),
        Py_NewRef(f->duration), Py_NewRef(f->status_code), Py_NewRef(f->status_message),
        text(get(a, K_INSTRUCTION_KIND)), to_int(get(a, K_ROWS_IN_BATCH))};
    return checked_row(self, T_ROWS, v);
}

/* value or 0 as a Py_ssize_t, for `_int(x) or 0`. -1 with an error set on failure. */
static int int_or_zero(PyObject *v, Py_ssize_t *out) {
    PyObject *i = to_int(v);
    if (i == NULL) return -1;
    *out = i == Py_None ? 0 : PyLong_AsSsize_t(i);
    Py_DECREF(i);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* _int(x) or 0 for a top-k, clamped where it does not fit a Py_ssize_t: Python slices with
 * the exact value, and any bound past a list's length slices as the length does. */
static int top_k_of(PyObject *v, Py_ssize_t *out) {
    PyObject *i = to_int(v);
    if (i == NULL) return -1;
    int overflow = 0;
    long long k = i == Py_None ? 0 : PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (k == -1 && PyErr_Occurred()) return -1;
    if (overflow) k = overflow < 0 ? -(PY_SSIZE_T_MAX / 4) : PY_SSIZE_T_MAX / 4;
    if (k > PY_SSIZE_T_MAX / 4) k = PY_SSIZE_T_MAX / 4;
    if (k < -(PY_SSIZE_T_MAX / 4)) k = -(PY_SSIZE_T_MAX / 4);
    *out = (Py_ssize_t)k;
    return 0;
}

/* a * b, saturated to the Py_ssize_t range (a slice bound past the list either way). */
static Py_ssize_t saturated(Py_ssize_t a, Py_ssize_t b) {
    Py_ssize_t r;
    if (__builtin_mul_overflow(a, b, &r)) return ((a < 0) != (b < 0)) ? PY_SSIZE_T_MIN : PY_SSIZE_T_MAX;
    return r;
}

/* list(values[lo:hi]), or [str(x) for x in values[lo:hi]] with as_text. */
static PyObject *slice(PyObject *values, Py_ssize_t lo, Py_ssize_t hi, int as_text) {
    PyObject *part = PySequence_GetSlice(values, lo, hi);
    if (part == NULL) return NULL;
    PyObject *r = as_text ? str_list(part) : PySequence_List(part);
    Py_DECREF(part);
    return r;
}

/* A vector as the bytes of its float32 values, as Arrow casts them (a double rounded to the
 * nearest float, an int through int64). Bytes are not tracked by the garbage collector, a
 * tuple of 512 floats is: it would be walked by every collection until the batch is written. */
static PyObject *float32_bytes(PyObject *vector) {
    PyObject *fast = PySequence_Fast(vector, "an embedding vector must be a sequence");
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(float));
    if (out == NULL) { Py_DECREF(fast); return NULL; }
    float *values = (float *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (PyLong_Check(item) && !PyBool_Check(item)) {
            long long v = PyLong_AsLongLong(item);
            if (v == -1 && PyErr_Occurred()) goto fail;
            values[i] = (float)v;
        } else {
            double v = PyFloat_AsDouble(item);
            if (v == -1.0 && PyErr_Occurred()) goto fail;
            values[i] = (float)v;
        }
    }
    Py_DECREF(fast);
    return out;
fail:
    Py_DECREF(fast);
    Py_DECREF(out);
    return NULL;
}

/* A bool attribute as it is, anything else (or absent) None: `x if isinstance(x, bool)
 * else None`. New reference. */
static PyObject *passed_value(PyObject *passed) {
    return Py_NewRef(passed != NULL && PyBool_Check(passed) ? passed : Py_None);
}

static int add_encoder_records(SpanColumns *self, SpanFacts *f) {
    PyObject *a = f->attrs;
    int status = -1;
    PyObject *model = NULL, *architecture = NULL, *checkpoint = NULL, *layer = NULL,
             *dim = NULL, *multi_label = NULL, *rows_in_batch = NULL;
    PyObject *row_ids = get(a, K_ROW_IDS);
    Py_ssize_t batch, k;
    if (int_or_zero(get(a, K_BATCH_SIZE), &batch) < 0) return -1;
    Py_ssize_t n = batch;
    if (is_seq(row_ids) && seq_len(row_ids) > n) n = seq_len(row_ids);
    if (n < 1) n = 1;
    if (top_k_of(get(a, K_TOP_K), &k) < 0) return -1;
    PyObject *labels = get(a, K_TOP_K_LABELS), *scores = get(a, K_TOP_K_SCORES),
             *class_ids = get(a, K_TOP_K_CLASS_IDS), *images = get(a, K_IMAGE_SHA256),
             *entropy = get(a, K_ENTROPY), *norms = get(a, K_L2_NORM);
    if (PyErr_Occurred()) return -1;
    architecture = text(get(a, K_ARCHITECTURE));
    if (architecture == NULL) goto done;
    model = text(get(a, K_EMBEDDING_MODEL));
    if (model == NULL) goto done;
    int t = PyObject_IsTrue(model);
    if (t < 0) goto done;
    if (!t) Py_SETREF(model, Py_NewRef(architecture));
    checkpoint = text(get(a, K_CHECKPOINT));
    layer = checkpoint ? text(get(a, K_LAYER)) : NULL;
    dim = layer ? to_int(get(a, K_EMBEDDING_DIM)) : NULL;
    if (dim == NULL) goto done;
    multi_label = passed_value(get(a, K_MULTI_LABEL));
    if (PyErr_Occurred()) goto done;
    rows_in_batch = to_int(get(a, K_ROWS_IN_BATCH));
    if (rows_in_batch == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t lo = saturated(i, k), hi = saturated(i + 1, k);
        PyObject *v[20] = {
            Py_NewRef(f->trace), Py_NewRef(f->span), PyLong_FromSsize_t(i),
            text(at(row_ids, i)), text(at(images, i)), Py_NewRef(model),
            Py_NewRef(architecture), Py_NewRef(checkpoint), Py_NewRef(layer), Py_NewRef(dim),
            k && is_seq(labels) ? slice(labels, lo, hi, 1) : none(),
            k && is_seq(scores) ? slice(scores, lo, hi, 0) : none(),
            k && is_seq(class_ids) ? slice(class_ids, lo, hi, 0) : none(),
            Py_NewRef(at(entropy, i)), Py_NewRef(at(norms, i)), Py_NewRef(f->start),
            Py_NewRef(f->duration), Py_NewRef(f->status_code), Py_NewRef(multi_label),
            Py_NewRef(rows_in_batch)};
        if (row(self, T_ENCODERS, v) < 0) goto done;
    }
    Py_ssize_t nv = PyList_GET_SIZE(f->vectors);
    for (Py_ssize_t j = 0; j < nv; j++) {
        PyObject *pair = PyList_GET_ITEM(f->vectors, j);
        PyObject *index = PyTuple_GET_ITEM(pair, 0), *vector = PyTuple_GET_ITEM(pair, 1);
        Py_ssize_t idx = PyLong_AsSsize_t(index);
        if (idx == -1 && PyErr_Occurred()) { /* beyond any row id list: no row id */
            PyErr_Clear();
            idx = PY_SSIZE_T_MAX;
        }
        Py_ssize_t size = PyObject_Length(vector);
        if (size < 0) goto done;
        PyObject *v[8] = {Py_NewRef(f->trace), Py_NewRef(f->span), Py_NewRef(index),
                          text(at(row_ids, idx)), Py_NewRef(model), Py_NewRef(checkpoint),
                          PyLong_FromSsize_t(size), float32_bytes(vector)};
        if (row(self, T_EMBEDDINGS, v) < 0) goto done;
    }
    status = 0;
done:
    Py_XDECREF(model); Py_XDECREF(architecture); Py_XDECREF(checkpoint); Py_XDECREF(layer);
    Py_XDECREF(dim); Py_XDECREF(multi_label); Py_XDECREF(rows_in_batch);
    return status;
}

/* `_at(per_row, i) if per_row is not None else a.get(total) if single else None`. */
static PyObject *per_row(PyObject *a, PyObject *per_row, Py_ssize_t i, PyObject *total_key,
                         int single) {
    if (per_row != NULL && per_row != Py_None) return at(per_row, i);
    if (!single) return Py_None;
    PyObject *total = get(a, total_key);
    return total == NULL ? Py_None : total;
}

static int add_llm_records(SpanColumns *self, SpanFacts *f) {
    PyObject *a = f->attrs;
    int status = -1, error = 0;
    PyObject *row_ids = get(a, K_ROW_IDS), *outputs = get(a, K_LLM_OUTPUTS),
             *instructions = get(a, K_LLM_INSTRUCTIONS),
             *input_tokens = get(a, K_LLM_INPUT_TOKENS),
             *output_tokens = get(a, K_LLM_OUTPUT_TOKENS);
    if (PyErr_Occurred()) return -1;
    Py_ssize_t n = 1;
    if (is_seq(row_ids) && seq_len(row_ids) > n) n = seq_len(row_ids);
    if (is_seq(outputs) && seq_len(outputs) > n) n = seq_len(outputs);
    PyObject *model_value = either(a, K_LLM_MODEL_NAME, K_REQUEST_MODEL, &error);
    PyObject *provider_value = error ? NULL : either(a, K_PROVIDER_NAME, K_LLM_PROVIDER, &error);
    if (error || PyErr_Occurred()) return -1;
    PyObject *model = text(model_value);
    PyObject *provider = model ? text(provider_value) : NULL;
    PyObject *encoder_span = provider ? text(get(a, K_ENCODER_SPAN_ID)) : NULL;
    PyObject *kind = encoder_span ? text(get(a, K_INSTRUCTION_KIND)) : NULL;
    PyObject *rows_in_batch = kind ? to_int(get(a, K_ROWS_IN_BATCH)) : NULL;
    PyObject *response_model = NULL;
    if (rows_in_batch != NULL) {
        PyObject *value = either(a, K_RESPONSE_MODEL, K_RESPONSE_MODEL_ELSE, &error);
        response_model = error || PyErr_Occurred() ? NULL : text(value);
    }
    if (response_model == NULL) goto done;
    int single = n == 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v[17] = {
            Py_NewRef(f->trace), Py_NewRef(f->span), PyLong_FromSsize_t(i),
            text(at(row_ids, i)), Py_NewRef(model), Py_NewRef(provider),
            text(per_row(a, instructions, i, K_INPUT_VALUE, single)),
            text(per_row(a, outputs, i, K_OUTPUT_VALUE, single)),
            to_int(per_row(a, input_tokens, i, K_USAGE_INPUT_TOKENS, single)),
            to_int(per_row(a, output_tokens, i, K_USAGE_OUTPUT_TOKENS, single)),
            Py_NewRef(encoder_span), Py_NewRef(f->start), Py_NewRef(f->duration),
            Py_NewRef(f->status_code), Py_NewRef(kind), Py_NewRef(rows_in_batch),
            Py_NewRef(response_model)};
        if (checked_row(self, T_LLMS, v) < 0) goto done;
    }
    status = 0;
done:
    Py_XDECREF(model); Py_XDECREF(provider); Py_XDECREF(encoder_span); Py_XDECREF(kind);
    Py_XDECREF(rows_in_batch); Py_XDECREF(response_model);
    return status;
}

/* float(score) for an int or float (bools too, unless no_bool), else None. */
static PyObject *score_value(PyObject *score, int no_bool) {
    if (score == NULL || (no_bool && PyBool_Check(score))) return none();
    if (PyLong_Check(score) || PyFloat_Check(score)) return PyNumber_Float(score);
    return none();
}


/* _text(value) or "CODE". */
static PyObject *annotator(PyObject *value) {
    PyObject *s = text(value);
    if (s == NULL) return NULL;
    int t = PyObject_IsTrue(s);
    if (t < 0) { Py_DECREF(s); return NULL; }
    if (!t) Py_SETREF(s, Py_NewRef(ANNOTATOR_CODE));
    return s;
}

static int add_training_check(SpanColumns *self, SpanFacts *f) {
    PyObject *a = f->attrs;
    PyObject *name = get(a, K_CHECK_NAME);
    if (name == NULL || name == Py_None) return PyErr_Occurred() ? -1 : 0;
    PyObject *judged = f->span;
    int t = PyObject_IsTrue(f->parent);
    if (t < 0) return -1;
    if (t) judged = f->parent;
    PyObject *v[11] = {
        PyUnicode_Concat(TRAINING_RUN_PREFIX, f->trace), none(), Py_NewRef(f->trace),
        Py_NewRef(judged), PyObject_Str(name), score_value(get(a, K_CHECK_SCORE), 0),
        passed_value(get(a, K_CHECK_PASSED)), text(get(a, K_CHECK_LABEL)),
        text(get(a, K_CHECK_EXPLANATION)), text(get(a, K_METADATA)),
        annotator(get(a, K_CHECK_ANNOTATOR))};
    return checked_row(self, T_EVALUATIONS, v);
}

/* The value of `key`, else of the name vlmscope wrote before (borrowed; NULL when neither). */
static PyObject *get_or_legacy(PyObject *a, PyObject *key, PyObject *legacy) {
    PyObject *value = get(a, key);
    if (value == NULL && !PyErr_Occurred()) value = get(a, legacy);
    return value;
}

static int add_evaluation(SpanColumns *self, SpanFacts *f) {
    PyObject *a = f->attrs;
    PyObject *run_id = get(a, K_EVAL_RUN_ID), *name = get(a, K_ANNOTATION_NAME);
    if (run_id == NULL || name == NULL || run_id == Py_None || name == Py_None)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *v[11] = {
        PyObject_Str(run_id), text(get(a, K_EVAL_ROW_ID)), text(get(a, K_EVAL_TRACE_ID)),
        Py_NewRef(f->parent), PyObject_Str(name),
        score_value(get_or_legacy(a, K_ANNOTATION_SCORE, K_LEGACY_ANNOTATION_SCORE), 1),
        passed_value(get(a, K_EVAL_PASSED)),
        text(get_or_legacy(a, K_ANNOTATION_LABEL, K_LEGACY_ANNOTATION_LABEL)),
        text(get_or_legacy(a, K_ANNOTATION_EXPLANATION, K_LEGACY_ANNOTATION_EXPLANATION)),
        text(get(a, K_ANNOTATION_METADATA)),
        annotator(get(a, K_ANNOTATION_ANNOTATOR))};
    return checked_row(self, T_EVALUATIONS, v);
}

/* The LLM records of a span without a role, by normalize.foreign_llm_rows (the one
 * implementation of the spec's key lists for other instrumentors' spans). */
static int add_foreign_records(SpanColumns *self, SpanFacts *f) {
    PyObject *rows = PyObject_CallFunctionObjArgs(FOREIGN_LLM_ROWS, f->trace, f->span, f->start,
                                                  f->duration, f->status_code, f->attrs, NULL);
    if (rows == NULL) return -1;
    int status = 0;
    if (!PyList_Check(rows)) {
        PyErr_SetString(PyExc_TypeError, "foreign_llm_rows must return a list");
        status = -1;
    }
    for (Py_ssize_t r = 0; status == 0 && r < PyList_GET_SIZE(rows); r++) {
        PyObject *item = PyList_GET_ITEM(rows, r);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != WIDTH[T_LLMS]) {
            PyErr_SetString(PyExc_TypeError, "foreign_llm_rows must give llm_records rows");
            status = -1;
            break;
        }
        PyObject *v[MAX_WIDTH];
        for (Py_ssize_t c = 0; c < WIDTH[T_LLMS]; c++) v[c] = Py_NewRef(PyTuple_GET_ITEM(item, c));
        status = row(self, T_LLMS, v);
    }
    Py_DECREF(rows);
    return status;
}

/* RecordBuilder.add_span. */
static int add_records(SpanColumns *self, SpanFacts *f) {
    PyObject *role = get(f->attrs, K_ROLE);
    if (role == NULL) return PyErr_Occurred() ? -1 : add_foreign_records(self, f);
    int e;
    if ((e = equals(role, ROLE_TRAINING_CHECK))) return e < 0 ? -1 : add_training_check(self, f);
    if ((e = equals(role, ROLE_EVALUATION))) return e < 0 ? -1 : add_evaluation(self, f);
    if ((e = equals(role, ROLE_ROW))) return e < 0 ? -1 : add_row_record(self, f);
    if ((e = equals(role, ROLE_ENCODER))) return e < 0 ? -1 : add_encoder_records(self, f);
    if ((e = equals(role, ROLE_LLM))) return e < 0 ? -1 : add_llm_records(self, f);
    return 0;
}

/* The attributes with embedding vectors moved out (convert._pop_vectors), as a new dict when
 * any are, else the span's own dict (a new reference either way). */
static PyObject *take_vectors(PyObject *attrs, PyObject *vectors) {
    int kind = equals(get(attrs, K_SPAN_KIND), V_EMBEDDING);
    if (kind <= 0) return kind < 0 ? NULL : Py_NewRef(attrs);
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int any = 0;
    while (PyDict_Next(attrs, &pos, &key, &value)) {
        if (PyUnicode_Check(key) && PyUnicode_Tailmatch(key, VECTOR_SUFFIX, 0, PY_SSIZE_T_MAX, 1) == 1) {
            any = 1;
            break;
        }
    }
    if (!any) return Py_NewRef(attrs);
    PyObject *copy = PyDict_Copy(attrs);
    PyObject *keys = copy ? PyDict_Keys(copy) : NULL;
    if (keys == NULL) { Py_XDECREF(copy); return NULL; }
    Py_ssize_t prefix = PyUnicode_GET_LENGTH(VECTOR_PREFIX); /* includes the trailing dot */
    Py_ssize_t suffix = PyUnicode_GET_LENGTH(VECTOR_SUFFIX);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        key = PyList_GET_ITEM(keys, i);
        if (!PyUnicode_Check(key) ||
            PyUnicode_Tailmatch(key, VECTOR_SUFFIX, 0, PY_SSIZE_T_MAX, 1) != 1)
            continue;
        if (PyUnicode_Tailmatch(key, VECTOR_PREFIX, 0, PY_SSIZE_T_MAX, -1) != 1) continue;
        /* key[len(prefix) : -len(suffix)], as Python slices it */
        Py_ssize_t length = PyUnicode_GET_LENGTH(key);
        Py_ssize_t stop = length - suffix;
        PyObject *middle = PyUnicode_Substring(key, prefix, stop > prefix ? stop : prefix);
        if (middle == NULL) goto fail;
        PyObject *digit = PyObject_CallMethodNoArgs(middle, S_ISDIGIT);
        if (digit == NULL) { Py_DECREF(middle); goto fail; }
        int is_digit = digit == Py_True;
        Py_DECREF(digit);
        if (!is_digit) { Py_DECREF(middle); continue; }
        PyObject *index = PyNumber_Long(middle);
        Py_DECREF(middle);
        if (index == NULL) goto fail;
        PyObject *vector = PyDict_GetItemWithError(copy, key);
        PyObject *pair = vector ? PyTuple_Pack(2, index, vector) : NULL;
        Py_DECREF(index);
        if (pair == NULL) goto fail;
        int bad = PyList_Append(vectors, pair) < 0 || PyDict_DelItem(copy, key) < 0;
        Py_DECREF(pair);
        if (bad) goto fail;
    }
    Py_DECREF(keys);
    return copy;
fail:
    Py_DECREF(keys);
    Py_DECREF(copy);
    return NULL;
}

/* The span's own attributes as a plain dict (convert._attribute_dict). New reference. */
static PyObject *attribute_dict(PyObject *span, PyObject *own) {
    Py_XINCREF(own);
    int t = own == NULL ? 0 : is_true(own);
    if (t < 0) { Py_DECREF(own); return NULL; }
    if (!t) {
        Py_XDECREF(own);
        own = PyObject_GetAttr(span, S_ATTRIBUTES);
        if (own == NULL) return NULL;
    }
    PyObject *r = plain(own);
    Py_DECREF(own);
    return r;
}

static int resource_columns(SpanColumns *self, PyObject *span, int own, PyObject **json,
                            PyObject **service) {
    PyObject *resource = field(span, own, S_P_RESOURCE, S_RESOURCE);
    if (resource == NULL) return -1;
    if (resource != self->resource) {
        PyObject *info = PyObject_CallOneArg(RESOURCE_INFO, resource);
        if (info == NULL) { Py_DECREF(resource); return -1; }
        if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 2) {
            Py_DECREF(info);
            Py_DECREF(resource);
            PyErr_SetString(PyExc_TypeError, "resource_info must return (json, service)");
            return -1;
        }
        Py_XSETREF(self->resource_json, Py_NewRef(PyTuple_GET_ITEM(info, 0)));
        Py_XSETREF(self->service_name, Py_NewRef(PyTuple_GET_ITEM(info, 1)));
        Py_DECREF(info);
        Py_XSETREF(self->resource, Py_NewRef(resource));
    }
    Py_DECREF(resource);
    *json = Py_NewRef(self->resource_json);
    *service = Py_NewRef(self->service_name);
    return 0;
}

static PyObject *name_of(PyObject *names, PyObject *key) {
    /* The keys are enum members (SpanKind, StatusCode), singletons whose __hash__ is Python
     * code: look for the member itself first, and hash only what is not one of them. */
    Py_ssize_t pos = 0;
    PyObject *k, *value;
    while (PyDict_Next(names, &pos, &k, &value))
        if (k == key) return Py_NewRef(value);
    PyObject *r = PyDict_GetItemWithError(names, key);
    if (r == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return Py_NewRef(r);
}


/* span.dropped_<what>: the property, or for an exact ReadableSpan what it computes. */
static PyObject *dropped(PyObject *span, int own, PyObject *private, PyObject *bounded_type,
                         PyObject *public) {
    if (!own) return PyObject_GetAttr(span, public);
    PyObject *container = PyObject_GetAttr(span, private);
    if (container == NULL) return NULL;
    PyObject *r = dropped_of(container, bounded_type);
    Py_DECREF(container);
    return r;
}

/* scope.name and scope.version (None and None without a scope). */
static int scope_columns(PyObject *scope, PyObject **name, PyObject **version) {
    if (scope == Py_None) {
        *name = none();
        *version = none();
        return 0;
    }
    int own = (PyObject *)Py_TYPE(scope) == SCOPE;
    *name = field(scope, own, S_P_NAME, S_SCOPE_NAME);
    *version = *name ? field(scope, own, S_P_VERSION, S_VERSION) : NULL;
    return *version == NULL ? -1 : 0;
}

/* Drop the rows added since the row counts were ``before``, keeping the error set. */
static void undo_rows(SpanColumns *self, const Py_ssize_t *before) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    for (int t = 0; t < N_TABLES; t++) truncate_rows(self, t, before[t]);
    PyErr_Restore(type, value, traceback);
}

/* Convert one span; leaves the columns as they were on error. */
static int add_span(SpanColumns *self, PyObject *span) {
    Py_ssize_t before[N_TABLES];
    for (int t = 0; t < N_TABLES; t++) before[t] = self->rows[t];
    PyObject *v[22] = {NULL};
    SpanFacts f = {NULL};
    PyObject *ctx = NULL, *parent = NULL, *start_obj = NULL, *end_obj = NULL, *status = NULL,
             *scope = NULL, *raw_attrs = NULL, *own_attrs = NULL, *kind = NULL, *code = NULL;
    int result = -1;
    int own = (PyObject *)Py_TYPE(span) == READABLE_SPAN;

    ctx = field(span, own, S_P_CONTEXT, S_CONTEXT);
    if (ctx == NULL) goto done;
    f.trace = context_hex(ctx, 0, S_TRACE_ID, 32);
    f.span = f.trace ? context_hex(ctx, 1, S_SPAN_ID, 16) : NULL;
    if (f.span == NULL) goto done;
    parent = field(span, own, S_P_PARENT, S_PARENT);
    if (parent == NULL) goto done;
    f.parent = parent == Py_None ? none() : context_hex(parent, 1, S_SPAN_ID, 16);
    if (f.parent == NULL) goto done;

    /* start = span.start_time or 0; end = span.end_time or start */
    start_obj = field(span, own, S_P_START, S_START);
    end_obj = start_obj ? field(span, own, S_P_END, S_END) : NULL;
    if (end_obj == NULL) goto done;
    int t = PyObject_IsTrue(start_obj);
    if (t < 0) goto done;
    f.start = t ? Py_NewRef(start_obj) : PyLong_FromLong(0);
    if (f.start == NULL) goto done;
    t = PyObject_IsTrue(end_obj);
    if (t < 0) goto done;
    PyObject *end = t ? end_obj : f.start;
    PyObject *delta = PyNumber_Subtract(end, f.start);
    if (delta == NULL) goto done;
    double ns = PyFloat_Check(delta) ? PyFloat_AS_DOUBLE(delta) : PyLong_AsDouble(delta);
    Py_DECREF(delta);
    if (ns == -1.0 && PyErr_Occurred()) goto done;
    f.duration = PyFloat_FromDouble(ns / 1e6);
    if (f.duration == NULL) goto done;

    status = field(span, own, S_P_STATUS, S_STATUS);
    if (status == NULL) goto done;
    int own_status = (PyObject *)Py_TYPE(status) == STATUS;
    code = field(status, own_status, S_P_STATUS_CODE, S_STATUS_CODE);
    if (code == NULL) goto done;
    f.status_code = name_of(STATUS_NAMES, code);
    f.status_message =
        f.status_code ? field(status, own_status, S_P_DESCRIPTION, S_DESCRIPTION) : NULL;
    if (f.status_message == NULL) goto done;

    if (own) {
        raw_attrs = PyObject_GetAttr(span, S_PRIV_ATTRIBUTES);
        if (raw_attrs == NULL) goto done;
    } else {
        raw_attrs = PyObject_GetAttr(span, S_PRIV_ATTRIBUTES);
        if (raw_attrs == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) goto done;
            PyErr_Clear();
        }
    }
    own_attrs = attribute_dict(span, raw_attrs);
    if (own_attrs == NULL) goto done;
    f.vectors = PyList_New(0);
    if (f.vectors == NULL) goto done;
    f.attrs = take_vectors(own_attrs, f.vectors);
    if (f.attrs == NULL) goto done;
    if (add_records(self, &f) < 0) goto done;

    kind = field(span, own, S_P_KIND, S_KIND);
    scope = kind ? field(span, own, S_P_SCOPE, S_SCOPE) : NULL;
    if (scope == NULL) goto done;
    v[0] = Py_NewRef(f.trace);
    v[1] = Py_NewRef(f.span);
    v[2] = Py_NewRef(f.parent);
    v[3] = field(span, own, S_P_NAME, S_NAME);
    v[4] = name_of(KIND_NAMES, kind);
    v[5] = Py_NewRef(f.start);
    v[6] = Py_NewRef(end);
    v[7] = Py_NewRef(f.duration);
    v[8] = Py_NewRef(f.status_code);
    v[9] = Py_NewRef(f.status_message);
    if (PyErr_Occurred() || resource_columns(self, span, own, &v[18], &v[10]) < 0 ||
        scope_columns(scope, &v[11], &v[12]) < 0)
        goto done;
    v[13] = trace_state_header(ctx);
    PyObject *flags = v[13] ? context_item(ctx, 3, S_TRACE_FLAGS) : NULL;
    v[14] = flags ? PyNumber_Long(flags) : NULL;
    Py_XDECREF(flags);
    v[15] = v[14] ? dumps(f.attrs) : NULL;
    v[16] = v[15] ? items_json(span, own, S_PRIV_EVENTS, S_EVENTS, event_fields) : NULL;
    v[17] = v[16] ? items_json(span, own, S_PRIV_LINKS, S_LINKS, link_fields) : NULL;
    v[19] = v[17] ? dropped(span, own, S_PRIV_ATTRIBUTES, BOUNDED_ATTRIBUTES,
                            S_DROPPED_ATTRIBUTES) : NULL;
    v[20] = v[19] ? dropped(span, own, S_PRIV_EVENTS, BOUNDED_LIST, S_DROPPED_EVENTS) : NULL;
    v[21] = v[20] ? dropped(span, own, S_PRIV_LINKS, BOUNDED_LIST, S_DROPPED_LINKS) : NULL;
    if (PyErr_Occurred()) goto done;
    result = row(self, T_SPANS, v);
    for (int j = 0; j < 22; j++) v[j] = NULL; /* row() consumed them */
    if (result == 0) self->count++;
done:
    for (int j = 0; j < 22; j++) Py_XDECREF(v[j]);
    Py_XDECREF(f.trace); Py_XDECREF(f.span); Py_XDECREF(f.parent); Py_XDECREF(f.start);
    Py_XDECREF(f.duration); Py_XDECREF(f.status_code); Py_XDECREF(f.status_message);
    Py_XDECREF(f.attrs); Py_XDECREF(f.vectors);
    Py_XDECREF(ctx); Py_XDECREF(parent); Py_XDECREF(start_obj); Py_XDECREF(end_obj);
    Py_XDECREF(status); Py_XDECREF(code); Py_XDECREF(scope); Py_XDECREF(raw_attrs);
    Py_XDECREF(own_attrs); Py_XDECREF(kind);
    if (result < 0) undo_rows(self, before); /* leave no part of this span behind */
    return result;
}

/* Convert one span item of the OTLP decoder (collectors/otlp.py: a list of the spans table's
 * values in column order, with the attributes (15) still a dict and the events and links
 * (16, 17) lists of dicts or None), as otlp._assemble_python does. An evaluation span becomes
 * an evaluation record and no span row. 1 for an evaluation, 0 for a span, -1 on error,
 * leaving the columns as they were. The item's attributes dict loses its vectors. */
static int add_item(SpanColumns *self, PyObject *item) {
    if (!PyList_CheckExact(item) || PyList_GET_SIZE(item) != WIDTH[T_SPANS]) {
        PyErr_SetString(PyExc_TypeError, "a span item must be a list of the span columns");
        return -1;
    }
    Py_ssize_t before[N_TABLES];
    for (int t = 0; t < N_TABLES; t++) before[t] = self->rows[t];
    PyObject *v[22] = {NULL};
    int result = -1;
    PyObject *const *in = ((PyListObject *)item)->ob_item;
    PyObject *attrs = in[15];
    if (!PyDict_Check(attrs)) {
        PyErr_SetString(PyExc_TypeError, "a span item's attributes must be a dict");
        return -1;
    }
    SpanFacts f = {in[0], in[1], in[5], in[7], in[8], in[9], in[2], attrs, NULL};
    PyObject *role = get(attrs, K_ROLE);
    if (role == NULL && PyErr_Occurred()) return -1;
    int evaluation = equals(role, ROLE_EVALUATION);
    if (evaluation < 0) return -1;
    f.vectors = PyList_New(0);
    if (f.vectors == NULL) return -1;
    if (evaluation) {
        result = add_evaluation(self, &f) < 0 ? -1 : 1;
        Py_DECREF(f.vectors);
        goto undo;
    }
    f.attrs = take_vectors(attrs, f.vectors); /* a new reference (a copy when it took any) */
    if (f.attrs == NULL) goto done;
    if (add_records(self, &f) < 0) goto done;
    for (int j = 0; j < 22; j++) v[j] = Py_NewRef(in[j]);
    Py_SETREF(v[15], dumps(f.attrs));
    if (v[15] == NULL) goto done;
    for (int j = 16; j <= 17; j++) {
        if (v[j] != Py_None) {
            Py_SETREF(v[j], dumps(v[j]));
            if (v[j] == NULL) goto done;
        }
    }
    result = row(self, T_SPANS, v);
    for (int j = 0; j < 22; j++) v[j] = NULL; /* row() consumed them */
    if (result == 0) self->count++;
done:
    for (int j = 0; j < 22; j++) Py_XDECREF(v[j]);
    Py_XDECREF(f.attrs);
    Py_DECREF(f.vectors);
undo:
    if (result < 0) undo_rows(self, before);
    return result;
}

static PyObject *SpanColumns_add_item(SpanColumns *self, PyObject *item) {
    int r = add_item(self, item);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}

static PyObject *SpanColumns_add(SpanColumns *self, PyObject *span) {
    if (add_span(self, span) < 0) return NULL;
    Py_RETURN_NONE;
}

/* The native side of the GIL hand-over rule (collectors/handover.py): a yield point.
 * Hand the GIL to a thread waiting for it (the store's writer, whose every DuckDB call
 * needs it back when it returns). Releasing and at once retaking it does not: the waiter,
 * asleep on a condition variable, wakes to find it taken again, and since the GIL changed
 * hands its switch request lapses: it starves. Waiting HAND_OVER_US with the GIL released
 * leaves the waiter the time to wake and take it. The wait spins on the clock rather than
 * sleeping, since a sleep lasts at least the kernel's timer slack (figures for all three:
 * benchmarks/README.md, "Figures from the code"). */
#define HAND_OVER_US 20

static void hand_over_gil(void) {
    Py_BEGIN_ALLOW_THREADS
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) <
             HAND_OVER_US * 1000L);
    Py_END_ALLOW_THREADS
}

/* busy.writing, as a truth value; false (error cleared) when it cannot be read. */
static int is_busy(PyObject *busy) {
    if (busy == NULL || busy == Py_None) return 0;
    PyObject *flag = PyObject_GetAttr(busy, S_WRITING);
    if (flag == NULL) { PyErr_Clear(); return 0; }
    int r = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    if (r < 0) { PyErr_Clear(); return 0; }
    return r;
}

static PyObject *SpanColumns_extend(SpanColumns *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"spans", "busy", NULL};
    PyObject *spans, *busy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:extend", kwlist, &spans, &busy))
        return NULL;
    PyObject *it = PyObject_GetIter(spans);
    if (it == NULL) return NULL;
    PyObject *span;
    Py_ssize_t done = 0;
    while ((span = PyIter_Next(it)) != NULL) {
        int r = add_span(self, span);
        Py_DECREF(span);
        if (r < 0) { Py_DECREF(it); return NULL; }
        /* While the writer commits, hand it the GIL every YIELD_EVERY spans. Otherwise
         * keep it: a bare release would starve waiting threads (see
         * hand_over_gil); the interpreter switches after this call as it always does. */
        if (++done % YIELD_EVERY == 0 && is_busy(busy)) hand_over_gil();
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *SpanColumns_take(SpanColumns *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *spans = PyList_New(WIDTH[T_SPANS]);
    PyObject *derived = spans ? PyDict_New() : NULL;
    if (derived == NULL) { Py_XDECREF(spans); return NULL; }
    for (Py_ssize_t c = 0; c < WIDTH[T_SPANS]; c++) {
        PyObject *value = column_value(&self->columns[T_SPANS][c], self->rows[T_SPANS]);
        if (value == NULL) goto fail;
        PyList_SET_ITEM(spans, c, value);
    }
    for (int t = T_ROWS; t < N_TABLES; t++) {
        if (self->rows[t] == 0) continue;
        PyObject *columns = PyList_New(WIDTH[t]);
        if (columns == NULL) goto fail;
        for (Py_ssize_t c = 0; c < WIDTH[t]; c++) {
            PyObject *value = column_value(&self->columns[t][c], self->rows[t]);
            if (value == NULL) { Py_DECREF(columns); goto fail; }
            PyList_SET_ITEM(columns, c, value);
        }
        int bad = PyDict_SetItemString(derived, TABLE_NAMES[t], columns) < 0;
        Py_DECREF(columns);
        if (bad) goto fail;
    }
    if (fresh_columns(self) < 0) goto fail;
    return Py_BuildValue("(NN)", spans, derived);
fail:
    Py_DECREF(spans);
    Py_DECREF(derived);
    return NULL;
}

static Py_ssize_t SpanColumns_len(SpanColumns *self) { return self->count; }

static int SpanColumns_init(SpanColumns *self, PyObject *args, PyObject *kwds) {
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "call _spans_native.setup() first");
        return -1;
    }
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "SpanColumns() takes no arguments");
        return -1;
    }
    return fresh_columns(self);
}

static void SpanColumns_dealloc(SpanColumns *self) {
    for (int t = 0; t < N_TABLES; t++)
        for (Py_ssize_t c = 0; c < WIDTH[t]; c++) free_column(&self->columns[t][c]);
    Py_CLEAR(self->resource);
    Py_CLEAR(self->resource_json);
    Py_CLEAR(self->service_name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef SpanColumns_methods[] = {
    {"add", (PyCFunction)SpanColumns_add, METH_O, "Convert one finished span."},
    {"add_item", (PyCFunction)SpanColumns_add_item, METH_O,
     "Convert one span item of the OTLP decoder; True when it was an evaluation."},
    {"extend", (PyCFunction)(void (*)(void))SpanColumns_extend, METH_VARARGS | METH_KEYWORDS,
     "Convert every span of an iterable, handing the GIL over while busy.writing is true."},
    {"take", (PyCFunction)SpanColumns_take, METH_NOARGS,
     "The columns so far, as (span columns, {table: columns}); starts afresh."},
    {NULL}};

static PySequenceMethods SpanColumns_as_sequence = {.sq_length = (lenfunc)SpanColumns_len};

static PyTypeObject SpanColumnsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vlmscope.collectors._spans_native.SpanColumns",
    .tp_basicsize = sizeof(SpanColumns),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Finished spans converted into the store's columns (see the module docstring).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SpanColumns_init,
    .tp_dealloc = (destructor)SpanColumns_dealloc,
    .tp_methods = SpanColumns_methods,
    .tp_as_sequence = &SpanColumns_as_sequence,
};

/* ---- module ------------------------------------------------------------------------- */

static PyObject *setup(PyObject *module, PyObject *names) {
    if (!PyDict_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "setup() takes a dict of names");
        return NULL;
    }
    for (size_t i = 0; i < N_NAMES; i++) {
        PyObject *value = PyDict_GetItemString(names, NAMES[i].name);
        if (value == NULL) {
            PyErr_Format(PyExc_KeyError, "setup() needs %s", NAMES[i].name);
            return NULL;
        }
        Py_XSETREF(*NAMES[i].slot, Py_NewRef(value));
    }
    PyObject *widths = PyDict_GetItemString(names, "widths");
    if (widths == NULL || !PyTuple_Check(widths) || PyTuple_GET_SIZE(widths) != N_TABLES) {
        PyErr_SetString(PyExc_ValueError, "setup() needs widths, one per table");
        return NULL;
    }
    for (int t = 0; t < N_TABLES; t++)
        if (PyLong_AsSsize_t(PyTuple_GET_ITEM(widths, t)) != WIDTH[t]) {
            PyErr_Format(PyExc_ValueError, "table %s has %zd columns here, not as given",
                         TABLE_NAMES[t], WIDTH[t]);
            return NULL;
        }
    PyObject *types = PyDict_GetItemString(names, "types");
    if (types == NULL || !PyTuple_Check(types) || PyTuple_GET_SIZE(types) != N_TABLES) {
        PyErr_SetString(PyExc_ValueError, "setup() needs types, a string per table");
        return NULL;
    }
    for (int t = 0; t < N_TABLES; t++) {
        Py_ssize_t size;
        const char *codes = PyUnicode_Check(PyTuple_GET_ITEM(types, t))
            ? PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(types, t), &size) : NULL;
        if (codes == NULL || size != WIDTH[t] || strspn(codes, "stlido") != (size_t)size) {
            PyErr_Format(PyExc_ValueError, "types of table %s: %zd of s, t, l, i, d, o",
                         TABLE_NAMES[t], WIDTH[t]);
            return NULL;
        }
        memcpy(TYPES[t], codes, (size_t)size + 1);
    }
    ready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_O, "Give the converter the names it reads (see convert.py)."},
    {NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_spans_native",
    "Finished spans into the store's columns, in C (see collectors/convert.py).", -1,
    module_methods};

PyMODINIT_FUNC PyInit__spans_native(void) {
    struct {
        PyObject **slot;
        const char *text;
    } strings[] = {
        {&S_CONTEXT, "context"}, {&S_PARENT, "parent"}, {&S_NAME, "name"}, {&S_KIND, "kind"},
        {&S_START, "start_time"}, {&S_END, "end_time"}, {&S_STATUS, "status"},
        {&S_STATUS_CODE, "status_code"}, {&S_DESCRIPTION, "description"},
        {&S_RESOURCE, "resource"}, {&S_SCOPE, "instrumentation_scope"},
        {&S_SCOPE_NAME, "name"}, {&S_VERSION, "version"}, {&S_TRACE_STATE, "trace_state"},
        {&S_TRACE_FLAGS, "trace_flags"}, {&S_TO_HEADER, "to_header"},
        {&S_TRACE_ID, "trace_id"}, {&S_SPAN_ID, "span_id"},
        {&S_PRIV_ATTRIBUTES, "_attributes"}, {&S_ATTRIBUTES, "attributes"},
        {&S_INNER_DICT, "_dict"}, {&S_PRIV_EVENTS, "_events"}, {&S_EVENTS, "events"},
        {&S_PRIV_LINKS, "_links"}, {&S_LINKS, "links"},
        {&S_DROPPED_ATTRIBUTES, "dropped_attributes"}, {&S_DROPPED_EVENTS, "dropped_events"},
        {&S_DROPPED_LINKS, "dropped_links"}, {&S_TIMESTAMP, "timestamp"},
        {&S_ISDIGIT, "isdigit"}, {&S_OPTION, "option"}, {&S_TIME_UNIX_NANO, "time_unix_nano"},
        {&S_P_NAME, "_name"}, {&S_P_CONTEXT, "_context"}, {&S_P_PARENT, "_parent"},
        {&S_P_START, "_start_time"}, {&S_P_END, "_end_time"}, {&S_P_STATUS, "_status"},
        {&S_P_KIND, "_kind"}, {&S_P_RESOURCE, "_resource"},
        {&S_P_SCOPE, "_instrumentation_scope"}, {&S_P_STATUS_CODE, "_status_code"},
        {&S_P_DESCRIPTION, "_description"}, {&S_P_VERSION, "_version"}, {&S_DROPPED, "dropped"},
        {&S_DQ, "_dq"},
        {&S_WRITING, "writing"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        *strings[i].slot = PyUnicode_InternFromString(strings[i].text);
        if (*strings[i].slot == NULL) return NULL;
    }
    PyObject *default_name = PyUnicode_InternFromString("default");
    if (default_name == NULL) return NULL;
    KWNAMES_OPTION = PyTuple_Pack(2, default_name, S_OPTION);
    Py_DECREF(default_name);
    if (KWNAMES_OPTION == NULL || PyType_Ready(&SpanColumnsType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "SpanColumns", (PyObject *)&SpanColumnsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* The column count of each table this code builds rows of (checked against the spec). */
    PyObject *widths = PyTuple_New(N_TABLES);
    if (widths == NULL) { Py_DECREF(m); return NULL; }
    for (int t = 0; t < N_TABLES; t++) {
        PyObject *w = PyLong_FromSsize_t(WIDTH[t]);
        if (w == NULL) { Py_DECREF(widths); Py_DECREF(m); return NULL; }
        PyTuple_SET_ITEM(widths, t, w);
    }
    int added = PyModule_AddObjectRef(m, "WIDTHS", widths);
    Py_DECREF(widths);
    if (added < 0) { Py_DECREF(m); return NULL; }
    return m;
}
