/* Decode an OTLP ExportTraceServiceRequest from its protobuf bytes into the span items of
 * vlmscope.collectors.otlp (see _span_items there, the pure-Python reference this mirrors).
 *
 * decode(body, max_attributes, max_value_chars, max_array_items, max_depth, resource_info)
 * returns a list with one item per span, in request order:
 *   - a list of the 22 SPAN_SCHEMA values, except that column 15 holds the attribute dict,
 *     16 and 17 the events and links as lists of dicts (or None), not JSON text yet;
 *   - or, for a rejected span, the str message of its rejection ("span 'name': ..." or
 *     "resource: ..." repeated for every span of a rejected resource).
 * resource_info(attributes, schema_url) -> (resource JSON, service name) is called once per
 * accepted resource.
 *
 * The receiver parses every body with protobuf (upb) first, so this code sees only
 * well-formed requests there; still, every read is bounds-checked and any malformed input
 * raises ValueError. Inputs whose meaning protobuf defines by merging (a singular message
 * field, or an AnyValue value, sent twice) raise Unsupported: the caller then decodes the
 * request with the reference decoder.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_GROUP_DEPTH 100
/* Deepest AnyValue nesting decoded whatever the limits say: protobuf itself stops at 100
 * nested messages (about 50 AnyValue levels), so valid requests never get here. */
#define MAX_VALUE_DEPTH 200

static PyObject *Unsupported;
static PyObject *KIND_NAMES[6];
static PyObject *STATUS_NAMES[3];
static PyObject *STR_NAME, *STR_TIME, *STR_ATTRIBUTES, *STR_TRACE_ID, *STR_SPAN_ID,
    *STR_TRACE_STATE;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

typedef struct {
    uint32_t number;
    uint32_t wire;
    uint64_t value;      /* varint, fixed64 or fixed32 */
    const uint8_t *data; /* length-delimited */
    Py_ssize_t size;
} Field;

typedef struct {
    Py_ssize_t max_attributes, max_value_chars, max_array_items, max_depth;
    char reason[200]; /* why the current span is rejected */
} Ctx;

/* Status of the decoding functions: OK, ERROR (Python exception set), REJECT (reason set). */
enum { OK = 0, ERROR = -1, REJECT = 1 };

static int malformed(const char *what) {
    PyErr_Format(PyExc_ValueError, "malformed protobuf: %s", what);
    return ERROR;
}

static int unsupported(const char *what) {
    PyErr_SetString(Unsupported, what);
    return ERROR;
}

static int reject(Ctx *c, const char *format, Py_ssize_t number) {
    PyOS_snprintf(c->reason, sizeof c->reason, format, number);
    return REJECT;
}

static int read_varint(Reader *r, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return malformed("truncated varint");
        uint8_t byte = *r->p++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return OK;
        }
    }
    return malformed("varint longer than 10 bytes");
}

static int read_fixed(Reader *r, int size, uint64_t *out) {
    if (r->end - r->p < size) return malformed("truncated fixed-size field");
    uint64_t value = 0;
    for (int i = size - 1; i >= 0; i--) value = (value << 8) | r->p[i];
    r->p += size;
    *out = value;
    return OK;
}

static int skip_group(Reader *r, uint32_t number, int depth);

/* One field of the message read by r: 1 when read, 0 at the end, ERROR when malformed. */
static int next_field(Reader *r, Field *f) {
    if (r->p >= r->end) return 0;
    uint64_t tag, size;
    if (read_varint(r, &tag) < 0) return ERROR;
    if (tag > UINT32_MAX || (tag >> 3) == 0) return malformed("bad field tag");
    f->number = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    f->data = NULL;
    f->size = 0;
    f->value = 0;
    switch (f->wire) {
    case 0:
        return read_varint(r, &f->value) < 0 ? ERROR : 1;
    case 1:
        return read_fixed(r, 8, &f->value) < 0 ? ERROR : 1;
    case 5:
        return read_fixed(r, 4, &f->value) < 0 ? ERROR : 1;
    case 2:
        if (read_varint(r, &size) < 0) return ERROR;
        if (size > (uint64_t)(r->end - r->p)) return malformed("length beyond the message");
        f->data = r->p;
        f->size = (Py_ssize_t)size;
        r->p += size;
        return 1;
    case 3:
        return skip_group(r, f->number, 1) < 0 ? ERROR : 1;
    default:
        return malformed("bad wire type");
    }
}

