/*
 * dockyard-shim: the long-lived part of a container's shim (docs/architecture.md §1, §3).
 *
 * One runs per running container. The Python launcher forks a process that does what
 * needs Python and then execve()s this program, handing it file descriptors on the
 * command line; from then on no Python runs here, so an idle container costs a few
 * hundred KiB instead of megabytes. runtime/shim.py's Shim class serves the same protocol
 * in Python: it is the fallback when this program is not built, and the reference to read
 * next to it. It runs in one of two modes:
 *
 *   a spare (--job-fd, --init-fd, --init-pid; runtime/shim.py, exec_native_spare): exec'd
 *      before its container is known, beside a spare container init (our child, in fresh
 *      namespaces). We say "ready" on the job socket, take the job (the shim config as
 *      JSON + the fd to report on), make the state dir, the logs, the stdio pipes and the
 *      control socket, and hand the config and the stdio to the init (a Job message of
 *      runtime/channel.py), which plans, makes its cgroup and sets itself up;
 *   with a helper (--helper-fd; exec_native): the Python helper creates the init
 *      (create_init) and holds it until start.
 *
 * A container's life, as this program sees it:
 *   1. the init reports Ready (with the pty master over SCM_RIGHTS when the container has
 *      a tty) or Failed -- or the helper {"ok":true,"pid":N} or {"ok":false,...}; we write
 *      status.json and report {"ok":true,"pid":N,"shim_pid":M} on the result fd;
 *   2. we serve the JSON-line protocol on the control socket: state, start (Start to the
 *      init, or relayed to the helper, which releases it), attach, detach, wait, kill,
 *      resize;
 *   3. we read the container's output (two pipes, or the pty master), write each line to
 *      the json-file log and copy the bytes to attached clients; we forward their stdin;
 *   4. we reap the init (our child, or reparented here when the helper exits: we are a
 *      child subreaper), record the exit in status.json, answer the waiters, kill what is
 *      left in the container's cgroups and remove them, linger for slow clients, exit.
 *
 * Single-threaded: one epoll loop, SIGCHLD through a signalfd, every fd non-blocking.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

enum { STDOUT = 1, STDERR = 2 };          /* stream numbers, as in docker's frame header */
#define READ_CHUNK 65536
#define MAX_LOG_LINE (16 * 1024)          /* docker's json-file splits longer lines */
#define HIGH_WATER (1 << 20)              /* stop reading the container while a client lags this much */
#define LOW_WATER (1 << 18)
#define MAX_REQUEST 65536
#define MAX_FIELDS 32
#define MAX_MOUNTS 32
#define CGROUP2_SUPER_MAGIC 0x63677270

/* ---- small utilities ------------------------------------------------------------------ */

static void warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dockyard-shim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n);
    if (!p) {
        warn("out of memory");
        exit(70);
    }
    return p;
}

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The wall clock as Go's time.RFC3339Nano prints it in UTC: trailing zeros trimmed. */
static void rfc3339nano(char out[40]) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ts.tv_nsec) {
        n += (size_t)snprintf(out + n, 40 - n, ".%09ld", ts.tv_nsec);
        while (out[n - 1] == '0')
            n--;
    }
    out[n++] = 'Z';
    out[n] = 0;
}

static void nap_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void set_nonblocking(int fd) {
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* ---- growable byte buffers (Python's bytearray) --------------------------------------- */

struct buf {
    char *data;
    size_t len, cap;
};

static void buf_free(struct buf *b) {
    free(b->data);
    *b = (struct buf){0};
}

static void buf_add(struct buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_addf(struct buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    buf_add(b, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Remove n bytes from the front. A big buffer that empties is freed: an idle shim keeps
 * no memory from a past burst of output. */
static void buf_drop(struct buf *b, size_t n) {
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (!b->len && b->cap > READ_CHUNK)
        buf_free(b);
}

/* ---- JSON out ---------------------------------------------------------------------------- */

/* The length of the UTF-8 sequence at p (*ok = true), or of its longest valid beginning,
 * at least 1 (*ok = false): that many bytes become one U+FFFD, as with Python's
 * bytes.decode("utf-8", "replace"). */
static size_t utf8_seq(const unsigned char *p, size_t n, bool *ok) {
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;           /* no overlong forms */
        hi = c == 0xED ? 0x9F : 0xBF;           /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;           /* nothing above U+10FFFF */
    } else {
        *ok = false;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        unsigned min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
        if (i >= n || p[i] < min || p[i] > max) {
            *ok = false;
            return i;
        }
    }
    *ok = true;
    return len;
}

/* Append s[0..n) as a JSON string; invalid UTF-8 becomes U+FFFD. */
static void json_str(struct buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c >= 0x80) {
            bool ok;
            size_t k = utf8_seq(p + i, n - i, &ok);
            if (ok)
                buf_add(b, p + i, k);
            else
                buf_adds(b, "\xEF\xBF\xBD");
            i += k;
            continue;
        }
        switch (c) {
        case '"': buf_adds(b, "\\\""); break;
        case '\\': buf_adds(b, "\\\\"); break;
        case '\n': buf_adds(b, "\\n"); break;
        case '\r': buf_adds(b, "\\r"); break;
        case '\t': buf_adds(b, "\\t"); break;
        default:
            if (c < 0x20)
                buf_addf(b, "\\u%04x", c);
            else
                buf_add(b, p + i, 1);
        }
        i++;
    }
    buf_add(b, "\"", 1);
}

static void json_cstr(struct buf *b, const char *s) { json_str(b, s, strlen(s)); }

/* ---- JSON in: flat objects only ------------------------------------------------------------ */

/* Requests are flat objects: {"op":"kill","signal":9,"all":false}. Values are strings,
 * numbers, true, false or null; an object or an array is refused. */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_NESTED };

struct jfield {
    const char *key;
    enum jtype type;
    double num;                                /* J_NUM, and J_BOOL as 0/1 */
    const char *str;                           /* J_STR, decoded, NUL-terminated */
};

struct jobj {
    int n;
    struct jfield f[MAX_FIELDS];
    char *pool;                                /* decoded strings live here; free() it */
};

struct cursor {
    const char *p, *end;
    char *out;                                 /* where the next decoded string byte goes */
};

static void skip_ws(struct cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool eat(struct cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool hex4(struct cursor *c, unsigned *v) {
    *v = 0;
    if (c->end - c->p < 4)
        return false;
    for (int i = 0; i < 4; i++) {
        char h = *c->p++;
        *v <<= 4;
        if (h >= '0' && h <= '9') *v |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f') *v |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') *v |= (unsigned)(h - 'A' + 10);
        else return false;
    }
    return true;
}

static void put_utf8(struct cursor *c, unsigned cp) {
    if (cp < 0x80) {
        *c->out++ = (char)cp;
    } else if (cp < 0x800) {
        *c->out++ = (char)(0xC0 | cp >> 6);
        *c->out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *c->out++ = (char)(0xE0 | cp >> 12);
        *c->out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *c->out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *c->out++ = (char)(0xF0 | cp >> 18);
        *c->out++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *c->out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *c->out++ = (char)(0x80 | (cp & 0x3F));
    }
}

/* A JSON string at the cursor, decoded into the pool; NULL if malformed. A decoded string
 * is never longer than its JSON form, so the pool never overflows. */
static const char *parse_string(struct cursor *c) {
    if (!eat(c, '"'))
        return NULL;
    char *start = c->out;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') {
            *c->out++ = 0;
            return start;
        }
        if (ch < 0x20)
            return NULL;
        if (ch != '\\') {
            *c->out++ = (char)ch;
            continue;
        }
        if (c->p >= c->end)
            return NULL;
        unsigned cp;
        switch (*c->p++) {
        case '"': *c->out++ = '"'; break;
        case '\\': *c->out++ = '\\'; break;
        case '/': *c->out++ = '/'; break;
        case 'b': *c->out++ = '\b'; break;
        case 'f': *c->out++ = '\f'; break;
        case 'n': *c->out++ = '\n'; break;
        case 'r': *c->out++ = '\r'; break;
        case 't': *c->out++ = '\t'; break;
        case 'u':
            if (!hex4(c, &cp))
                return NULL;
            if (cp >= 0xD800 && cp <= 0xDBFF && c->end - c->p >= 6 && c->p[0] == '\\' &&
                c->p[1] == 'u') {                      /* a surrogate pair */
                unsigned low;
                c->p += 2;
                if (!hex4(c, &low))
                    return NULL;
                cp = low >= 0xDC00 && low <= 0xDFFF ? 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                                                    : 0xFFFD;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;                           /* a lone surrogate */
            }
            put_utf8(c, cp);
            break;
        default:
            return NULL;
        }
    }
    return NULL;
}

