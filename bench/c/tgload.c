/* The benchmark's own HTTP/1.1 load generator, for what wrk cannot do: time to first token, and a fixed
 * request rate (open loop).
 *
 *   closed loop:  tgload -p PORT -f REQS -c CONNS -d SECS [-t THREADS]
 *                 CONNS keep-alive connections, each sending its next request as soon as the last answer ended.
 *   open loop:    tgload -p PORT -f REQS -R RATE -d SECS [-c PREOPEN] [-m MAXCONNS]
 *                 request k is due at start + k/RATE whatever happened before (a timerfd, ns precision); it
 *                 goes out on an idle keep-alive connection, a new one if none is idle (up to MAXCONNS), else
 *                 waits in a queue. Latency is counted from the time it was due, so a stall is not hidden
 *                 (no coordinated omission). After SECS no new request is due and the ones in flight get
 *                 up to 5 s to finish (counted as timeouts otherwise).
 *
 * REQS holds one or more complete HTTP requests separated by a NUL byte; in the closed loop connection i
 * starts with request i and then takes the next one each time (modulo their number); in the open loop
 * request k is request k modulo their number.
 *
 * Per answer: latency (request sent or due -> last byte), and time to first body byte (for an SSE stream,
 * the first `data:` event: its first byte opens the body). Answers are parsed (Content-Length or chunked);
 * `-s` expects streams and counts an answer whose body does not end with `data: [DONE]` as incomplete.
 *
 * Prints one JSON object: requests, rps, errors, non2xx, incomplete, timeouts, latency and ttft percentiles
 * in ms, and for the open loop the rate it kept (sent / duration) and how late sends were (send_lag).
 *
 * Build: cc -O2 -pthread -o tgload tgload.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16

static int opt_port, opt_conns = 0, opt_threads = 1, opt_expect_stream = 0, opt_max_conns = 4096;
static double opt_duration = 5, opt_rate = 0;
static char **reqs;
static size_t *req_lens;
static int req_count;
static uint64_t t_start, t_end;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

typedef struct { uint64_t *v; size_t n, cap; } samples;

static void push(samples *s, uint64_t x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) die("realloc");
    }
    s->v[s->n++] = x;
}

enum { P_IDLE, P_HEAD, P_BODY_CL, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_CRLF, P_TRAILER };

typedef struct conn conn;
typedef struct worker worker;

struct conn {
    int fd;
    worker *w;
    int connecting;
    int req;                  /* request index in use */
    const char *out; size_t out_len, out_off;
    uint64_t started;         /* sent (closed loop) or due (open loop) */
    uint64_t first_body;      /* 0 until the first body byte */
    int state, status, chunked, close_after;
    long remaining;           /* body bytes (Content-Length) or chunk bytes left */
    char head[16384]; size_t head_len;
    long chunk_size; int size_done; int trailer_line;
    char tail[16]; int tail_len;
    conn *next_idle;
};

struct worker {
    int epfd, tfd;
    conn **conns; int nconns;
    /* open loop */
    conn *idle;
    uint64_t *pending; size_t pending_head, pending_len, pending_cap; /* due times waiting for a connection */
    uint64_t next_due, sent, due_count;
    int stopping;
    /* results */
    samples latency, ttft, lag;
    uint64_t requests, errors, non2xx, incomplete, timeouts, first_bytes, bytes;
};

static worker workers[MAX_THREADS];
static struct sockaddr_in target;

/* ---- connections ----------------------------------------------------------------------------------- */

static int open_socket(int blocking) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) die("connect");
    if (blocking) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static conn *new_conn(worker *w, int fd, int connecting) {
    conn *c = calloc(1, sizeof *c);
    c->fd = fd; c->w = w; c->connecting = connecting; c->state = P_IDLE;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
    w->conns = realloc(w->conns, (size_t)(w->nconns + 1) * sizeof *w->conns);
    w->conns[w->nconns++] = c;
    return c;
}

static void try_write(conn *c) {
    if (c->connecting || !c->out) return;
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) { c->out_off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        return; /* EAGAIN: EPOLLOUT (edge-triggered) will call again; an error shows up on read */
    }
    c->out = NULL;
}

