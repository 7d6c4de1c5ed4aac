/* The native twin of the one pipeline-row assembler (collectors/_assembly.py, assemble_sql):
 * which record of a batch makes each part of each pipeline row, by the rule of
 * collectors/spec.py (PARTS, LINK). The SQL assembler is its reference: the twin loads only
 * after a self-test against it passes (_assembly.py), and tests/store/test_pipeline_facts.py
 * checks both against the Python reference on random batches. It exists because DuckDB's
 * fixed cost of planning the assembly query is paid on every commit (benchmarks/README.md).
 *
 * pick(rows, first, second) -> (trace_ids, row_ids, row_at, second_at, first_at)
 *   rows:   (trace_ids, row_ids) of the row records (lists of str or None)
 *   first:  (trace_ids, row_ids, span_ids, indexes, starts, durations, prefer, links) of the
 *           part picked first (the LLM part); second: the same for the part whose rank opens
 *           with "is the record the first part's winner links to" (the encoder part).
 *           indexes: list of int or None (0); starts: epoch ns (int or None);
 *           durations: list of float or None (None: the part's latest record is the one that
 *           started last; else the one that ended last, start plus floor(ms * 1e6) ns, a
 *           duration that is not finite counting 0); prefer: list of bool or None (a record
 *           whose flag is true wins first); links: the first part's list of span ids its
 *           records link to (None in the second part).
 *   Returns one entry per output row: each row record with a row id gives one, a key with
 *   records but no row record gives one; *_at are record positions or None.
 *
 * A record wins over another when its rank is smaller: (not the linked record,)
 * (preferred column absent,) no time, minus the time, span id, index. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

typedef struct {
    PyObject *trace, *row, *span, *index, *start, *duration, *prefer, *links;
    Py_ssize_t n;
    int64_t *at;      /* the time that makes each record the latest */
    char *has_at;     /* 0: the record has no start time */
    int64_t *idx;     /* record index, 0 when None */
    char *preferred;  /* 1: the preferred column is present (or no preference) */
} Part;

static void part_free(Part *p) {
    PyMem_Free(p->at);
    PyMem_Free(p->has_at);
    PyMem_Free(p->idx);
    PyMem_Free(p->preferred);
}

static int is_list_or_none(PyObject *v) { return v == Py_None || PyList_Check(v); }

static int int64_of(PyObject *v, int64_t *out) {
    long long value = PyLong_AsLongLong(v);
    if (value == -1 && PyErr_Occurred()) return -1;
    *out = (int64_t)value;
    return 0;
}

static int part_parse(PyObject *tuple, Part *p) {
    memset(p, 0, sizeof(*p));
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != 8) {
        PyErr_SetString(PyExc_TypeError, "a part is a tuple of 8 lists");
        return -1;
    }
    PyObject **f = &p->trace;
    for (int i = 0; i < 8; i++) f[i] = PyTuple_GET_ITEM(tuple, i);
    if (!PyList_Check(p->trace) || !PyList_Check(p->row) || !PyList_Check(p->span)
        || !is_list_or_none(p->index) || !PyList_Check(p->start)
        || !is_list_or_none(p->duration) || !is_list_or_none(p->prefer)
        || !is_list_or_none(p->links)) {
        PyErr_SetString(PyExc_TypeError, "a part's columns are lists (or None where optional)");
        return -1;
    }
    p->n = PyList_GET_SIZE(p->trace);
    PyObject *cols[] = {p->row, p->span, p->start, p->index, p->duration, p->prefer, p->links};
    for (int i = 0; i < 7; i++) {
        if (cols[i] != Py_None && PyList_GET_SIZE(cols[i]) != p->n) {
            PyErr_SetString(PyExc_ValueError, "a part's columns differ in length");
            return -1;
        }
    }
    Py_ssize_t n = p->n ? p->n : 1;
    p->at = PyMem_Malloc(n * sizeof(int64_t));
    p->has_at = PyMem_Malloc(n);
    p->idx = PyMem_Malloc(n * sizeof(int64_t));
    p->preferred = PyMem_Malloc(n);
    if (!p->at || !p->has_at || !p->idx || !p->preferred) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < p->n; i++) {
        PyObject *start = PyList_GET_ITEM(p->start, i);
        p->has_at[i] = start != Py_None;
        p->at[i] = 0;
        if (start != Py_None) {
            if (int64_of(start, &p->at[i]) < 0) return -1;
            if (p->duration != Py_None) {
                PyObject *d = PyList_GET_ITEM(p->duration, i);
                if (d != Py_None) {
                    double ms = PyFloat_AsDouble(d);
                    if (ms == -1.0 && PyErr_Occurred()) return -1;
                    if (isfinite(ms)) {
                        double ns = floor(ms * 1000000.0);
                        int64_t add;
                        if (!(ns >= -9223372036854775808.0 && ns < 9223372036854775808.0)) {
                            PyErr_SetString(PyExc_OverflowError, "a duration out of range");
                            return -1;
                        }
                        add = (int64_t)ns;
                        if (__builtin_add_overflow(p->at[i], add, &p->at[i])) {
                            PyErr_SetString(PyExc_OverflowError, "an end time out of range");
                            return -1;
                        }
                    }
                }
            }
        }
        p->idx[i] = 0;
        if (p->index != Py_None) {
            PyObject *index = PyList_GET_ITEM(p->index, i);
            if (index != Py_None && int64_of(index, &p->idx[i]) < 0) return -1;
        }
        p->preferred[i] = 1;
        if (p->prefer != Py_None) {
            int truth = PyObject_IsTrue(PyList_GET_ITEM(p->prefer, i));
            if (truth < 0) return -1;
            p->preferred[i] = (char)truth;
        }
    }
    return 0;
}