/* Parse s[0..n) (NUL-terminated at s[n]) into o. Returns 0, or -1 if it is not a flat
 * JSON object. o->pool must be freed either way. */
/* Skip an object or an array (strings inside may hold brackets; each bracket must close
 * its own kind; nesting deeper than 64 is refused). */
static int skip_nested(struct cursor *c) {
    char open[64];
    int depth = 0;
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"') {
            while (c->p < c->end && *c->p != '"')
                c->p += *c->p == '\\' ? 2 : 1;
            if (c->p >= c->end)
                return -1;
            c->p++;
        } else if (ch == '{' || ch == '[') {
            if (depth == (int)sizeof open)
                return -1;
            open[depth++] = ch == '{' ? '}' : ']';
        } else if (ch == '}' || ch == ']') {
            if (!depth || open[--depth] != ch)
                return -1;
            if (!depth)
                return 0;
        }
    }
    return -1;
}

static int json_parse(const char *s, size_t n, struct jobj *o) {
    struct cursor c = {s, s + n, NULL};
    o->n = 0;
    o->pool = c.out = xrealloc(NULL, n + 1);
    if (!eat(&c, '{'))
        return -1;
    if (!eat(&c, '}')) {
        do {
            if (o->n == MAX_FIELDS)
                return -1;
            struct jfield *f = &o->f[o->n];      /* counted once it is whole */
            if (!(f->key = parse_string(&c)) || !eat(&c, ':'))
                return -1;
            skip_ws(&c);
            size_t left = (size_t)(c.end - c.p);
            if (c.p < c.end && *c.p == '"') {
                f->type = J_STR;
                if (!(f->str = parse_string(&c)))
                    return -1;
            } else if (left >= 4 && !strncmp(c.p, "true", 4)) {
                f->type = J_BOOL, f->num = 1, c.p += 4;
            } else if (left >= 5 && !strncmp(c.p, "false", 5)) {
                f->type = J_BOOL, f->num = 0, c.p += 5;
            } else if (left >= 4 && !strncmp(c.p, "null", 4)) {
                f->type = J_NULL, c.p += 4;
            } else if (c.p < c.end && (*c.p == '-' || (*c.p >= '0' && *c.p <= '9'))) {
                char *e;
                f->type = J_NUM;
                f->num = strtod(c.p, &e);
                if (e == c.p || e > c.end)
                    return -1;
                c.p = e;
            } else if (c.p < c.end && (*c.p == '{' || *c.p == '[')) {
                f->type = J_NESTED;                     /* skipped: nobody here reads it */
                if (skip_nested(&c) < 0)
                    return -1;
            } else {
                return -1;
            }
            o->n++;
        } while (eat(&c, ','));
        if (!eat(&c, '}'))
            return -1;
    }
    skip_ws(&c);
    return c.p == c.end ? 0 : -1;
}

static const struct jfield *jget(const struct jobj *o, const char *key) {
    for (int i = o->n - 1; i >= 0; i--)            /* the last one wins, as in a Python dict */
        if (!strcmp(o->f[i].key, key))
            return &o->f[i];
    return NULL;
}

static const char *jstr(const struct jobj *o, const char *key) {
    const struct jfield *f = jget(o, key);
    return f && f->type == J_STR ? f->str : NULL;
}

/* Python's bool(): a missing key gives dflt. */
static bool jbool(const struct jobj *o, const char *key, bool dflt) {
    const struct jfield *f = jget(o, key);
    if (!f)
        return dflt;
    return f->type == J_STR ? f->str[0] != 0 : f->type == J_NULL ? false : f->num != 0;
}

static long jint(const struct jobj *o, const char *key, long dflt) {
    const struct jfield *f = jget(o, key);
    if (!f || f->type == J_NULL)
        return dflt;
    return f->type == J_STR ? strtol(f->str, NULL, 10) : (long)f->num;
}

/* ---- the shim's state --------------------------------------------------------------------- */

enum mode {
    M_REQUEST,            /* waiting for the request line */
    M_ATTACH,             /* an attach session: output frames out, stdin bytes in */
    M_WAIT,               /* answered when the container has exited */
    M_DONE,               /* answered: closed once its reply is flushed */
};

struct conn {
    struct conn *next;
    int fd, token;
    enum mode mode;
    struct buf in, out;
    bool want[3];         /* attach: the streams it gets, [STDOUT] and [STDERR] */
    bool stdin;           /* attach: its bytes go to the container's stdin */
    bool closing;         /* close once out is flushed */
    bool eof;             /* the client half-closed */
    bool detached;        /* "detach" named its token: its EOF leaves stdin open */
    bool dead;            /* closed; freed at the top of the loop */
};

static struct {
    /* the command line */
    const char *id, *state_dir, *cgroup_path;
    const char *cgroup_mounts[MAX_MOUNTS];
    int n_mounts;
    bool tty, open_stdin, stdin_once;
    double start_timeout, linger;
    /* file descriptors */
    int ep, sig_fd, listen_fd, helper_fd, result_fd, log_fd;
    /* a spare (--job-fd): the job comes from the daemon; the init is a spare container
     * init of ours (--init-fd, --init-pid) and helper_fd is its channel (init_mode) */
    int job_fd, nice;
    bool init_mode;
    const char *spare_cgroup;  /* --spare-cgroup: the spare init's own cgroup, to rename */
    bool at_spare[MAX_MOUNTS]; /* the container's cgroup there is the spare's (cgroup2: no rename) */
    bool autostart;            /* the job's "start": start the init as soon as it is ready */
    int mntns_fd;              /* the container's mount namespace, held until its exit is told */
    bool cleanup_pending;      /* exited: clean up once the exit is told (cleanup()) */
    bool await_wait;           /* ... and so stay, after the exit, until a "wait" came */
    int out_fd[3];        /* the container's output, [STDOUT] and [STDERR]; a pty master is [STDOUT] */
    int stdin_fd;         /* the container's stdin: a pipe, the pty master, or -1 */
    struct buf stdin_buf; /* stdin bytes not written yet */
    bool stdin_close_pending, paused;
    struct buf partial[3];/* the log's unterminated line of each stream */
    /* the container */
    bool ready;           /* the helper (or the init) reported the init ready */
    bool gave_up;         /* never started: the init was killed */
    pid_t pid;
    const char *status;   /* "created" | "running" | "exited" */
    int exit_code;        /* -1 until the init is reaped */
    char started_at[40], finished_at[40], error[1024];
    double created_at, done_at;
    struct conn *conns;
    int next_token;
} S;