static void send_request(conn *c, int req, uint64_t started) {
    c->req = req;
    c->out = reqs[req]; c->out_len = req_lens[req]; c->out_off = 0;
    c->started = started; c->first_body = 0;
    c->state = P_HEAD; c->head_len = 0; c->status = 0; c->chunked = 0; c->close_after = 0;
    c->remaining = 0; c->tail_len = 0;
    try_write(c);
}

static void open_loop_dispatch(worker *w, uint64_t now);

/* A connection died (or the server closes it): count what it carried, and replace it by a fresh one. */
static void reconnect(conn *c) {
    worker *w = c->w;
    if (c->state != P_IDLE) w->errors++;
    if (opt_rate > 0)
        for (conn **pp = &w->idle; *pp; pp = &(*pp)->next_idle) if (*pp == c) { *pp = c->next_idle; break; }
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = open_socket(0);
    c->connecting = 1;
    c->state = P_IDLE;
    c->out = NULL;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

/* The connection is free for the next request. */
static void idle(conn *c, uint64_t now) {
    worker *w = c->w;
    if (opt_rate > 0) {
        c->next_idle = w->idle; w->idle = c;
        open_loop_dispatch(w, now);
    } else if (now < t_end) {
        send_request(c, (c->req + 1) % req_count, now); /* each connection walks through the requests */
    }
}

static void completed(conn *c, uint64_t now) {
    worker *w = c->w;
    c->state = P_IDLE;
    if (opt_rate > 0 || now <= t_end) {
        w->requests++;
        push(&w->latency, now - c->started);
        if (c->status < 200 || c->status > 399) w->non2xx++;
        if (opt_expect_stream && !(c->tail_len >= 14 && memmem(c->tail, (size_t)c->tail_len, "[DONE]", 6))) w->incomplete++;
    }
    if (!c->close_after) idle(c, now); /* else the caller reconnects it */
}

static void body_bytes(conn *c, const char *p, size_t n, uint64_t now) {
    if (n == 0) return;
    if (!c->first_body) {
        c->first_body = now;
        c->w->first_bytes++;
        /* counted now, not when the answer ends: a stream held open past the deadline still has its TTFT */
        if (opt_rate > 0 || now <= t_end) push(&c->w->ttft, now - c->started);
    }
    if (n >= sizeof c->tail) { memcpy(c->tail, p + n - sizeof c->tail, sizeof c->tail); c->tail_len = sizeof c->tail; return; }
    int keep = (int)sizeof c->tail - (int)n;
    if (c->tail_len > keep) { memmove(c->tail, c->tail + c->tail_len - keep, (size_t)keep); c->tail_len = keep; }
    memcpy(c->tail + c->tail_len, p, n);
    c->tail_len += (int)n;
}

static int parse_head(conn *c) {
    char *h = c->head;
    h[c->head_len] = 0;
    if (strncmp(h, "HTTP/1.", 7) != 0) return -1;
    c->status = atoi(h + 9);
    long length = -1;
    for (char *line = strstr(h, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (strncasecmp(l, "content-length:", 15) == 0) length = strtol(l + 15, NULL, 10);
        else if (strncasecmp(l, "transfer-encoding:", 18) == 0) {
            char *word = strcasestr(l, "chunked"), *eol = strstr(l, "\r\n");
            if (word && word < eol) c->chunked = 1;
        }
        else if (strncasecmp(l, "connection:", 11) == 0 && strncasecmp(l + 11 + strspn(l + 11, " "), "close", 5) == 0) c->close_after = 1;
    }
    if (c->chunked) { c->state = P_CHUNK_SIZE; c->chunk_size = 0; c->size_done = 0; }
    else if (length >= 0) { c->state = P_BODY_CL; c->remaining = length; }
    else return -1; /* read-until-close bodies are not expected from a gateway */
    return 0;
}

/* Feeds received bytes to the answer's parser; returns -1 on a protocol error, 1 when the answer ended
 * with `Connection: close`. */
static int feed(conn *c, const char *p, size_t n, uint64_t now) {
    while (n > 0) {
        switch (c->state) {
        case P_IDLE:
            return c->close_after ? 1 : -1; /* else bytes nobody asked for */
        case P_HEAD: {
            size_t before = c->head_len;
            size_t take = n < sizeof c->head - 1 - c->head_len ? n : sizeof c->head - 1 - c->head_len;
            if (take == 0) return -1;
            memcpy(c->head + c->head_len, p, take);
            c->head_len += take;
            size_t from = before >= 3 ? before - 3 : 0;
            char *end = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
            if (!end) { p += take; n -= take; break; }
            size_t head_bytes = (size_t)(end - c->head) + 4;
            size_t used = head_bytes - before;
            c->head_len = head_bytes;
            if (parse_head(c) < 0) return -1;
            p += used; n -= used;
            if (c->state == P_BODY_CL && c->remaining == 0) completed(c, now);
            break;
        }
        case P_BODY_CL: {
            size_t take = n < (size_t)c->remaining ? n : (size_t)c->remaining;
            body_bytes(c, p, take, now);
            c->remaining -= (long)take; p += take; n -= take;
            if (c->remaining == 0) completed(c, now);
            break;
        }
        case P_CHUNK_SIZE: {
            char ch = *p++; n--;
            if (ch == '\n') {
                if (c->chunk_size == 0) { c->state = P_TRAILER; c->trailer_line = 0; }
                else { c->state = P_CHUNK_DATA; c->remaining = c->chunk_size; }
                c->chunk_size = 0; c->size_done = 0;
            } else if (ch == ';' || ch == '\r' || ch == ' ') {
                c->size_done = 1;
            } else if (!c->size_done) {
                int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
                if (d < 0) return -1;
                c->chunk_size = c->chunk_size * 16 + d;
            }
            break;
        }
        case P_CHUNK_DATA: {
            size_t take = n < (size_t)c->remaining ? n : (size_t)c->remaining;
            body_bytes(c, p, take, now);
            c->remaining -= (long)take; p += take; n -= take;
            if (c->remaining == 0) { c->state = P_CHUNK_CRLF; c->remaining = 2; }
            break;
        }
        case P_CHUNK_CRLF: {
            char ch = *p++; n--;
            if (ch == '\n') c->state = P_CHUNK_SIZE;
            break;
        }
        case P_TRAILER: {
            char ch = *p++; n--;
            if (ch == '\n') { if (c->trailer_line == 0) completed(c, now); else c->trailer_line = 0; }
            else if (ch != '\r') c->trailer_line++;
            break;
        }
        }
    }
    return c->state == P_IDLE && c->close_after ? 1 : 0;
}

static void on_event(conn *c, uint32_t events) {
    if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0; socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) { c->w->errors++; reconnect(c); return; }
        c->connecting = 0;
        if (c->out) try_write(c);               /* a request queued while it connected */
        else if (c->state == P_IDLE) idle(c, now_ns());
    }
    if (events & EPOLLOUT) try_write(c);
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        char buf[65536];
        for (;;) {
            ssize_t n = read(c->fd, buf, sizeof buf);
            if (n > 0) {
                c->w->bytes += (uint64_t)n;
                int r = feed(c, buf, (size_t)n, now_ns());
                if (r < 0) { c->w->errors += c->state == P_IDLE; reconnect(c); return; }
                if (r > 0) { reconnect(c); return; }
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            reconnect(c); /* closed or reset: an error if an answer was due */
            return;
        }
    }
}