/* 1 when span i of p is not the linked span (IS DISTINCT FROM), -1 on error. */
static int unlinked(Part *p, Py_ssize_t i, PyObject *linked) {
    if (linked == NULL) return 0;
    PyObject *span = PyList_GET_ITEM(p->span, i);
    if (linked == Py_None || span == Py_None) return !(linked == Py_None && span == Py_None);
    int same = PyObject_RichCompareBool(span, linked, Py_EQ);
    return same < 0 ? -1 : !same;
}

/* <0 when record i of p wins over record j, >0 when j wins; -2 on error (set). */
static int compare(Part *p, Py_ssize_t i, Py_ssize_t j, PyObject *linked) {
    if (linked != NULL) {
        int ui = unlinked(p, i, linked), uj = unlinked(p, j, linked);
        if (ui < 0 || uj < 0) return -2;
        if (ui != uj) return ui < uj ? -1 : 1;
    }
    if (p->preferred[i] != p->preferred[j]) return p->preferred[i] ? -1 : 1;
    if (p->has_at[i] != p->has_at[j]) return p->has_at[i] ? -1 : 1;
    if (p->has_at[i] && p->at[i] != p->at[j]) return p->at[i] > p->at[j] ? -1 : 1;
    PyObject *a = PyList_GET_ITEM(p->span, i), *b = PyList_GET_ITEM(p->span, j);
    if (a != b) {
        if (a == Py_None || b == Py_None) return a == Py_None ? 1 : -1;
        int less = PyObject_RichCompareBool(a, b, Py_LT);
        if (less < 0) return -2;
        if (less) return -1;
        int more = PyObject_RichCompareBool(b, a, Py_LT);
        if (more < 0) return -2;
        if (more) return 1;
    }
    if (p->idx[i] != p->idx[j]) return p->idx[i] < p->idx[j] ? -1 : 1;
    return 0;
}

typedef struct {
    Py_ssize_t first, second;  /* winning record of each part, -1 for none */
    Py_ssize_t row_head, row_tail;  /* the key's row records, a chain through row_next */
    PyObject *key;  /* borrowed from the keys dict */
} Slot;

/* The slot of (trace, row), added when new; -1 on error. */
static Py_ssize_t slot_of(PyObject *keys, Slot *slots, Py_ssize_t *count, PyObject *trace,
                          PyObject *row) {
    PyObject *key = PyTuple_Pack(2, trace, row);
    if (key == NULL) return -1;
    PyObject *found = PyDict_GetItemWithError(keys, key);
    if (found != NULL) {
        Py_DECREF(key);
        return PyLong_AsSsize_t(found);
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return -1;
    }
    Py_ssize_t at = (*count)++;
    PyObject *number = PyLong_FromSsize_t(at);
    if (number == NULL || PyDict_SetItem(keys, key, number) < 0) {
        Py_XDECREF(number);
        Py_DECREF(key);
        return -1;
    }
    Py_DECREF(number);
    slots[at] = (Slot){-1, -1, -1, -1, key};
    Py_DECREF(key);  /* the dict holds it */
    return at;
}

static int pick_part(Part *p, PyObject *keys, Slot *slots, Py_ssize_t *count, int which,
                     Part *linker) {
    for (Py_ssize_t i = 0; i < p->n; i++) {
        PyObject *row = PyList_GET_ITEM(p->row, i);
        if (row == Py_None) continue;
        Py_ssize_t s = slot_of(keys, slots, count, PyList_GET_ITEM(p->trace, i), row);
        if (s < 0) return -1;
        Py_ssize_t *best = which == 1 ? &slots[s].first : &slots[s].second;
        if (*best < 0) {
            *best = i;
            continue;
        }
        PyObject *linked = NULL;
        if (linker != NULL)
            linked = slots[s].first < 0 ? Py_None
                                        : PyList_GET_ITEM(linker->links, slots[s].first);
        int order = compare(p, i, *best, linked);
        if (order == -2) return -1;
        if (order < 0) *best = i;
    }
    return 0;
}