static bool exited(void) { return !strcmp(S.status, "exited"); }
static bool have_output(void) { return S.out_fd[STDOUT] >= 0 || S.out_fd[STDERR] >= 0; }
static bool is_output(int fd) { return fd >= 0 && (fd == S.out_fd[STDOUT] || fd == S.out_fd[STDERR]); }

/* ---- epoll bookkeeping: what each fd is watched for ----------------------------------------- */

static struct { bool on; uint32_t events; } *watches;
static size_t n_watches;

/* Watch fd for events (EPOLLIN, EPOLLOUT; 0 = not at all). Level-triggered. */
static void watch(int fd, uint32_t events) {
    if ((size_t)fd >= n_watches) {
        size_t n = (size_t)fd * 2 + 16;
        watches = xrealloc(watches, n * sizeof *watches);
        memset(watches + n_watches, 0, (n - n_watches) * sizeof *watches);
        n_watches = n;
    }
    if (watches[fd].on ? watches[fd].events == events : !events)
        return;
    struct epoll_event ev = {.events = events, .data.fd = fd};
    int op = !events ? EPOLL_CTL_DEL : watches[fd].on ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(S.ep, op, fd, &ev) < 0)
        warn("epoll_ctl(%d): %s", fd, strerror(errno));
    watches[fd].on = events != 0;
    watches[fd].events = events;
}

/* ---- files: status.json, the result, the json-file log -------------------------------------- */

static void state_fields(struct buf *b) {
    buf_addf(b, "\"status\":\"%s\",\"pid\":%d,\"exit_code\":", S.status, (int)S.pid);
    if (S.exit_code < 0)
        buf_adds(b, "null");
    else
        buf_addf(b, "%d", S.exit_code);
    buf_adds(b, ",\"started_at\":");
    json_cstr(b, S.started_at);
    buf_adds(b, ",\"finished_at\":");
    json_cstr(b, S.finished_at);
    buf_adds(b, ",\"error\":");
    json_cstr(b, S.error);
}

/* <state-dir>/status.json, replaced atomically (a temp file, then rename): a daemon that
 * comes back after we are gone still finds the exit code there. Not fsync'd: it must
 * survive the daemon's death, which the page cache does. */
static void write_status(void) {
    struct buf b = {0};
    char tmp[4096], path[4096];
    buf_adds(&b, "{\"id\":");
    json_cstr(&b, S.id);
    buf_addf(&b, ",\"shim_pid\":%d,", (int)getpid());
    state_fields(&b);
    buf_adds(&b, "}");
    snprintf(tmp, sizeof tmp, "%s/.status.json.tmp", S.state_dir);
    snprintf(path, sizeof path, "%s/status.json", S.state_dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, b.data, b.len) < 0 || close(fd) < 0 || rename(tmp, path) < 0)
        warn("%s: %s", path, strerror(errno));
    buf_free(&b);
}

/* Tell the launcher how the set-up went (one JSON line on the result fd), then close it. */
static void report(const struct buf *line) {
    if (S.result_fd < 0)
        return;
    if (write_all(S.result_fd, line->data, line->len) < 0)
        warn("result: %s", strerror(errno));
    close(S.result_fd);
    S.result_fd = -1;
}

static void socket_path(char out[4096]) { snprintf(out, 4096, "%s/shim.sock", S.state_dir); }

static void cgroup_cleanup(void);
static void spare_cgroup_cleanup(void);

/* The set-up failed: report it and exit. */
static void fail_setup(const char *kind, const char *message) {
    struct buf b = {0};
    char sock[4096];
    buf_adds(&b, "{\"ok\":false,\"error\":");
    json_cstr(&b, message);
    buf_adds(&b, ",\"kind\":");
    json_cstr(&b, kind);
    buf_adds(&b, "}\n");
    report(&b);
    if (S.state_dir) {
        socket_path(sock);
        unlink(sock);
    }
    if (S.init_mode && S.pid > 0) {              /* no helper cleans up after the init */
        kill(S.pid, SIGKILL);
        waitpid(S.pid, NULL, 0);
        cgroup_cleanup();
        spare_cgroup_cleanup();
    }
    exit(1);
}

/* One line of the json-file log: {"log":"...","stream":"stdout","time":"..."} */
static void log_line(int stream, const char *p, size_t n) {
    static struct buf b;
    char now[40];
    rfc3339nano(now);
    b.len = 0;
    buf_adds(&b, "{\"log\":");
    json_str(&b, p, n);
    buf_addf(&b, ",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream == STDOUT ? "stdout" : "stderr", now);
    if (write_all(S.log_fd, b.data, b.len) < 0)
        warn("log: %s", strerror(errno));
    if (b.cap > READ_CHUNK)
        buf_free(&b);
}

/* Log each complete line of a chunk of output, in pieces of at most 16 KiB as docker
 * does (the last piece ends with the newline); keep an unterminated shorter rest. */
static void log_chunk(int stream, const char *data, size_t n) {
    struct buf *part = &S.partial[stream];
    buf_add(part, data, n);
    size_t start = 0;
    for (;;) {
        char *nl = memchr(part->data + start, '\n', part->len - start);
        size_t end = nl ? (size_t)(nl - part->data) + 1 : part->len;
        if (end - start >= MAX_LOG_LINE)
            end = start + MAX_LOG_LINE;
        else if (!nl)
            break;
        log_line(stream, part->data + start, end - start);
        start = end;
    }
    buf_drop(part, start);
}

/* ---- the container's cgroups ----------------------------------------------------------------- */

static int cmp_pid(const void *a, const void *b) {
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* The container's cgroup in hierarchy i: its own path, or the spare's where that could not
 * be renamed (take_spare_cgroup). */
static const char *cg_path(int i) {
    return S.at_spare[i] ? S.spare_cgroup : S.cgroup_path;
}

/* Send sig to every process in the container's cgroups (each once, though on cgroup v1
 * it is listed in every hierarchy); returns how many there were. */
static int cgroup_signal(int sig) {
    pid_t *pids = NULL;
    size_t n = 0, cap = 0;
    char path[4096];
    for (int i = 0; i < S.n_mounts; i++) {
        snprintf(path, sizeof path, "%s%s/cgroup.procs", S.cgroup_mounts[i], cg_path(i));
        FILE *f = fopen(path, "re");
        long pid;
        while (f && fscanf(f, "%ld", &pid) == 1) {
            if (n == cap)
                pids = xrealloc(pids, (cap = cap * 2 + 16) * sizeof *pids);
            pids[n++] = (pid_t)pid;
        }
        if (f)
            fclose(f);
    }
    qsort(pids, n, sizeof *pids, cmp_pid);
    int count = 0;
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || pids[i] != pids[i - 1]) && kill(pids[i], sig) == 0)
            count++;
    free(pids);
    return count;
}

static void reap(void);

/* After the exit: kill what is left in the container's cgroups, and remove them, with the
 * ancestors left empty (the cgroup parent, e.g. /dockyard). */
static void cgroup_cleanup(void) {
    char path[4096];
    if (!S.cgroup_path || !S.n_mounts)
        return;
    for (int i = 0; i < S.n_mounts; i++) {       /* cgroup v2 kills a whole cgroup at once */
        snprintf(path, sizeof path, "%s%s/cgroup.kill", S.cgroup_mounts[i], cg_path(i));
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (write(fd, "1", 1) < 0)
                warn("%s: %s", path, strerror(errno));
            close(fd);
        }
    }
    /* elsewhere, kill until none is left: one may fork while the list is read */
    for (int round = 0; round < 200 && cgroup_signal(SIGKILL) > 0; round++) {
        reap();
        nap_ms(1);
    }
    double deadline = now_mono() + 5.0;          /* killed processes take a moment to leave */
    for (int i = 0; i < S.n_mounts; i++) {
        size_t root = strlen(S.cgroup_mounts[i]);
        snprintf(path, sizeof path, "%s%s", S.cgroup_mounts[i], cg_path(i));
        while (rmdir(path) < 0 && errno == EBUSY && now_mono() < deadline) {
            reap();
            nap_ms(2);
        }
        if (access(path, F_OK) == 0) {
            warn("cgroup clean-up: rmdir %s: %s", path, strerror(errno));
            continue;
        }
        char *slash;
        while ((slash = strrchr(path + root, '/')) && slash > path + root) {
            *slash = 0;
            if (rmdir(path) < 0)
                break;
        }
    }
}

