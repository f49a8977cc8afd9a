/* The relay's fast path in C (optional; pypbx/media/poller.py works without it).
 *
 * A FastTable is indexed by socket descriptor. An *active* entry says: what arrives on this
 * descriptor (a socket connected to the leg's locked source, so the kernel already filtered
 * the sender) goes out of `out_fd` unchanged, with send() when `out_fd` is connected to the
 * destination, else sendto(dest). pump() serves one batch of a level-triggered epoll set:
 * active descriptors are forwarded here, one recv and one send each, and counted; every other
 * ready descriptor is returned for Python to serve. Nothing here decides policy: RelayLeg
 * activates an entry only when its Python fast path would do exactly the same.
 *
 * Times are CLOCK_MONOTONIC seconds, the clock of Python's time.monotonic() on Linux.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_EVENTS 256
#define RECV_SIZE 4096

typedef struct {
    int active;
    int out_fd;
    socklen_t dest_len; /* 0: out_fd is connected to its destination */
    struct sockaddr_storage dest;
    unsigned long long packets_in, bytes_in, packets_out, bytes_out, dropped;
    double last_rx;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *entries;
    int size;
} FastTable;

static Entry *entry_for(FastTable *t, int fd, int grow) {
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "negative descriptor");
        return NULL;
    }
    if (fd >= t->size) {
        if (!grow)
            return NULL;
        int size = t->size ? t->size : 1024;
        while (size <= fd)
            size *= 2;
        Entry *more = PyMem_Realloc(t->entries, (size_t)size * sizeof(Entry));
        if (more == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        memset(more + t->size, 0, (size_t)(size - t->size) * sizeof(Entry));
        t->entries = more;
        t->size = size;
    }
    return &t->entries[fd];
}

static void table_dealloc(FastTable *t) {
    PyMem_Free(t->entries);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *table_activate(FastTable *t, PyObject *args) {
    int fd, out_fd;
    Py_buffer dest = {0};
    if (!PyArg_ParseTuple(args, "iiy*", &fd, &out_fd, &dest))
        return NULL;
    if ((size_t)dest.len > sizeof(struct sockaddr_storage) || out_fd < 0) {
        PyBuffer_Release(&dest);
        PyErr_SetString(PyExc_ValueError, "bad destination");
        return NULL;
    }
    Entry *e = entry_for(t, fd, 1);
    if (e == NULL || entry_for(t, out_fd, 1) == NULL) {
        PyBuffer_Release(&dest);
        return NULL;
    }
    e = &t->entries[fd]; /* the table may have moved */
    e->out_fd = out_fd;
    e->dest_len = (socklen_t)dest.len;
    memcpy(&e->dest, dest.buf, (size_t)dest.len);
    e->active = 1;
    PyBuffer_Release(&dest);
    Py_RETURN_NONE;
}

/* The entry of the descriptor `arg` (NULL when the table never saw it); -1 on a bad argument. */
static int lookup(FastTable *t, PyObject *arg, Entry **found) {
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred())
        return -1;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "bad descriptor");
        return -1;
    }
    *found = fd < t->size ? &t->entries[fd] : NULL;
    return 0;
}

static PyObject *table_deactivate(FastTable *t, PyObject *arg) {
    Entry *e;
    if (lookup(t, arg, &e) < 0)
        return NULL;
    if (e != NULL)
        e->active = 0;
    Py_RETURN_NONE;
}

static PyObject *table_reset(FastTable *t, PyObject *arg) {
    Entry *e;
    if (lookup(t, arg, &e) < 0)
        return NULL;
    if (e != NULL)
        memset(e, 0, sizeof(Entry));
    Py_RETURN_NONE;
}

static PyObject *table_counters(FastTable *t, PyObject *arg) {
    Entry *e;
    if (lookup(t, arg, &e) < 0)
        return NULL;
    Entry none = {0};
    if (e == NULL)
        e = &none;
    return Py_BuildValue("(KKKKKd)", e->packets_in, e->bytes_in, e->packets_out, e->bytes_out,
                         e->dropped, e->last_rx);
}

static PyObject *table_pump(FastTable *t, PyObject *args) {
    int epfd, max = MAX_EVENTS;
    if (!PyArg_ParseTuple(args, "i|i", &epfd, &max))
        return NULL;
    if (max < 1 || max > MAX_EVENTS)
        max = MAX_EVENTS;
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(epfd, events, max, 0);
    if (n < 0) {
        if (errno == EINTR)
            return PyList_New(0);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    unsigned char buf[RECV_SIZE];
    PyObject *rest = PyList_New(0);
    if (rest == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        Entry *e = (fd >= 0 && fd < t->size) ? &t->entries[fd] : NULL;
        if (e == NULL || !e->active) {
            PyObject *num = PyLong_FromLong(fd);
            if (num == NULL || PyList_Append(rest, num) < 0) {
                Py_XDECREF(num);
                Py_DECREF(rest);
                return NULL;
            }
            Py_DECREF(num);
            continue;
        }
        ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got < 0) /* nothing after all, or an ICMP error for an earlier send */
            continue;
        e->packets_in++;
        e->bytes_in += (unsigned long long)got;
        e->last_rx = now;
        ssize_t sent = e->dest_len
            ? sendto(e->out_fd, buf, (size_t)got, MSG_DONTWAIT, (struct sockaddr *)&e->dest,
                     e->dest_len)
            : send(e->out_fd, buf, (size_t)got, MSG_DONTWAIT);
        if (sent < 0) {
            e->dropped++;
            continue;
        }
        if (e->out_fd < t->size) {
            Entry *o = &t->entries[e->out_fd];
            o->packets_out++;
            o->bytes_out += (unsigned long long)sent;
        }
    }
    return rest;
}

static PyMethodDef table_methods[] = {
    {"activate", (PyCFunction)table_activate, METH_VARARGS,
     "activate(fd, out_fd, dest): forward fd's packets out of out_fd (dest: a packed sockaddr, "
     "or b'' when out_fd is connected to its destination)."},
    {"deactivate", (PyCFunction)table_deactivate, METH_O,
     "deactivate(fd): pump() hands fd back to Python (counters kept)."},
    {"reset", (PyCFunction)table_reset, METH_O, "reset(fd): forget fd (inactive, counters 0)."},
    {"counters", (PyCFunction)table_counters, METH_O,
     "counters(fd) -> (packets_in, bytes_in, packets_out, bytes_out, dropped, last_rx)."},
    {"pump", (PyCFunction)table_pump, METH_VARARGS,
     "pump(epfd, max=256) -> list of the ready descriptors not forwarded here."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pypbx.media._fastrelay.FastTable",
    .tp_basicsize = sizeof(FastTable),
    .tp_dealloc = (destructor)table_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Descriptors whose packets are forwarded in C, and their counters.",
    .tp_methods = table_methods,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastrelay", "The relay's fast path in C.", -1, NULL,
};

PyMODINIT_FUNC PyInit__fastrelay(void) {
    if (PyType_Ready(&FastTableType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FastTableType);
    if (PyModule_AddObject(m, "FastTable", (PyObject *)&FastTableType) < 0) {
        Py_DECREF(&FastTableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