static PyObject *position(Py_ssize_t at) {
    if (at < 0) Py_RETURN_NONE;
    return PyLong_FromSsize_t(at);
}

static PyObject *pick(PyObject *module, PyObject *args) {
    PyObject *rows, *first_in, *second_in;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyTuple_Type, &rows, &PyTuple_Type, &first_in,
                          &PyTuple_Type, &second_in))
        return NULL;
    if (PyTuple_GET_SIZE(rows) != 2 || !PyList_Check(PyTuple_GET_ITEM(rows, 0))
        || !PyList_Check(PyTuple_GET_ITEM(rows, 1))
        || PyList_GET_SIZE(PyTuple_GET_ITEM(rows, 0))
               != PyList_GET_SIZE(PyTuple_GET_ITEM(rows, 1))) {
        PyErr_SetString(PyExc_TypeError, "rows is (trace_ids, row_ids), two lists alike");
        return NULL;
    }
    PyObject *row_trace = PyTuple_GET_ITEM(rows, 0), *row_row = PyTuple_GET_ITEM(rows, 1);
    Part first, second;
    memset(&first, 0, sizeof(first));
    memset(&second, 0, sizeof(second));
    PyObject *keys = NULL, *result = NULL;
    PyObject *out[5] = {NULL, NULL, NULL, NULL, NULL};
    Slot *slots = NULL;
    Py_ssize_t *row_next = NULL;
    int parsed_first = part_parse(first_in, &first);
    int parsed_second = parsed_first < 0 ? -1 : part_parse(second_in, &second);
    if (parsed_first < 0 || parsed_second < 0) goto done;
    if (first.links == Py_None) {
        PyErr_SetString(PyExc_TypeError, "the first part gives the links");
        goto done;
    }
    Py_ssize_t n_rows = PyList_GET_SIZE(row_trace);
    Py_ssize_t total = n_rows + first.n + second.n;
    slots = PyMem_Malloc((total ? total : 1) * sizeof(Slot));
    row_next = PyMem_Malloc((n_rows ? n_rows : 1) * sizeof(Py_ssize_t));
    keys = PyDict_New();
    if (!slots || !row_next || !keys) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n_rows; i++) {
        PyObject *row = PyList_GET_ITEM(row_row, i);
        row_next[i] = -1;
        if (row == Py_None) continue;
        Py_ssize_t s = slot_of(keys, slots, &count, PyList_GET_ITEM(row_trace, i), row);
        if (s < 0) goto done;
        if (slots[s].row_tail < 0) slots[s].row_head = i;
        else row_next[slots[s].row_tail] = i;
        slots[s].row_tail = i;
    }
    if (pick_part(&first, keys, slots, &count, 1, NULL) < 0) goto done;
    if (pick_part(&second, keys, slots, &count, 2, &first) < 0) goto done;
    for (int k = 0; k < 5; k++)
        if ((out[k] = PyList_New(0)) == NULL) goto done;
    for (Py_ssize_t s = 0; s < count; s++) {
        Py_ssize_t r = slots[s].row_head;
        do {
            PyObject *values[5] = {PyTuple_GET_ITEM(slots[s].key, 0),
                                   PyTuple_GET_ITEM(slots[s].key, 1), NULL, NULL, NULL};
            values[2] = position(r);
            values[3] = position(slots[s].second);
            values[4] = position(slots[s].first);
            int failed = !values[2] || !values[3] || !values[4];
            for (int k = 0; k < 5 && !failed; k++)
                failed = PyList_Append(out[k], values[k]) < 0;
            for (int k = 2; k < 5; k++) Py_XDECREF(values[k]);
            if (failed) goto done;
            r = r < 0 ? -1 : row_next[r];
        } while (r >= 0);
    }
    result = PyTuple_Pack(5, out[0], out[1], out[2], out[3], out[4]);
done:
    for (int k = 0; k < 5; k++) Py_XDECREF(out[k]);
    Py_XDECREF(keys);
    PyMem_Free(slots);
    PyMem_Free(row_next);
    part_free(&first);
    part_free(&second);
    return result;
}

static PyMethodDef methods[] = {
    {"pick", pick, METH_VARARGS,
     "pick(rows, first, second): the record of each part that makes each pipeline row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_assembly_native",
    "The native twin of the pipeline-row assembler (see collectors/_assembly.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__assembly_native(void) { return PyModule_Create(&module); }