/* ---- client connections ------------------------------------------------------------------------- */

static void maybe_resume(void);

static void update_conn(struct conn *c) {
    if (c->dead)
        return;
    uint32_t want = c->eof ? 0 : EPOLLIN;
    if (c->out.len)
        want |= EPOLLOUT;
    if (c->stdin && c->mode == M_ATTACH && S.stdin_buf.len > HIGH_WATER)
        want &= ~(uint32_t)EPOLLIN;              /* the container reads its stdin too slowly */
    watch(c->fd, want);
}

static void close_conn(struct conn *c) {
    if (c->dead)
        return;
    watch(c->fd, 0);
    close(c->fd);
    c->dead = true;
    c->mode = M_DONE;
    buf_free(&c->in);
    buf_free(&c->out);
    maybe_resume();
}

static void flush_conn(struct conn *c) {
    if (c->dead)
        return;
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {                             /* the client is gone */
            close_conn(c);
            return;
        }
        buf_drop(&c->out, (size_t)n);
    }
    if (!c->out.len && c->closing) {
        close_conn(c);
        return;
    }
    update_conn(c);
    maybe_resume();
}

/* One reply line; the connection is closed once it is flushed. */
static void reply(struct conn *c, const struct buf *msg) {
    buf_add(&c->out, msg->data, msg->len);
    buf_add(&c->out, "\n", 1);
    c->mode = M_DONE;
    c->closing = true;
    flush_conn(c);
}

static void reply_error(struct conn *c, const char *kind, const char *fmt, ...) {
    char text[1024];
    struct buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    buf_adds(&b, "{\"ok\":false,\"error\":");
    json_cstr(&b, text);
    buf_adds(&b, ",\"kind\":");
    json_cstr(&b, kind);
    buf_adds(&b, "}");
    reply(c, &b);
    buf_free(&b);
}

static void reply_state(struct conn *c) {
    struct buf b = {0};
    buf_adds(&b, "{\"ok\":true,");
    state_fields(&b);
    buf_adds(&b, "}");
    reply(c, &b);
    buf_free(&b);
}

static void reply_ok(struct conn *c) {
    struct buf b = {0};
    buf_adds(&b, "{\"ok\":true}");
    reply(c, &b);
    buf_free(&b);
}

/* ---- the container's stdio ------------------------------------------------------------------------ */

/* Read output unless a lagging client paused it; wait for stdin to be writable while
 * stdin bytes are pending. A pty master is both. */
static void update_io(void) {
    for (int s = STDOUT; s <= STDERR; s++) {
        int fd = S.out_fd[s];
        if (fd < 0)
            continue;
        uint32_t want = S.paused ? 0 : EPOLLIN;
        if (fd == S.stdin_fd && S.stdin_buf.len)
            want |= EPOLLOUT;
        watch(fd, want);
    }
    if (S.stdin_fd >= 0 && !is_output(S.stdin_fd))
        watch(S.stdin_fd, S.stdin_buf.len ? EPOLLOUT : 0);
}

/* End the container's stdin once the pending bytes are written (now: drop them). A pty,
 * shared with the output, stays open. */
static void close_stdin(bool now) {
    int fd = S.stdin_fd;
    if (fd < 0 || is_output(fd))
        return;
    if (S.stdin_buf.len && !now) {
        S.stdin_close_pending = true;
        return;
    }
    watch(fd, 0);
    close(fd);
    S.stdin_fd = -1;
    buf_free(&S.stdin_buf);
}

static void drain_stdin(void) {
    if (S.stdin_fd < 0)
        return;
    while (S.stdin_buf.len) {
        ssize_t n = write(S.stdin_fd, S.stdin_buf.data, S.stdin_buf.len);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {                             /* EPIPE: the container closed its stdin */
            buf_free(&S.stdin_buf);
            break;
        }
        buf_drop(&S.stdin_buf, (size_t)n);
    }
    if (!S.stdin_buf.len && S.stdin_close_pending) {
        close_stdin(false);
        return;
    }
    update_io();
    for (struct conn *c = S.conns; c; c = c->next)
        if (c->stdin && c->mode == M_ATTACH)
            update_conn(c);
}

static void feed_stdin(const char *data, size_t n) {
    if (S.stdin_fd < 0)
        return;
    buf_add(&S.stdin_buf, data, n);
    drain_stdin();
}

/* Copy output to every attach session that wants the stream: docker's 8-byte frame
 * header (stream, 0, 0, 0, big-endian length) before it, or raw bytes with a tty. */