/* ---- open loop ------------------------------------------------------------------------------------- */

static void arm(worker *w, uint64_t due) {
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(due / 1000000000ull);
    its.it_value.tv_nsec = (long)(due % 1000000000ull);
    timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Sends every request that is due on an idle connection, opening new ones while allowed. */
static void open_loop_dispatch(worker *w, uint64_t now) {
    while (w->pending_len > 0) {
        conn *c = w->idle;
        if (c) w->idle = c->next_idle;
        else if (w->nconns < opt_max_conns) c = new_conn(w, open_socket(0), 1); /* the request waits for connect */
        else return;
        uint64_t due = w->pending[w->pending_head];
        w->pending_head = (w->pending_head + 1) % w->pending_cap;
        w->pending_len--;
        push(&w->lag, now - due);
        send_request(c, (int)(w->sent % (uint64_t)req_count), due);
        w->sent++;
    }
}

static void on_rate_timer(worker *w) {
    uint64_t x;
    if (read(w->tfd, &x, sizeof x) < 0) { /* spurious */ }
    uint64_t now = now_ns();
    double interval = 1e9 / opt_rate;
    while (!w->stopping) {
        uint64_t due = t_start + (uint64_t)(interval * (double)w->due_count);
        if (due >= t_end) { w->stopping = 1; break; }
        if (due > now) { arm(w, due); break; }
        if (w->pending_len == w->pending_cap) {
            size_t cap = w->pending_cap ? w->pending_cap * 2 : 1024;
            uint64_t *q = malloc(cap * sizeof *q);
            for (size_t i = 0; i < w->pending_len; i++) q[i] = w->pending[(w->pending_head + i) % w->pending_cap];
            free(w->pending); w->pending = q; w->pending_head = 0; w->pending_cap = cap;
        }
        w->pending[(w->pending_head + w->pending_len) % w->pending_cap] = due;
        w->pending_len++;
        w->due_count++;
    }
    open_loop_dispatch(w, now);
}

/* ---- main loops ------------------------------------------------------------------------------------ */

static int busy(worker *w) {
    for (int i = 0; i < w->nconns; i++) if (w->conns[i]->state != P_IDLE) return 1;
    return w->pending_len > 0;
}

static void *run(void *arg) {
    worker *w = arg;
    struct epoll_event events[512];
    if (opt_rate > 0) arm(w, t_start);
    else {
        uint64_t now = now_ns();
        for (int i = 0; i < w->nconns; i++) send_request(w->conns[i], w->conns[i]->req, now);
    }
    uint64_t drain_until = t_end + 5000000000ull;
    for (;;) {
        uint64_t now = now_ns();
        if (opt_rate > 0) {
            if (w->stopping && (!busy(w) || now >= drain_until)) break;
        } else if (now >= t_end) break;
        uint64_t limit = opt_rate > 0 && w->stopping ? drain_until : t_end;
        int timeout_ms = limit > now ? (int)((limit - now) / 1000000ull) + 1 : 0;
        int n = epoll_wait(w->epfd, events, 512, timeout_ms);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == &w->tfd) on_rate_timer(w);
            else on_event(events[i].data.ptr, events[i].events);
        }
    }
    if (opt_rate > 0) {
        for (int i = 0; i < w->nconns; i++) if (w->conns[i]->state != P_IDLE) w->timeouts++;
        w->timeouts += w->pending_len;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_dist(const char *name, samples *s, int last) {
    if (s->n == 0) { printf("\"%s\":null%s", name, last ? "" : ","); return; }
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < s->n; i++) sum += (double)s->v[i];
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    const char *names[] = {"p50", "p90", "p99", "p999"};
    printf("\"%s\":{", name);
    for (int k = 0; k < 4; k++) {
        size_t rank = (size_t)(qs[k] * (double)s->n + 0.999999); /* nearest rank */
        if (rank < 1) rank = 1;
        if (rank > s->n) rank = s->n;
        printf("\"%s\":%.4f,", names[k], (double)s->v[rank - 1] / 1e6);
    }
    printf("\"mean\":%.4f,\"max\":%.4f,\"count\":%zu}%s", sum / (double)s->n / 1e6, (double)s->v[s->n - 1] / 1e6, s->n, last ? "" : ",");
}