static int skip_group(Reader *r, uint32_t number, int depth) {
    if (depth > MAX_GROUP_DEPTH) return malformed("groups nested too deep");
    for (;;) {
        if (r->p >= r->end) return malformed("unterminated group");
        const uint8_t *at = r->p;
        uint64_t tag;
        if (read_varint(r, &tag) < 0) return ERROR;
        if ((tag & 7) == 4) {
            if ((tag >> 3) != number) return malformed("mismatched end group");
            return OK;
        }
        if ((tag & 7) == 3) {
            if (tag > UINT32_MAX || (tag >> 3) == 0) return malformed("bad field tag");
            if (skip_group(r, (uint32_t)(tag >> 3), depth + 1) < 0) return ERROR;
            continue;
        }
        r->p = at;
        Field f;
        if (next_field(r, &f) < 0) return ERROR;
    }
}

/* Every field of a message; end group outside a group is malformed. */
#define FOR_FIELDS(reader, field, status)                                                  \
    for ((status) = next_field(&(reader), &(field)); (status) == 1;                        \
         (status) = next_field(&(reader), &(field)))

static int end_of(int status) {
    return status < 0 ? ERROR : OK;
}

/* How many times field `number` (length-delimited) occurs in the message [data, data+size). */
static int count_fields(const uint8_t *data, Py_ssize_t size, uint32_t number, Py_ssize_t *out) {
    Reader r = {data, data + size};
    Field f;
    int status;
    Py_ssize_t n = 0;
    FOR_FIELDS(r, f, status) {
        if (f.number == number && f.wire == 2) n++;
    }
    *out = n;
    return end_of(status);
}

static PyObject *text(const uint8_t *data, Py_ssize_t size) {
    return PyUnicode_DecodeUTF8((const char *)data, size, NULL);
}

/* Attribute keys, and many short values (roles, span kinds, model and provider names),
 * repeat from span to span: the last str made of each short text is kept in a direct-
 * mapped cache and handed out again, so that it is neither decoded nor hashed anew (a str
 * caches its hash), and dict lookups of it find the same object. Only under the GIL. */
#define CACHE_SLOTS 2048
#define CACHE_MAX_BYTES 64
static struct {
    PyObject *text;
    Py_ssize_t size;
    uint8_t bytes[CACHE_MAX_BYTES];
} cache[CACHE_SLOTS];

static PyObject *cached_text(const uint8_t *data, Py_ssize_t size) {
    if (size > CACHE_MAX_BYTES) return text(data, size);
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
    h ^= (uint32_t)size;
    int slot = (int)(h % CACHE_SLOTS);
    if (cache[slot].text != NULL && cache[slot].size == size &&
        memcmp(cache[slot].bytes, data, (size_t)size) == 0)
        return Py_NewRef(cache[slot].text);
    PyObject *s = text(data, size);
    if (s == NULL) return NULL;
    Py_XSETREF(cache[slot].text, Py_NewRef(s));
    cache[slot].size = size;
    memcpy(cache[slot].bytes, data, (size_t)size);
    return s;
}

static PyObject *hex(const uint8_t *data, Py_ssize_t size) {
    static const char digits[] = "0123456789abcdef";
    PyObject *out = PyUnicode_New(2 * size, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *o = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t i = 0; i < size; i++) {
        o[2 * i] = digits[data[i] >> 4];
        o[2 * i + 1] = digits[data[i] & 15];
    }
    return out;
}