static void broadcast(int stream, const char *data, size_t n) {
    unsigned char hdr[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(n >> 24),
                            (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
    bool lagging = false;
    for (struct conn *c = S.conns; c; c = c->next) {
        if (c->dead || c->mode != M_ATTACH || !c->want[stream])
            continue;
        if (!S.tty)
            buf_add(&c->out, hdr, sizeof hdr);
        buf_add(&c->out, data, n);
        flush_conn(c);
        if (!c->dead && c->out.len > HIGH_WATER)
            lagging = true;
    }
    if (lagging && !S.paused) {                  /* backpressure: stop reading the container */
        S.paused = true;
        update_io();
    }
}

static void maybe_resume(void) {
    if (!S.paused)
        return;
    for (struct conn *c = S.conns; c; c = c->next)
        if (!c->dead && c->mode == M_ATTACH && c->out.len > LOW_WATER)
            return;
    S.paused = false;
    update_io();
}

static void finish(void);

static void drop_output(int stream) {
    int fd = S.out_fd[stream];
    watch(fd, 0);
    if (fd == S.stdin_fd) {
        S.stdin_fd = -1;
        buf_free(&S.stdin_buf);
    }
    close(fd);
    S.out_fd[stream] = -1;
}

static void read_output(int stream) {
    static char chunk[READ_CHUNK];
    ssize_t n = read(S.out_fd[stream], chunk, sizeof chunk);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {                 /* the end (EIO from a pty master: its last slave fd closed) */
        drop_output(stream);
        if (!have_output() && S.exit_code >= 0)
            finish();
        return;
    }
    log_chunk(stream, chunk, (size_t)n);
    broadcast(stream, chunk, (size_t)n);
}

static void on_io(int fd, uint32_t events) {
    if (fd == S.stdin_fd && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        drain_stdin();
    for (int s = STDOUT; s <= STDERR; s++)
        if (fd == S.out_fd[s] && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
            read_output(s);
            break;
        }
}

/* ---- the container's end ----------------------------------------------------------------------- */

/* The init has exited and its output is drained: record, answer, clean up, wind down. */
static void finish(void) {
    if (exited())
        return;
    for (int s = STDOUT; s <= STDERR; s++)
        if (S.partial[s].len) {                  /* an unterminated last line */
            log_line(s, S.partial[s].data, S.partial[s].len);
            buf_free(&S.partial[s]);
        }
    S.status = "exited";
    write_status();                              /* before anyone is told */
    if (S.helper_fd >= 0) {
        close(S.helper_fd);
        S.helper_fd = -1;
    }
    for (struct conn *c = S.conns; c; c = c->next) {
        if (c->dead)
            continue;
        if (c->mode == M_WAIT) {
            reply_state(c);
        } else if (c->mode == M_ATTACH) {
            c->mode = M_DONE;
            c->closing = true;
            flush_conn(c);
        }
    }
    close_stdin(false);
    S.cleanup_pending = true;                    /* once the daemon has the exit (loop) */
    S.done_at = now_mono();
}

/* After the exit has been told (to the daemon's wait: with "start" in the job it may come
 * after the exit): let go of the container's mounts, and kill what is left in its cgroups
 * and remove them. Nobody waits on that. */
static void cleanup(void) {
    S.cleanup_pending = false;
    if (S.mntns_fd >= 0) {                       /* the container's mounts go now */
        close(S.mntns_fd);
        S.mntns_fd = -1;
    }
    cgroup_cleanup();
}

static int exit_status(int status) {
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

/* Reap every child that exited: the init, the helper, and orphans of the container
 * reparented to us (a subreaper). Only the init's status matters. */
static void reap(void) {
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p != S.pid || S.exit_code >= 0)
            continue;
        S.exit_code = exit_status(status);
        rfc3339nano(S.finished_at);
        if (!have_output())
            finish();
    }
}

static void on_signal(void) {
    struct signalfd_siginfo si;
    while (read(S.sig_fd, &si, sizeof si) == sizeof si)
        ;
    reap();
}

/* Closing the helper's socket makes it kill the init it holds and exit; the init, now
 * ours, is reaped like any exit. */
static void release_helper(void) {
    if (S.helper_fd >= 0) {
        close(S.helper_fd);
        S.helper_fd = -1;
    }
}

/* A container never started: its daemon died in between, nobody will start or kill it. */
static void give_up(void) {
    S.gave_up = true;
    snprintf(S.error, sizeof S.error, "never started");
    release_helper();
    kill(S.pid, SIGKILL);
}

/* ---- the helper (the Python process that created the init and holds it until start) ---------- */

/* recvmsg one message; the first fd passed with it goes to *fd (others are closed). */
static ssize_t recv_with_fd(int sock, char *data, size_t size, int *fd) {
    union { struct cmsghdr h; char buf[CMSG_SPACE(4 * sizeof(int))]; } u;
    struct iovec iov = {data, size};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    for (struct cmsghdr *h = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        int fds[4];
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        memcpy(fds, CMSG_DATA(h), k * sizeof(int));
        for (size_t i = 0; i < k; i++) {
            if (fd && *fd < 0)
                *fd = fds[i];
            else
                close(fds[i]);
        }
    }
    return n;
}

static void init_ready(int master);
static bool release_init(void);

/* The helper's first message: the init exists (or could not be created). */
static void on_helper(void) {
    static char msg[MAX_REQUEST + 1];
    int master = -1;
    struct jobj r;
    ssize_t n = recv_with_fd(S.helper_fd, msg, MAX_REQUEST, &master);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0)
        fail_setup("Internal", "the shim helper exited");
    msg[n] = 0;
    if (json_parse(msg, (size_t)n, &r) < 0)
        fail_setup("Internal", "a bad message from the shim helper");
    if (!jbool(&r, "ok", false)) {
        const char *kind = jstr(&r, "kind"), *error = jstr(&r, "error");
        fail_setup(kind ? kind : "Internal", error ? error : "container creation failed");
    }
    S.pid = (pid_t)jint(&r, "pid", 0);
    free(r.pool);
    init_ready(master);
}

/* The messages of a container init's channel (runtime/channel.py): a tag byte, then the
 * text of Failed and ExecFailed. */
enum { TAG_READY = 1, TAG_START = 2, TAG_FAILED = 3, TAG_EXEC_FAILED = 4, TAG_JOB = 7 };

/* In init mode, the init's first message: Ready (with the pty master) or Failed. */
static void on_init(void) {
    static char msg[MAX_REQUEST + 1];
    int master = -1;
    ssize_t n = recv_with_fd(S.helper_fd, msg, MAX_REQUEST, &master);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n > 0 && msg[0] == TAG_READY) {
        init_ready(master);
        return;
    }
    if (master >= 0)
        close(master);
    if (n > 0 && msg[0] == TAG_FAILED) {
        msg[n] = 0;
        fail_setup("OCIRuntimeError", msg + 1);
    }
    fail_setup("OCIRuntimeError", "the container process exited during set-up");
}

/* The init is created and waits for "start": report it. */
static void init_ready(int master) {
    spare_cgroup_cleanup();                      /* what the init left of it, if anything */
    /* Hold the container's mount namespace: when the init exits, unmounting its rootfs and
     * every mount in it then waits for us to let go (after the exit has been reported)
     * instead of delaying the init's exit, and so its report. */
    char ns[64];
    snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int)S.pid);
    S.mntns_fd = open(ns, O_RDONLY | O_CLOEXEC);
    if (S.tty) {
        if (master < 0)
            fail_setup("Internal", "the shim helper sent no pty master");
        S.out_fd[STDOUT] = master;
        S.stdin_fd = S.open_stdin ? master : -1;
        set_nonblocking(master);
    } else if (master >= 0) {
        close(master);
    }
    watch(S.helper_fd, 0);                       /* kept for "start" */
    S.ready = true;
    S.created_at = now_mono();
    if (S.autostart && !release_init())          /* the job said start: nobody attaches first */
        fail_setup("OCIRuntimeError", S.error);
    write_status();
    struct buf b = {0};
    buf_addf(&b, "{\"ok\":true,\"pid\":%d,\"shim_pid\":%d", (int)S.pid, (int)getpid());
    if (S.autostart) {
        buf_adds(&b, ",\"started_at\":");
        json_cstr(&b, S.started_at);
    }
    buf_adds(&b, "}\n");
    report(&b);
    buf_free(&b);
    watch(S.listen_fd, EPOLLIN);
    update_io();
}

/* ---- requests ----------------------------------------------------------------------------------- */

/* "start" in init mode: Start to the init; end-of-file on its channel means it execve'd,
 * ExecFailed that it could not (it exits then: its status is the container's). True when
 * it runs. */
static bool release_init(void) {
    static char msg[MAX_REQUEST + 1];
    int fd = S.helper_fd;
    S.helper_fd = -1;
    ssize_t n = -1;
    static const char start[] = {TAG_START};
    if (send(fd, start, 1, MSG_NOSIGNAL) == 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 60000) == 1)
            n = recv_with_fd(fd, msg, MAX_REQUEST, NULL);
    }
    close(fd);
    if (n == 0) {
        S.status = "running";
        rfc3339nano(S.started_at);
        return true;
    }
    if (n > 0 && msg[0] == TAG_EXEC_FAILED) {
        msg[n] = 0;
        snprintf(S.error, sizeof S.error, "%.1000s", msg + 1);
    } else {
        snprintf(S.error, sizeof S.error, "the container process did not start");
        kill(S.pid, SIGKILL);
    }
    return false;
}

static void start_init(struct conn *c) {
    if (release_init()) {
        write_status();
        reply_state(c);
        return;
    }
    reply_error(c, "OCIRuntimeError", "%s", S.error);
    int status;
    if (S.exit_code < 0 && waitpid(S.pid, &status, 0) == S.pid) {
        S.exit_code = exit_status(status);
        rfc3339nano(S.finished_at);
        if (!have_output())
            finish();
    }
}