static void merge(samples *into, samples *from) { for (size_t i = 0; i < from->n; i++) push(into, from->v[i]); }

static void load_requests(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *all = malloc((size_t)size + 1);
    if (fread(all, 1, (size_t)size, f) != (size_t)size) die("read");
    fclose(f);
    all[size] = 0;
    for (long start = 0; start < size;) {
        char *nul = memchr(all + start, 0, (size_t)(size - start));
        long end = nul ? nul - all : size;
        if (end > start) {
            reqs = realloc(reqs, (size_t)(req_count + 1) * sizeof *reqs);
            req_lens = realloc(req_lens, (size_t)(req_count + 1) * sizeof *req_lens);
            reqs[req_count] = all + start; req_lens[req_count] = (size_t)(end - start); req_count++;
        }
        start = end + 1;
    }
    if (req_count == 0) { fprintf(stderr, "no request in %s\n", path); exit(2); }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *file = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "h:p:f:c:d:t:R:m:s")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': opt_port = atoi(optarg); break;
        case 'f': file = optarg; break;
        case 'c': opt_conns = atoi(optarg); break;
        case 'd': opt_duration = atof(optarg); break;
        case 't': opt_threads = atoi(optarg); break;
        case 'R': opt_rate = atof(optarg); break;
        case 'm': opt_max_conns = atoi(optarg); break;
        case 's': opt_expect_stream = 1; break;
        default:
            fprintf(stderr, "usage: tgload -p PORT -f REQS (-c CONNS | -R RATE [-c PREOPEN] [-m MAX]) -d SECS [-t THREADS] [-s]\n");
            return 2;
        }
    }
    if (!opt_port || !file || (opt_rate <= 0 && opt_conns <= 0)) { fprintf(stderr, "need -p, -f and -c or -R\n"); return 2; }
    if (opt_rate > 0) opt_threads = 1; /* one schedule, one thread: 500 requests/s is far below its limit */
    if (opt_threads < 1) opt_threads = 1;
    if (opt_threads > MAX_THREADS) opt_threads = MAX_THREADS;
    if (opt_rate <= 0 && opt_threads > opt_conns) opt_threads = opt_conns;
    signal(SIGPIPE, SIG_IGN); /* a peer that closed mid-write is an error to count, not a reason to die */
    load_requests(file);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)opt_port);
    inet_pton(AF_INET, host, &target.sin_addr);

    for (int t = 0; t < opt_threads; t++) {
        workers[t].epfd = epoll_create1(EPOLL_CLOEXEC);
        workers[t].tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &workers[t].tfd};
        epoll_ctl(workers[t].epfd, EPOLL_CTL_ADD, workers[t].tfd, &ev);
    }
    /* Every connection is open before the clock starts. */
    for (int i = 0; i < opt_conns; i++) {
        worker *w = &workers[i % opt_threads];
        conn *c = new_conn(w, open_socket(1), 0);
        c->req = i % req_count;
        if (opt_rate > 0) { c->next_idle = w->idle; w->idle = c; }
    }
    t_start = now_ns() + (opt_rate > 0 ? 1000000ull : 0); /* the first open-loop request is due 1 ms from now */
    t_end = t_start + (uint64_t)(opt_duration * 1e9);
    pthread_t tids[MAX_THREADS];
    for (int t = 1; t < opt_threads; t++) pthread_create(&tids[t], NULL, run, &workers[t]);
    run(&workers[0]);
    for (int t = 1; t < opt_threads; t++) pthread_join(tids[t], NULL);

    worker total = {0};
    for (int t = 0; t < opt_threads; t++) {
        worker *w = &workers[t];
        total.requests += w->requests; total.errors += w->errors; total.non2xx += w->non2xx;
        total.incomplete += w->incomplete; total.timeouts += w->timeouts; total.first_bytes += w->first_bytes;
        total.bytes += w->bytes; total.sent += w->sent; total.nconns += w->nconns;
        merge(&total.latency, &w->latency); merge(&total.ttft, &w->ttft); merge(&total.lag, &w->lag);
    }
    printf("{\"mode\":\"%s\",\"connections\":%d,\"threads\":%d,\"duration_s\":%.3f,\"requests\":%lu,\"rps\":%.1f,"
           "\"errors\":%lu,\"non2xx\":%lu,\"incomplete\":%lu,\"timeouts\":%lu,\"first_bytes\":%lu,\"bytes\":%lu,",
           opt_rate > 0 ? "open" : "closed", total.nconns, opt_threads, opt_duration, (unsigned long)total.requests,
           (double)total.requests / opt_duration, (unsigned long)total.errors, (unsigned long)total.non2xx,
           (unsigned long)total.incomplete, (unsigned long)total.timeouts, (unsigned long)total.first_bytes,
           (unsigned long)total.bytes);
    if (opt_rate > 0) printf("\"rate_target\":%.1f,\"rate_sent\":%.1f,", opt_rate, (double)total.sent / opt_duration);
    print_dist("send_lag_ms", &total.lag, 0);
    print_dist("ttft_ms", &total.ttft, 0);
    print_dist("latency_ms", &total.latency, 1);
    printf("}\n");
    return 0;
}