static PyObject *base64(const uint8_t *data, Py_ssize_t size) {
    static const char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (size > (PY_SSIZE_T_MAX / 4) * 3 - 3) return PyErr_NoMemory();
    PyObject *out = PyUnicode_New(((size + 2) / 3) * 4, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *o = PyUnicode_1BYTE_DATA(out);
    Py_ssize_t i = 0;
    for (; i + 2 < size; i += 3) {
        uint32_t v = ((uint32_t)data[i] << 16) | ((uint32_t)data[i + 1] << 8) | data[i + 2];
        *o++ = table[v >> 18];
        *o++ = table[(v >> 12) & 63];
        *o++ = table[(v >> 6) & 63];
        *o++ = table[v & 63];
    }
    if (size - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *o++ = table[v >> 18];
        *o++ = table[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (size - i == 2) {
        uint32_t v = ((uint32_t)data[i] << 16) | ((uint32_t)data[i + 1] << 8);
        *o++ = table[v >> 18];
        *o++ = table[(v >> 12) & 63];
        *o++ = table[(v >> 6) & 63];
        *o++ = '=';
    }
    return out;
}

static int attributes(Ctx *c, const uint8_t *data, Py_ssize_t size, uint32_t number, int depth,
                      PyObject **out);

/* AnyValue field numbers and the wire type each must come with. */
enum { V_STRING = 1, V_BOOL, V_INT, V_DOUBLE, V_ARRAY, V_KVLIST, V_BYTES };
static const uint32_t VALUE_WIRE[8] = {99, 2, 0, 0, 1, 2, 2, 2};

/* An AnyValue as a Python value (see otlp._value). */
static int any_value(Ctx *c, const uint8_t *data, Py_ssize_t size, int depth, PyObject **out) {
    Reader r = {data, data + size};
    Field f, value = {0};  /* set whenever it is read (set != 0) */
    int status, set = 0;
    FOR_FIELDS(r, f, status) {
        if (f.number >= 1 && f.number <= 7 && f.wire == VALUE_WIRE[f.number]) {
            if (set) return unsupported("an AnyValue with more than one value");
            set = 1;
            value = f;
        }
    }
    if (status < 0) return ERROR;
    if (!set) {
        *out = Py_NewRef(Py_None);
        return OK;
    }
    switch (value.number) {
    case V_STRING: {
        PyObject *s = cached_text(value.data, value.size);
        if (s == NULL) return ERROR;
        if (PyUnicode_GET_LENGTH(s) > c->max_value_chars) {
            Py_DECREF(s);
            return reject(c, "a string value is longer than %zd chars", c->max_value_chars);
        }
        *out = s;
        return OK;
    }
    case V_BOOL:
        *out = PyBool_FromLong(value.value != 0);
        return OK;
    case V_INT:
        *out = PyLong_FromLongLong((long long)value.value);
        return *out == NULL ? ERROR : OK;
    case V_DOUBLE: {
        double d;
        memcpy(&d, &value.value, sizeof d);
        *out = PyFloat_FromDouble(d);
        return *out == NULL ? ERROR : OK;
    }
    case V_BYTES:
        *out = base64(value.data, value.size);
        return *out == NULL ? ERROR : OK;
    default:
        break;
    }
    /* An ArrayValue or a KeyValueList: both hold their items in field 1. */
    if (depth > MAX_VALUE_DEPTH) return malformed("values nested too deep");
    if (depth >= c->max_depth)
        return reject(c, "an attribute value is nested deeper than %zd", c->max_depth);
    Py_ssize_t count;
    if (count_fields(value.data, value.size, 1, &count) < 0) return ERROR;
    if (count > c->max_array_items)
        return reject(c, "an attribute value has more than %zd items", c->max_array_items);
    if (value.number == V_KVLIST) return attributes(c, value.data, value.size, 1, depth + 1, out);
    PyObject *list = PyList_New(count);
    if (list == NULL) return ERROR;
    Reader items = {value.data, value.data + value.size};
    Py_ssize_t i = 0;
    FOR_FIELDS(items, f, status) {
        if (f.number != 1 || f.wire != 2) continue;
        PyObject *item;
        int s = any_value(c, f.data, f.size, depth + 1, &item);
        if (s != OK) {
            Py_DECREF(list);
            return s;
        }
        PyList_SET_ITEM(list, i++, item);
    }
    if (status < 0 || i != count) {
        Py_DECREF(list);
        return status < 0 ? ERROR : malformed("array changed size");
    }
    *out = list;
    return OK;
}

/* One KeyValue into dict (see otlp._attributes). */
static int key_value(Ctx *c, const uint8_t *data, Py_ssize_t size, int depth, PyObject *dict) {
    Reader r = {data, data + size};
    Field f, key = {0}, value = {0};
    int status, has_value = 0;
    key.data = data; /* an absent key is the empty string */
    FOR_FIELDS(r, f, status) {
        if (f.wire != 2) continue;
        if (f.number == 1) {
            key = f;
        } else if (f.number == 2) {
            if (has_value) return unsupported("a KeyValue with two values");
            has_value = 1;
            value = f;
        }
    }
    if (status < 0) return ERROR;
    PyObject *v;
    if (has_value) {
        int s = any_value(c, value.data, value.size, depth, &v);
        if (s != OK) return s;
    } else {
        v = Py_NewRef(Py_None);
    }
    PyObject *k = cached_text(key.data, key.size);
    if (k == NULL) {
        Py_DECREF(v);
        return ERROR;
    }
    int failed = PyDict_SetItem(dict, k, v);
    Py_DECREF(k);
    Py_DECREF(v);
    return failed ? ERROR : OK;
}

/* The KeyValues in field `number` of a message as a dict (see otlp._attributes). */
static int attributes(Ctx *c, const uint8_t *data, Py_ssize_t size, uint32_t number, int depth,
                      PyObject **out) {
    Py_ssize_t count;
    if (count_fields(data, size, number, &count) < 0) return ERROR;
    if (count > c->max_attributes)
        return reject(c, "more than %zd attributes", c->max_attributes);
    PyObject *dict = PyDict_New();
    if (dict == NULL) return ERROR;
    Reader r = {data, data + size};
    Field f;
    int status;
    FOR_FIELDS(r, f, status) {
        if (f.number != number || f.wire != 2) continue;
        int s = key_value(c, f.data, f.size, depth, dict);
        if (s != OK) {
            Py_DECREF(dict);
            return s;
        }
    }
    if (status < 0) {
        Py_DECREF(dict);
        return ERROR;
    }
    *out = dict;
    return OK;
}

static int check_id(Ctx *c, const Field *id, Py_ssize_t size, const char *what) {
    if (id->size != size) {
        PyOS_snprintf(c->reason, sizeof c->reason, "%s must be %zd bytes, got %zd", what, size,
                      id->size);
        return REJECT;
    }
    return OK;
}

/* A dict with three or four items, stealing the references to the values. */
static PyObject *record(PyObject *k1, PyObject *v1, PyObject *k2, PyObject *v2, PyObject *k3,
                        PyObject *v3, PyObject *k4, PyObject *v4) {
    PyObject *keys[4] = {k1, k2, k3, k4}, *values[4] = {v1, v2, v3, v4};
    PyObject *dict = PyDict_New();
    int failed = dict == NULL;
    for (int i = 0; i < 4; i++) {
        if (keys[i] == NULL) continue;
        if (!failed && (values[i] == NULL || PyDict_SetItem(dict, keys[i], values[i]) < 0))
            failed = 1;
        Py_XDECREF(values[i]);
    }
    if (failed) {
        Py_XDECREF(dict);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return NULL;
    }
    return dict;
}

/* A span's events (field 11) as a list of dicts, or None without events (see otlp._events). */
static int events(Ctx *c, const uint8_t *data, Py_ssize_t size, Py_ssize_t count, PyObject **out) {
    if (count == 0) {
        *out = Py_NewRef(Py_None);
        return OK;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) return ERROR;
    Reader r = {data, data + size};
    Field f, g;
    int status, s = OK;
    FOR_FIELDS(r, f, status) {
        if (f.number != 11 || f.wire != 2) continue;
        Reader e = {f.data, f.data + f.size};
        Field name = {0};
        uint64_t time = 0;
        name.data = f.data;
        int estatus;
        FOR_FIELDS(e, g, estatus) {
            if (g.number == 1 && g.wire == 1) time = g.value;
            else if (g.number == 2 && g.wire == 2) name = g;
        }
        if (estatus < 0) {
            s = ERROR;
            break;
        }
        PyObject *attrs;
        s = attributes(c, f.data, f.size, 3, 0, &attrs);
        if (s != OK) break;
        PyObject *event = record(STR_NAME, text(name.data, name.size), STR_TIME,
                                 PyLong_FromUnsignedLongLong(time), STR_ATTRIBUTES, attrs,
                                 NULL, NULL);
        if (event == NULL || PyList_Append(list, event) < 0) {
            Py_XDECREF(event);
            s = ERROR;
            break;
        }
        Py_DECREF(event);
    }
    if (status < 0 && s == OK) s = ERROR;
    if (s != OK) {
        Py_DECREF(list);
        return s;
    }
    *out = list;
    return OK;
}

/* A span's links (field 13) as a list of dicts, or None without links (see otlp._links). */
static int links(Ctx *c, const uint8_t *data, Py_ssize_t size, Py_ssize_t count, PyObject **out) {
    if (count == 0) {
        *out = Py_NewRef(Py_None);
        return OK;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) return ERROR;
    Reader r = {data, data + size};
    Field f, g;
    int status, s = OK;
    FOR_FIELDS(r, f, status) {
        if (f.number != 13 || f.wire != 2) continue;
        Reader l = {f.data, f.data + f.size};
        Field trace = {0}, span = {0}, state = {0};
        trace.data = span.data = state.data = f.data;
        int lstatus;
        FOR_FIELDS(l, g, lstatus) {
            if (g.wire != 2) continue;
            if (g.number == 1) trace = g;
            else if (g.number == 2) span = g;
            else if (g.number == 3) state = g;
        }
        if (lstatus < 0) {
            s = ERROR;
            break;
        }
        if ((s = check_id(c, &trace, 16, "a link's trace_id")) != OK) break;
        if ((s = check_id(c, &span, 8, "a link's span_id")) != OK) break;
        PyObject *attrs;
        s = attributes(c, f.data, f.size, 4, 0, &attrs);
        if (s != OK) break;
        PyObject *trace_state = state.size ? text(state.data, state.size) : Py_NewRef(Py_None);
        PyObject *link = record(STR_TRACE_ID, hex(trace.data, 16), STR_SPAN_ID, hex(span.data, 8),
                                STR_TRACE_STATE, trace_state, STR_ATTRIBUTES, attrs);
        if (link == NULL || PyList_Append(list, link) < 0) {
            Py_XDECREF(link);
            s = ERROR;
            break;
        }
        Py_DECREF(link);
    }
    if (status < 0 && s == OK) s = ERROR;
    if (s != OK) {
        Py_DECREF(list);
        return s;
    }
    *out = list;
    return OK;
}

#define MAX_INT64 0x7fffffffffffffffULL
#define MAX_INT32 0x7fffffffULL

/* Column indexes of the span row (SPAN_SCHEMA). */
enum {
    C_TRACE_ID, C_SPAN_ID, C_PARENT, C_NAME, C_KIND, C_START, C_END, C_DURATION, C_STATUS,
    C_STATUS_MESSAGE, C_SERVICE, C_SCOPE_NAME, C_SCOPE_VERSION, C_TRACE_STATE, C_FLAGS,
    C_ATTRIBUTES, C_EVENTS, C_LINKS, C_RESOURCE, C_DROPPED_ATTRIBUTES, C_DROPPED_EVENTS,
    C_DROPPED_LINKS, N_COLUMNS
};

/* The checks and values of one span, in the order of the reference decoder. Returns OK with
 * *row set, REJECT with c->reason, or ERROR. */
static int span_row(Ctx *c, const Field *trace, const Field *span_id, const Field *parent,
                    uint64_t start, uint64_t end, uint32_t flags, uint32_t dropped[3],
                    const uint8_t *data, Py_ssize_t size, Py_ssize_t n_events,
                    Py_ssize_t n_links, PyObject **attrs, PyObject **ev, PyObject **li) {
    int s;
    if ((start > end ? start : end) > MAX_INT64) {
        PyOS_snprintf(c->reason, sizeof c->reason,
                      "a time is beyond the year 2262 (over 2**63 - 1 ns)");
        return REJECT;
    }
    uint32_t most = flags;
    for (int i = 0; i < 3; i++) most = dropped[i] > most ? dropped[i] : most;
    if (most > MAX_INT32) {
        PyOS_snprintf(c->reason, sizeof c->reason, "flags or a dropped count is over 2**31 - 1");
        return REJECT;
    }
    if ((s = check_id(c, trace, 16, "trace_id")) != OK) return s;
    if ((s = check_id(c, span_id, 8, "span_id")) != OK) return s;
    if (parent->size && (s = check_id(c, parent, 8, "parent_span_id")) != OK) return s;
    if ((s = attributes(c, data, size, 9, 0, attrs)) != OK) return s;
    if ((s = events(c, data, size, n_events, ev)) != OK) {
        Py_CLEAR(*attrs);
        return s;
    }
    if ((s = links(c, data, size, n_links, li)) != OK) {
        Py_CLEAR(*attrs);
        Py_CLEAR(*ev);
        return s;
    }
    return OK;
}

static int span(Ctx *c, const uint8_t *data, Py_ssize_t size, PyObject *shared[4],
                PyObject *items) {
    Reader r = {data, data + size};
    Field f, trace = {0}, span_id = {0}, parent = {0}, name = {0}, state = {0}, status = {0};
    int st, has_status = 0;
    uint64_t start = 0, end = 0;
    uint32_t flags = 0, dropped[3] = {0, 0, 0};
    int32_t kind = 0;
    Py_ssize_t n_events = 0, n_links = 0;
    trace.data = span_id.data = parent.data = name.data = state.data = data;
    FOR_FIELDS(r, f, st) {
        switch (f.number) {
        case 1: if (f.wire == 2) trace = f; break;
        case 2: if (f.wire == 2) span_id = f; break;
        case 3: if (f.wire == 2) state = f; break;
        case 4: if (f.wire == 2) parent = f; break;
        case 5: if (f.wire == 2) name = f; break;
        case 6: if (f.wire == 0) kind = (int32_t)(uint32_t)f.value; break;
        case 7: if (f.wire == 1) start = f.value; break;
        case 8: if (f.wire == 1) end = f.value; break;
        case 10: if (f.wire == 0) dropped[0] = (uint32_t)f.value; break;
        case 11: if (f.wire == 2) n_events++; break;
        case 12: if (f.wire == 0) dropped[1] = (uint32_t)f.value; break;
        case 13: if (f.wire == 2) n_links++; break;
        case 14: if (f.wire == 0) dropped[2] = (uint32_t)f.value; break;
        case 15:
            if (f.wire == 2) {
                if (has_status) return unsupported("a span with two statuses");
                has_status = 1;
                status = f;
            }
            break;
        case 16: if (f.wire == 5) flags = (uint32_t)f.value; break;
        default: break;
        }
    }
    if (st < 0) return ERROR;
    PyObject *name_text = cached_text(name.data, name.size);
    if (name_text == NULL) return ERROR;
    PyObject *attrs = NULL, *ev = NULL, *li = NULL;
    int s = span_row(c, &trace, &span_id, &parent, start, end, flags, dropped, data, size,
                     n_events, n_links, &attrs, &ev, &li);
    if (s == REJECT) {
        PyObject *message = PyUnicode_FromFormat("span %R: %s", name_text, c->reason);
        Py_DECREF(name_text);
        if (message == NULL) return ERROR;
        int failed = PyList_Append(items, message);
        Py_DECREF(message);
        return failed ? ERROR : OK;
    }
    if (s != OK) {
        Py_DECREF(name_text);
        return s;
    }
    /* Status: message (2) and code (3). */
    Field status_message = {0};
    int32_t code = 0;
    if (has_status) {
        Reader sr = {status.data, status.data + status.size};
        int sst;
        FOR_FIELDS(sr, f, sst) {
            if (f.number == 2 && f.wire == 2) status_message = f;
            else if (f.number == 3 && f.wire == 0) code = (int32_t)(uint32_t)f.value;
        }
        if (sst < 0) goto error;
    }
    PyObject *row = PyList_New(N_COLUMNS);
    if (row == NULL) goto error;
    uint64_t stop = end ? end : start;
    PyList_SET_ITEM(row, C_TRACE_ID, hex(trace.data, 16));
    PyList_SET_ITEM(row, C_SPAN_ID, hex(span_id.data, 8));
    PyList_SET_ITEM(row, C_PARENT, parent.size ? hex(parent.data, 8) : Py_NewRef(Py_None));
    PyList_SET_ITEM(row, C_NAME, name_text);
    PyList_SET_ITEM(row, C_KIND, Py_NewRef(KIND_NAMES[kind >= 0 && kind < 6 ? kind : 0]));
    PyList_SET_ITEM(row, C_START, PyLong_FromUnsignedLongLong(start));
    PyList_SET_ITEM(row, C_END, PyLong_FromUnsignedLongLong(stop));
    PyList_SET_ITEM(row, C_DURATION,
                    PyFloat_FromDouble((double)((int64_t)stop - (int64_t)start) / 1e6));
    PyList_SET_ITEM(row, C_STATUS, Py_NewRef(STATUS_NAMES[code >= 0 && code < 3 ? code : 0]));
    PyList_SET_ITEM(row, C_STATUS_MESSAGE, status_message.size
                    ? text(status_message.data, status_message.size) : Py_NewRef(Py_None));
    PyList_SET_ITEM(row, C_SERVICE, Py_NewRef(shared[0]));
    PyList_SET_ITEM(row, C_SCOPE_NAME, Py_NewRef(shared[1]));
    PyList_SET_ITEM(row, C_SCOPE_VERSION, Py_NewRef(shared[2]));
    PyList_SET_ITEM(row, C_TRACE_STATE, state.size ? text(state.data, state.size)
                                                   : Py_NewRef(Py_None));
    PyList_SET_ITEM(row, C_FLAGS, PyLong_FromUnsignedLong(flags));
    PyList_SET_ITEM(row, C_ATTRIBUTES, attrs);
    PyList_SET_ITEM(row, C_EVENTS, ev);
    PyList_SET_ITEM(row, C_LINKS, li);
    PyList_SET_ITEM(row, C_RESOURCE, Py_NewRef(shared[3]));
    PyList_SET_ITEM(row, C_DROPPED_ATTRIBUTES, PyLong_FromUnsignedLong(dropped[0]));
    PyList_SET_ITEM(row, C_DROPPED_EVENTS, PyLong_FromUnsignedLong(dropped[1]));
    PyList_SET_ITEM(row, C_DROPPED_LINKS, PyLong_FromUnsignedLong(dropped[2]));
    for (int i = 0; i < N_COLUMNS; i++) {
        if (PyList_GET_ITEM(row, i) == NULL) { /* a value could not be made */
            Py_DECREF(row);
            return ERROR;
        }
    }
    int failed = PyList_Append(items, row);
    Py_DECREF(row);
    return failed ? ERROR : OK;
error:
    Py_DECREF(name_text);
    Py_XDECREF(attrs);
    Py_XDECREF(ev);
    Py_XDECREF(li);
    return ERROR;
}

/* The one occurrence of singular message field `number`, or Unsupported when repeated. */
static int single(const uint8_t *data, Py_ssize_t size, uint32_t number, Field *out, int *found) {
    Reader r = {data, data + size};
    Field f;
    int status;
    *found = 0;
    FOR_FIELDS(r, f, status) {
        if (f.number == number && f.wire == 2) {
            if (*found) return unsupported("a message field sent twice (merged by protobuf)");
            *found = 1;
            *out = f;
        }
    }
    return end_of(status);
}

static int scope_spans(Ctx *c, const uint8_t *data, Py_ssize_t size, PyObject *service,
                       PyObject *resource, PyObject *items) {
    Field scope, f;
    int found, status;
    if (single(data, size, 1, &scope, &found) < 0) return ERROR;
    Field name = {0}, version = {0};
    if (found) {
        Reader r = {scope.data, scope.data + scope.size};
        FOR_FIELDS(r, f, status) {
            if (f.wire != 2) continue;
            if (f.number == 1) name = f;
            else if (f.number == 2) version = f;
        }
        if (status < 0) return ERROR;
    }
    PyObject *shared[4] = {service, NULL, NULL, resource};
    shared[1] = name.size ? text(name.data, name.size) : Py_NewRef(Py_None);
    shared[2] = version.size ? text(version.data, version.size) : Py_NewRef(Py_None);
    int s = (shared[1] == NULL || shared[2] == NULL) ? ERROR : OK;
    Reader r = {data, data + size};
    if (s == OK) {
        FOR_FIELDS(r, f, status) {
            if (f.number != 2 || f.wire != 2) continue;
            if ((s = span(c, f.data, f.size, shared, items)) != OK) break;
        }
        if (s == OK && status < 0) s = ERROR;
    }
    Py_XDECREF(shared[1]);
    Py_XDECREF(shared[2]);
    return s;
}

static int resource_spans(Ctx *c, const uint8_t *data, Py_ssize_t size, PyObject *resource_info,
                          PyObject *items) {
    Field resource, f, url = {0};
    int found, status, s;
    if (single(data, size, 1, &resource, &found) < 0) return ERROR;
    url.data = data;
    Reader r = {data, data + size};
    FOR_FIELDS(r, f, status) {
        if (f.number == 3 && f.wire == 2) url = f;
    }
    if (status < 0) return ERROR;
    PyObject *attrs;
    if (found) {
        s = attributes(c, resource.data, resource.size, 1, 0, &attrs);
        if (s == ERROR) return ERROR;
    } else {
        s = OK;
        attrs = PyDict_New();
        if (attrs == NULL) return ERROR;
    }
    if (s == REJECT) {
        /* Every span of the resource is rejected with one message. */
        PyObject *message = PyUnicode_FromFormat("resource: %s", c->reason);
        if (message == NULL) return ERROR;
        Reader all = {data, data + size};
        int failed = 0;
        FOR_FIELDS(all, f, status) {
            if (f.number != 2 || f.wire != 2) continue;
            Py_ssize_t count;
            if (count_fields(f.data, f.size, 2, &count) < 0) {
                failed = 1;
                break;
            }
            for (Py_ssize_t i = 0; i < count && !failed; i++)
                failed = PyList_Append(items, message) < 0;
            if (failed) break;
        }
        Py_DECREF(message);
        return failed || status < 0 ? ERROR : OK;
    }
    PyObject *schema_url = text(url.data, url.size);
    if (schema_url == NULL) {
        Py_DECREF(attrs);
        return ERROR;
    }
    PyObject *info = PyObject_CallFunctionObjArgs(resource_info, attrs, schema_url, NULL);
    Py_DECREF(attrs);
    Py_DECREF(schema_url);
    if (info == NULL) return ERROR;
    if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 2) {
        Py_DECREF(info);
        PyErr_SetString(PyExc_TypeError, "resource_info must return (resource, service)");
        return ERROR;
    }
    PyObject *resource_json = PyTuple_GET_ITEM(info, 0), *service = PyTuple_GET_ITEM(info, 1);
    s = OK;
    Reader spans = {data, data + size};
    FOR_FIELDS(spans, f, status) {
        if (f.number != 2 || f.wire != 2) continue;
        if ((s = scope_spans(c, f.data, f.size, service, resource_json, items)) != OK) break;
    }
    Py_DECREF(info);
    if (s == OK && status < 0) s = ERROR;
    return s;
}

static PyObject *decode(PyObject *module, PyObject *args) {
    Py_buffer body;
    PyObject *resource_info;
    Ctx c;
    if (!PyArg_ParseTuple(args, "y*nnnnO:decode", &body, &c.max_attributes, &c.max_value_chars,
                          &c.max_array_items, &c.max_depth, &resource_info))
        return NULL;
    c.reason[0] = 0;
    PyObject *items = PyList_New(0);
    if (items == NULL) {
        PyBuffer_Release(&body);
        return NULL;
    }
    const uint8_t *data = body.buf;
    Reader r = {data, data + body.len};
    Field f;
    int status, s = OK;
    FOR_FIELDS(r, f, status) {
        if (f.number != 1 || f.wire != 2) continue;
        if ((s = resource_spans(&c, f.data, f.size, resource_info, items)) != OK) break;
    }
    PyBuffer_Release(&body);
    if (s != OK || status < 0) {
        Py_DECREF(items);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_SystemError, "decode failed silently");
        return NULL;
    }
    return items;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(body, max_attributes, max_value_chars, max_array_items, max_depth, resource_info)"
     " -> list of span rows (lists) and rejection messages (str)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_otlp_native",
    "Native decoder of OTLP protobuf trace requests (see vlmscope.collectors.otlp).", -1,
    methods,
};

static PyObject *intern(const char *s) {
    return PyUnicode_InternFromString(s);
}

PyMODINIT_FUNC PyInit__otlp_native(void) {
    static const char *kinds[6] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                   "CLIENT", "PRODUCER", "CONSUMER"};
    static const char *codes[3] = {"UNSET", "OK", "ERROR"};
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    for (int i = 0; i < 6; i++)
        if ((KIND_NAMES[i] = intern(kinds[i])) == NULL) goto fail;
    for (int i = 0; i < 3; i++)
        if ((STATUS_NAMES[i] = intern(codes[i])) == NULL) goto fail;
    if (!(STR_NAME = intern("name")) || !(STR_TIME = intern("time_unix_nano")) ||
        !(STR_ATTRIBUTES = intern("attributes")) || !(STR_TRACE_ID = intern("trace_id")) ||
        !(STR_SPAN_ID = intern("span_id")) || !(STR_TRACE_STATE = intern("trace_state")))
        goto fail;
    Unsupported = PyErr_NewExceptionWithDoc(
        "_otlp_native.Unsupported",
        "The request needs protobuf's merge semantics: decode it with the reference decoder.",
        PyExc_ValueError, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