/* "start": the helper releases the init (execve) and answers; it exits right after. */
static void do_start(struct conn *c) {
    static char msg[MAX_REQUEST + 1];
    if (strcmp(S.status, "created")) {
        reply_error(c, "Conflict", "cannot start a container that is %s", S.status);
        return;
    }
    if (S.helper_fd < 0) {
        reply_error(c, "Conflict", "the container's init is gone");
        return;
    }
    if (S.init_mode) {
        start_init(c);
        return;
    }
    int fd = S.helper_fd;
    S.helper_fd = -1;
    ssize_t n = -1;
    static const char start[] = "{\"op\":\"start\"}";
    if (send(fd, start, sizeof start - 1, MSG_NOSIGNAL) == (ssize_t)sizeof start - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 60000) == 1)
            n = recv_with_fd(fd, msg, MAX_REQUEST, NULL);
    }
    close(fd);
    struct jobj r = {0};
    const char *kind = "Internal", *error = "the shim helper exited";
    if (n > 0) {
        msg[n] = 0;
        if (json_parse(msg, (size_t)n, &r) == 0 && jbool(&r, "ok", false))
            error = NULL;
        else if (jstr(&r, "error")) {
            error = jstr(&r, "error");
            kind = jstr(&r, "kind") ? jstr(&r, "kind") : kind;
        }
    }
    if (error) {
        /* the init is gone (the helper reaped it): the container ends here */
        snprintf(S.error, sizeof S.error, "%s", error);
        reply_error(c, kind, "%s", S.error);
        free(r.pool);
        if (S.exit_code < 0) {
            S.exit_code = 255;
            rfc3339nano(S.finished_at);
            if (!have_output())
                finish();
        }
        return;
    }
    free(r.pool);
    S.status = "running";
    rfc3339nano(S.started_at);
    write_status();
    reply_state(c);
}

static void do_kill(struct conn *c, int sig, bool all) {
    if (S.exit_code >= 0 || exited()) {
        reply_error(c, "Conflict", "container not running");
        return;
    }
    if (all && S.cgroup_path)
        cgroup_signal(sig);
    if (kill(S.pid, sig) < 0 && errno == ESRCH) {
        reply_error(c, "Conflict", "container not running");
        return;
    }
    if (sig == SIGKILL && !strcmp(S.status, "created"))
        release_helper();                        /* the init is its child until it exits */
    reply_ok(c);
}

static void do_resize(struct conn *c, const char *exec, int height, int width) {
    if (exec && *exec) {
        reply_error(c, "NotFound", "no such exec: %s", exec);
        return;
    }
    if (!S.tty || S.out_fd[STDOUT] < 0) {
        reply_error(c, "Conflict", "no tty to resize");
        return;
    }
    struct winsize ws = {.ws_row = (unsigned short)height, .ws_col = (unsigned short)width};
    if (ioctl(S.out_fd[STDOUT], TIOCSWINSZ, &ws) < 0) {
        reply_error(c, "Internal", "resize: %s", strerror(errno));
        return;
    }
    reply_ok(c);
}

static void do_detach(struct conn *c, int token) {
    for (struct conn *s = S.conns; s; s = s->next)
        if (!s->dead && s->token == token && s->mode == M_ATTACH) {
            s->detached = true;                 /* its hang-up is a detach, not stdin's end */
            reply_ok(c);
            return;
        }
    reply_error(c, "NotFound", "no session %d", token);
}

static void do_attach(struct conn *c, const struct jobj *req) {
    c->want[STDOUT] = jbool(req, "stdout", true);
    c->want[STDERR] = jbool(req, "stderr", true);
    c->stdin = jbool(req, "stdin", false) && S.stdin_fd >= 0;
    struct buf b = {0};
    buf_addf(&b, "{\"ok\":true,\"token\":%d}\n", c->token);
    buf_add(&c->out, b.data, b.len);
    buf_free(&b);
    if (exited())
        c->mode = M_DONE, c->closing = true;
    else
        c->mode = M_ATTACH;
    flush_conn(c);
}

static void dispatch(struct conn *c, const char *line, size_t n) {
    struct jobj req;
    if (json_parse(line, n, &req) < 0) {
        reply_error(c, "InvalidArgument", "invalid request: not a flat JSON object");
        free(req.pool);
        return;
    }
    const char *op = jstr(&req, "op");
    op = op ? op : "";
    if (!strcmp(op, "state"))
        reply_state(c);
    else if (!strcmp(op, "start"))
        do_start(c);
    else if (!strcmp(op, "wait")) {
        S.await_wait = false;
        if (exited())
            reply_state(c);
        else
            c->mode = M_WAIT;                    /* answered by finish() */
    } else if (!strcmp(op, "attach"))
        do_attach(c, &req);
    else if (!strcmp(op, "detach"))
        do_detach(c, (int)jint(&req, "token", 0));
    else if (!strcmp(op, "kill"))
        do_kill(c, (int)jint(&req, "signal", SIGKILL), jbool(&req, "all", false));
    else if (!strcmp(op, "resize"))
        do_resize(c, jstr(&req, "exec"), (int)jint(&req, "height", 0), (int)jint(&req, "width", 0));
    else
        reply_error(c, "InvalidArgument", "unknown op: '%s'", op);
    free(req.pool);
}

/* The client half-closed (or hung up). */
static void conn_eof(struct conn *c) {
    c->eof = true;
    if (c->mode == M_ATTACH) {
        /* its stdin ended; the output flows on until the exit */
        if (c->stdin && S.stdin_once && !c->detached)
            close_stdin(false);
        if (c->detached)
            close_conn(c);
        else
            update_conn(c);
    } else if (c->mode == M_DONE && c->out.len) {
        c->closing = true;
        update_conn(c);
    } else {
        close_conn(c);                           /* a waiter, or a caller that hung up */
    }
}

static void read_conn(struct conn *c) {
    static char chunk[READ_CHUNK];
    ssize_t n = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n < 0)
        buf_free(&c->out);                       /* reset: nothing more can be sent either */
    if (n <= 0) {
        conn_eof(c);
        return;
    }
    if (c->mode == M_ATTACH) {
        if (c->stdin)
            feed_stdin(chunk, (size_t)n);
        return;
    }
    if (c->mode != M_REQUEST)
        return;                                  /* nothing more is expected from it */
    buf_add(&c->in, chunk, (size_t)n);
    char *nl = memchr(c->in.data, '\n', c->in.len);
    if (!nl) {
        if (c->in.len > MAX_REQUEST)
            reply_error(c, "InvalidArgument", "request too long");
        return;
    }
    struct buf line = {0}, rest = {0};
    size_t len = (size_t)(nl - c->in.data);
    buf_add(&line, c->in.data, len);
    buf_add(&line, "", 1);                       /* NUL-terminated for the parser */
    buf_add(&rest, nl + 1, c->in.len - len - 1); /* stdin bytes sent right after an attach */
    buf_free(&c->in);
    dispatch(c, line.data, len);
    if (rest.len && !c->dead && c->stdin && c->mode == M_ATTACH)
        feed_stdin(rest.data, rest.len);
    buf_free(&line);
    buf_free(&rest);
}

static void on_conn(struct conn *c, uint32_t events) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->out.len)
        flush_conn(c);
    if (!c->dead && !c->eof && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        read_conn(c);
}

static void on_accept(void) {
    int fd;
    while ((fd = accept4(S.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct conn *c = xrealloc(NULL, sizeof *c);
        *c = (struct conn){.next = S.conns, .fd = fd, .token = S.next_token++};
        S.conns = c;
        watch(fd, EPOLLIN);
    }
}

/* ---- the loop ---------------------------------------------------------------------------------- */

static void sweep_conns(void) {
    for (struct conn **pp = &S.conns; *pp;) {
        struct conn *c = *pp;
        if (c->dead) {
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

static bool idle(void) {
    for (struct conn *c = S.conns; c; c = c->next)
        if (!c->dead && (c->mode != M_DONE || c->out.len))
            return false;
    return true;
}

static void handle(int fd, uint32_t events) {
    if (fd == S.sig_fd)
        on_signal();
    else if (fd == S.listen_fd)
        on_accept();
    else if (fd == S.helper_fd && !S.ready)
        S.init_mode ? on_init() : on_helper();
    else if (is_output(fd) || fd == S.stdin_fd)
        on_io(fd, events);
    else
        for (struct conn *c = S.conns; c; c = c->next)
            if (!c->dead && c->fd == fd) {
                on_conn(c, events);
                break;
            }
}

static void loop(void) {
    struct epoll_event evs[32];
    for (;;) {
        sweep_conns();
        if (S.cleanup_pending && !S.await_wait)
            cleanup();
        if (exited() && !have_output() && idle() && !S.await_wait)
            return;
        int timeout = -1;
        double now = now_mono();
        if (S.done_at > 0) {                     /* linger for clients still reading */
            double left = S.done_at + S.linger - now;
            if (left <= 0)
                return;
            timeout = (int)(left * 1000) + 1;
        } else if (S.ready && !S.gave_up && !strcmp(S.status, "created")) {
            double left = S.created_at + S.start_timeout - now;
            if (left <= 0) {
                give_up();
                continue;
            }
            timeout = (int)(left * 1000) + 1;
        }
        int n = epoll_wait(S.ep, evs, 32, timeout);
        if (n < 0 && errno != EINTR) {
            warn("epoll_wait: %s", strerror(errno));
            exit(1);
        }
        for (int i = 0; i < n; i++)
            handle(evs[i].data.fd, evs[i].events);
    }
}

/* ---- the command line ---------------------------------------------------------------------------- */

static void usage(void) {
    fputs("usage: dockyard-shim --id ID --state-dir DIR --listen-fd N --helper-fd N --log-fd N\n"
          "         [--result-fd N] [--stdin-fd N] [--stdout-fd N] [--stderr-fd N]\n"
          "         [--tty] [--open-stdin] [--stdin-once] [--cgroup-path PATH]\n"
          "         [--cgroup-mount DIR]... [--start-timeout SECONDS] [--linger SECONDS]\n"
          "       dockyard-shim --job-fd N --init-fd N --init-pid N [--nice N]\n"
          "         [--spare-cgroup PATH]\n"
          "         [--cgroup-mount DIR]... [--linger SECONDS]\n"
          "Started by dockyard's launcher (runtime/shim.py, exec_native and\n"
          "exec_native_spare), not by hand.\n",
          stderr);
    exit(2);
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tty")) { S.tty = true; continue; }
        if (!strcmp(a, "--open-stdin")) { S.open_stdin = true; continue; }
        if (!strcmp(a, "--stdin-once")) { S.stdin_once = true; continue; }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--id")) S.id = v;
        else if (!strcmp(a, "--state-dir")) S.state_dir = v;
        else if (!strcmp(a, "--listen-fd")) S.listen_fd = atoi(v);
        else if (!strcmp(a, "--helper-fd")) S.helper_fd = atoi(v);
        else if (!strcmp(a, "--result-fd")) S.result_fd = atoi(v);
        else if (!strcmp(a, "--log-fd")) S.log_fd = atoi(v);
        else if (!strcmp(a, "--stdin-fd")) S.stdin_fd = atoi(v);
        else if (!strcmp(a, "--stdout-fd")) S.out_fd[STDOUT] = atoi(v);
        else if (!strcmp(a, "--stderr-fd")) S.out_fd[STDERR] = atoi(v);
        else if (!strcmp(a, "--cgroup-path")) S.cgroup_path = v;
        else if (!strcmp(a, "--cgroup-mount") && S.n_mounts < MAX_MOUNTS) S.cgroup_mounts[S.n_mounts++] = v;
        else if (!strcmp(a, "--start-timeout")) S.start_timeout = atof(v);
        else if (!strcmp(a, "--linger")) S.linger = atof(v);
        else if (!strcmp(a, "--job-fd")) S.job_fd = atoi(v);
        else if (!strcmp(a, "--init-fd")) S.helper_fd = atoi(v), S.init_mode = true;
        else if (!strcmp(a, "--init-pid")) S.pid = (pid_t)atoi(v);
        else if (!strcmp(a, "--nice")) S.nice = atoi(v);
        else if (!strcmp(a, "--spare-cgroup")) S.spare_cgroup = v;
        else usage();
    }
    if (S.job_fd >= 0 ? !S.init_mode || S.pid <= 0
                      : !S.id || !S.state_dir || S.listen_fd < 0 || S.helper_fd < 0 || S.log_fd < 0)
        usage();
}

/* ---- a spare: waiting for the job ------------------------------------------------------------ */

/* A copy of a cgroup path as "/a/b" (empty parts dropped), or NULL if it is empty or has
 * a "." or ".." part: then the cgroup is not ours to clean up (the init refuses it too). */
static const char *clean_cgroup_path(const char *path) {
    if (!path)
        return NULL;
    struct buf b = {0};
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (!n)
            break;
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            buf_free(&b);
            return NULL;
        }
        buf_adds(&b, "/");
        buf_add(&b, p, n);
        p += n;
    }
    if (!b.len)
        return NULL;
    buf_add(&b, "", 1);                          /* the NUL */
    return b.data;
}

/* mkdir -p, mode 0755 (the umask applies), as Python's os.makedirs(exist_ok=True). */
static int mkdir_p(const char *path) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int open_or_die(const char *path, int flags, mode_t mode) {
    int fd = open(path, flags | O_CLOEXEC, mode);
    if (fd < 0) {
        char msg[4200];
        snprintf(msg, sizeof msg, "open %s: %s", path, strerror(errno));
        fail_setup("Internal", msg);
    }
    return fd;
}

/* The control socket <state-dir>/shim.sock, mode 0600, listening. A path too long for
 * sun_path is reached through /proc/self/fd/<the directory> (util/unixsock.py does the
 * same for Python). */
static int listen_control(void) {
    char path[4096];
    socket_path(path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int dir = -1;
    if (strlen(path) < sizeof a.sun_path) {
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    } else {
        dir = open(S.state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        snprintf(a.sun_path, sizeof a.sun_path, "/proc/self/fd/%d/shim.sock", dir);
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || chmod(path, 0600) < 0 ||
        listen(fd, 64) < 0) {
        char msg[4200];
        snprintf(msg, sizeof msg, "control socket %s: %s", path, strerror(errno));
        fail_setup("Internal", msg);
    }
    if (dir >= 0)
        close(dir);
    return fd;
}

/* rmdir dir and then its ancestors below root while they are empty (a cgroup parent such
 * as /dockyard goes with its last child). */
static void rmdir_pruning(char *dir, size_t root) {
    if (rmdir(dir) < 0)
        return;
    char *slash;
    while ((slash = strrchr(dir + root, '/')) && slash > dir + root) {
        *slash = 0;
        if (rmdir(dir) < 0)
            break;
    }
}

/* The spare init's cgroup becomes the container's (same parent only): renamed in each v1
 * hierarchy; in the cgroup2 hierarchy of a hybrid host, which has no rename, the spare's
 * cgroup simply is the container's (at_spare; the init agrees: container.plan_job).
 * Where neither holds (another parent, a name taken), the init makes and joins the
 * container's cgroup itself, and the spare's directories, left empty, are removed by
 * spare_cgroup_cleanup once the init is ready. */
static void take_spare_cgroup(void) {
    if (!S.spare_cgroup || !S.cgroup_path)
        return;
    const char *a = strrchr(S.spare_cgroup, '/'), *b = strrchr(S.cgroup_path, '/');
    if (a - S.spare_cgroup != b - S.cgroup_path || strncmp(S.spare_cgroup, S.cgroup_path, (size_t)(a - S.spare_cgroup)))
        return;
    char from[4096], to[4096];
    for (int i = 0; i < S.n_mounts; i++) {
        snprintf(from, sizeof from, "%s%s", S.cgroup_mounts[i], S.spare_cgroup);
        snprintf(to, sizeof to, "%s%s", S.cgroup_mounts[i], S.cgroup_path);
        if (rename(from, to) == 0 || errno == ENOENT)
            continue;
        struct statfs fs;
        if (statfs(S.cgroup_mounts[i], &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
            S.at_spare[i] = true;
        else
            warn("cgroup %s -> %s: %s", from, to, strerror(errno));
    }
}

static void spare_cgroup_cleanup(void) {
    if (!S.spare_cgroup)
        return;
    char dir[4096];
    double deadline = now_mono() + 2.0;          /* a process just gone may still count */
    for (int i = 0; i < S.n_mounts; i++) {
        if (S.at_spare[i])                       /* the container's: cgroup_cleanup's */
            continue;
        snprintf(dir, sizeof dir, "%s%s", S.cgroup_mounts[i], S.spare_cgroup);
        int r;
        while ((r = rmdir(dir)) < 0 && errno == EBUSY && now_mono() < deadline)
            nap_ms(2);
        if (r < 0 && errno != ENOENT)
            continue;
        size_t root = strlen(S.cgroup_mounts[i]);
        char *slash = strrchr(dir + root, '/');      /* then the parent, if left empty */
        if (slash && slash > dir + root) {
            *slash = 0;
            rmdir_pruning(dir, root);
        }
    }
}

/* A spare: tell the daemon we are ready (at the priority we were made from), wait for the
 * job (the shim config as JSON, with the fd to report on), set up what the Python shim
 * would have (state dir, our own log, the container's log and stdio pipes, the control
 * socket), and hand the config and the stdio to the spare init (a Job message). */
static void receive_job(void) {
    static char job[MAX_REQUEST + 1];
    int result = -1;
    if (S.nice != INT32_MIN)
        setpriority(PRIO_PROCESS, 0, S.nice);
    if (send(S.job_fd, "ready", 5, MSG_NOSIGNAL) < 0 && errno != EPIPE)
        warn("ready: %s", strerror(errno));
    struct pollfd p = {S.job_fd, POLLIN, 0};
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    ssize_t n = recv_with_fd(S.job_fd, job + 1, MAX_REQUEST - 1, &result);
    close(S.job_fd);
    S.job_fd = -1;
    if (n <= 0) {                                /* no job: the daemon went away */
        kill(S.pid, SIGKILL);
        waitpid(S.pid, NULL, 0);
        spare_cgroup_cleanup();
        exit(0);
    }
    S.result_fd = result;
    errno = 0;                                   /* the spare init runs as we do from now on */
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno == 0)
        setpriority(PRIO_PROCESS, (id_t)S.pid, nice);
    struct jobj cfg;
    if (json_parse(job + 1, (size_t)n, &cfg) < 0 || !jstr(&cfg, "id") ||
        !jstr(&cfg, "state_dir") || !jstr(&cfg, "log_path"))
        fail_setup("Internal", "a bad job for the shim");
    S.id = jstr(&cfg, "id");                     /* (cfg.pool lives as long as we do) */
    S.state_dir = jstr(&cfg, "state_dir");
    S.tty = jbool(&cfg, "tty", false);
    S.open_stdin = jbool(&cfg, "open_stdin", false);
    S.stdin_once = jbool(&cfg, "stdin_once", false);
    S.cgroup_path = clean_cgroup_path(jstr(&cfg, "cgroup_path"));
    take_spare_cgroup();
    S.start_timeout = (double)jint(&cfg, "start_timeout", (long)S.start_timeout);
    S.autostart = S.await_wait = jbool(&cfg, "start", false);
    if (mkdir_p(S.state_dir) < 0) {
        char msg[4200];
        snprintf(msg, sizeof msg, "mkdir %s: %s", S.state_dir, strerror(errno));
        fail_setup("Internal", msg);
    }
    char path[4096];                             /* our own diagnostics: shim.log, as in Python */
    snprintf(path, sizeof path, "%s/shim.log", S.state_dir);
    int own = open_or_die(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null = open_or_die("/dev/null", O_RDONLY, 0);
    dup2(null, 0), dup2(own, 1), dup2(own, 2);
    close(null), close(own);
    S.log_fd = open_or_die(jstr(&cfg, "log_path"), O_WRONLY | O_APPEND | O_CREAT, 0640);
    int child[3] = {-1, -1, -1};
    if (!S.tty) {
        int pin[2] = {-1, -1}, pout[2], perr[2];
        if (S.open_stdin ? pipe2(pin, O_CLOEXEC) : (pin[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
            fail_setup("Internal", "stdin pipe");
        if (pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0)
            fail_setup("Internal", "output pipes");
        child[0] = pin[0], child[1] = pout[1], child[2] = perr[1];
        S.stdin_fd = pin[1];
        S.out_fd[STDOUT] = pout[0];
        S.out_fd[STDERR] = perr[0];
    }
    job[0] = TAG_JOB;                            /* the config, as it came, to the init */
    union { struct cmsghdr h; char buf[CMSG_SPACE(3 * sizeof(int))]; } u;
    struct iovec iov = {job, (size_t)n + 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (!S.tty) {
        m.msg_control = u.buf;
        m.msg_controllen = sizeof u.buf;
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(3 * sizeof(int));
        memcpy(CMSG_DATA(h), child, 3 * sizeof(int));
    }
    if (sendmsg(S.helper_fd, &m, MSG_NOSIGNAL) < 0)
        fail_setup("Internal", "the spare container init is gone");
    for (int i = 0; i < 3; i++)
        if (child[i] >= 0)
            close(child[i]);
    S.listen_fd = listen_control();
}

int main(int argc, char **argv) {
    S.listen_fd = S.helper_fd = S.result_fd = S.log_fd = S.stdin_fd = S.job_fd = S.mntns_fd = -1;
    S.nice = INT32_MIN;
    S.out_fd[0] = S.out_fd[STDOUT] = S.out_fd[STDERR] = -1;
    S.exit_code = -1;
    S.status = "created";
    S.start_timeout = 120.0;                     /* a container never started is given up */
    S.linger = 5.0;                              /* seconds to wait for slow clients after the exit */
    S.next_token = 1;
    parse_args(argc, argv);
    if (S.job_fd >= 0)
        receive_job();

    /* Dispositions come from the Python parent: we reap (SIGCHLD must not be ignored),
     * and a client that hangs up must not kill us (SIGPIPE is). */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);   /* already set by our parent; kept by execve */
    S.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    S.ep = epoll_create1(EPOLL_CLOEXEC);
    if (S.sig_fd < 0 || S.ep < 0) {
        warn("signalfd/epoll: %s", strerror(errno));
        return 1;
    }
    set_nonblocking(S.listen_fd);
    set_nonblocking(S.helper_fd);
    set_nonblocking(S.stdin_fd);
    set_nonblocking(S.out_fd[STDOUT]);
    set_nonblocking(S.out_fd[STDERR]);
    watch(S.sig_fd, EPOLLIN);
    watch(S.helper_fd, EPOLLIN);                 /* the control socket waits for the init */
    reap();                                      /* anything that exited before the signalfd */
    loop();
    if (S.cleanup_pending)                       /* (no wait came before the linger ran out) */
        cleanup();
    char sock[4096];
    socket_path(sock);
    unlink(sock);                                /* clients see that we are gone; status.json stays */
    return 0;
}
