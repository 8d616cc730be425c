/* The benchmark's fake upstream: an OpenAI-compatible chat completions endpoint on loopback.
 *
 *   POST (any path), body without "stream": true  ->  a chat.completion JSON with usage, at once.
 *   POST, body with "stream": true                 ->  SSE, chunked: the head and the role event at once,
 *        then --chunks content events --pace-us apart, then (one pace later) the finish event, the usage
 *        event and [DONE]. With --pace-us 0 the whole stream is written at once.
 *   GET /stats                                     ->  counters and how late the paced writes were.
 *   POST /stats/reset                              ->  zeroes them.
 *
 * One epoll loop per thread (--threads, default 2), each with its own SO_REUSEPORT listener and its own
 * timer heap for the paced streams (a timerfd armed at the earliest due write; the writes due within the next
 * 100 µs go out together), so the upstream is not the bottleneck: it costs a few microseconds per request
 * and per event.
 *
 * Build: cc -O2 -pthread -o fakeup fakeup.c      Run: fakeup --port 9000 [--threads 2] [--chunks 50] [--pace-us 2000]
 */
#define _GNU_SOURCE
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
#define LATE_BUCKETS 2000 /* 10 µs buckets: 0 .. 20 ms */
#define BATCH_NS 100000ull

static int opt_port = 0, opt_threads = 2, opt_chunks = 50;
static long opt_pace_us = 2000;

/* Prebuilt wire bytes. */
static char *json_response;
static size_t json_response_len;
static char **steps; /* steps[0] = head + role event; 1..chunks = content events; chunks+1 = the end */
static size_t *step_lens;
static int step_count;

typedef struct conn conn;
typedef struct worker {
    int epfd, lfd, tfd;
    conn **heap; /* min-heap on due */
    int heap_len, heap_cap;
    uint64_t armed; /* due time the timer is armed for (0 = none) */
    conn *graveyard; /* closed connections, freed after the current batch of events */
    /* statistics (read racily by /stats, fine for a benchmark) */
    uint64_t requests, streams, events, late_max_ns;
    uint64_t late[LATE_BUCKETS + 1];
} worker;

struct conn {
    int fd;
    worker *w;
    char *in; size_t in_len, in_cap;
    char *out; size_t out_len, out_off, out_cap;
    int streaming;  /* next step to write, 0 = not streaming */
    int queued;     /* in the heap */
    int dead;       /* closed while queued: freed when popped */
    int want_out;
    uint64_t due;
    conn *next_dead;
};

static worker workers[MAX_THREADS];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

/* ---- bodies ---------------------------------------------------------------------------------------- */

static char *append(char *buf, size_t *len, size_t *cap, const char *data, size_t n) {
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap) *cap = *cap ? *cap * 2 : 4096;
        buf = realloc(buf, *cap);
        if (!buf) die("realloc");
    }
    memcpy(buf + *len, data, n);
    *len += n;
    buf[*len] = 0;
    return buf;
}

/* One SSE event as one HTTP chunk. */
static char *append_event(char *buf, size_t *len, size_t *cap, const char *json) {
    char event[2048], frame[2100];
    int n = snprintf(event, sizeof event, "data: %s\n\n", json);
    int m = snprintf(frame, sizeof frame, "%x\r\n%s\r\n", n, event);
    return append(buf, len, cap, frame, (size_t)m);
}

static const char *words[] = {" The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."};

static void build_bodies(void) {
    char content[4096] = "";
    for (int i = 0; i < 60; i++) strcat(content, words[i % 10]);
    char body[8192];
    int n = snprintf(body, sizeof body,
        "{\"id\":\"chatcmpl-bench0123456789\",\"object\":\"chat.completion\",\"created\":1700000000,"
        "\"model\":\"bench-upstream-2024-08-06\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{\"index\":0,"
        "\"message\":{\"role\":\"assistant\",\"content\":\"%s\",\"refusal\":null},\"logprobs\":null,"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":42,\"completion_tokens\":60,\"total_tokens\":102,"
        "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":"
        "{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},"
        "\"service_tier\":\"default\"}", content + 1);
    json_response = malloc((size_t)n + 512);
    json_response_len = (size_t)snprintf(json_response, (size_t)n + 512,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nopenai-processing-ms: 1\r\n"
        "x-request-id: req_bench\r\n\r\n%s", n, body);

    const char *head = "{\"id\":\"chatcmpl-bench0123456789\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                       "\"model\":\"bench-upstream-2024-08-06\",\"system_fingerprint\":\"fp_bench\",";
    char json[2048];
    step_count = opt_chunks + 2;
    steps = calloc((size_t)step_count, sizeof *steps);
    step_lens = calloc((size_t)step_count, sizeof *step_lens);
    for (int s = 0; s < step_count; s++) {
        char *buf = NULL; size_t len = 0, cap = 0;
        if (s == 0) {
            const char *h = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
                            "Transfer-Encoding: chunked\r\nx-request-id: req_bench\r\n\r\n";
            buf = append(buf, &len, &cap, h, strlen(h));
            snprintf(json, sizeof json, "%s\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                     "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}", head);
            buf = append_event(buf, &len, &cap, json);
        } else if (s <= opt_chunks) {
            snprintf(json, sizeof json, "%s\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"logprobs\":null,"
                     "\"finish_reason\":null}],\"usage\":null}", head, words[(s - 1) % 10]);
            buf = append_event(buf, &len, &cap, json);
        } else {
            snprintf(json, sizeof json, "%s\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                     "\"usage\":null}", head);
            buf = append_event(buf, &len, &cap, json);
            snprintf(json, sizeof json, "%s\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":%d,"
                     "\"total_tokens\":%d,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":"
                     "{\"reasoning_tokens\":0}}}", head, opt_chunks, opt_chunks + 20);
            buf = append_event(buf, &len, &cap, json);
            buf = append_event(buf, &len, &cap, "[DONE]");
            buf = append(buf, &len, &cap, "0\r\n\r\n", 5);
        }
        steps[s] = buf;
        step_lens[s] = len;
    }
}

/* ---- connections ----------------------------------------------------------------------------------- */

static void free_conn(conn *c) { free(c->in); free(c->out); free(c); }

/* A closed connection may still be named by a later event of the same batch, or sit in the pacing heap:
 * it is freed after the batch (bury), or when the heap gives it back. */
static void bury(conn *c) { c->next_dead = c->w->graveyard; c->w->graveyard = c; }

static void close_conn(conn *c) {
    if (c->dead) return;
    close(c->fd);
    c->fd = -1;
    c->dead = 1;
    if (!c->queued) bury(c);
}

static void set_out_interest(conn *c, int want) {
    if (c->want_out == want) return;
    c->want_out = want;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is buffered; returns -1 if the connection died. */
static int flush_out(conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) { c->out_off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { set_out_interest(c, 1); return 0; }
        return -1;
    }
    c->out_off = c->out_len = 0;
    set_out_interest(c, 0);
    return 0;
}

static int send_bytes(conn *c, const char *data, size_t n) {
    if (c->out_len == c->out_off) {
        c->out_off = c->out_len = 0;
        while (n > 0) {
            ssize_t k = write(c->fd, data, n);
            if (k > 0) { data += k; n -= (size_t)k; continue; }
            if (k < 0 && errno == EINTR) continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            return -1;
        }
        if (n == 0) return 0;
    }
    c->out = append(c->out, &c->out_len, &c->out_cap, data, n);
    set_out_interest(c, 1);
    return 0;
}

/* ---- the pacing heap ------------------------------------------------------------------------------- */

static void heap_push(worker *w, conn *c) {
    if (w->heap_len == w->heap_cap) {
        w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 1024;
        w->heap = realloc(w->heap, (size_t)w->heap_cap * sizeof *w->heap);
    }
    int i = w->heap_len++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (w->heap[p]->due <= c->due) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
    c->queued = 1;
}

static conn *heap_pop(worker *w) {
    conn *top = w->heap[0], *last = w->heap[--w->heap_len];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        uint64_t md = last->due;
        if (l < w->heap_len && w->heap[l]->due < md) { m = l; md = w->heap[l]->due; }
        if (r < w->heap_len && w->heap[r]->due < md) m = r;
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (w->heap_len > 0) w->heap[i] = last;
    top->queued = 0;
    return top;
}

static void arm_timer(worker *w) {
    uint64_t due = w->heap_len ? w->heap[0]->due : 0;
    if (due == w->armed) return;
    w->armed = due;
    struct itimerspec its = {0};
    if (due) { its.it_value.tv_sec = (time_t)(due / 1000000000ull); its.it_value.tv_nsec = (long)(due % 1000000000ull); }
    timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- requests -------------------------------------------------------------------------------------- */

static int process_input(conn *c);

static void stats_json(char *buf, size_t cap) {
    uint64_t requests = 0, streams = 0, events = 0, late_max = 0, total = 0;
    static uint64_t late[LATE_BUCKETS + 1];
    memset(late, 0, sizeof late);
    for (int t = 0; t < opt_threads; t++) {
        worker *w = &workers[t];
        requests += w->requests; streams += w->streams; events += w->events;
        if (w->late_max_ns > late_max) late_max = w->late_max_ns;
        for (int b = 0; b <= LATE_BUCKETS; b++) { late[b] += w->late[b]; total += w->late[b]; }
    }
    double p50 = 0, p99 = 0;
    uint64_t seen = 0;
    int got50 = 0;
    for (int b = 0; b <= LATE_BUCKETS && total; b++) {
        seen += late[b];
        if (!got50 && seen * 100 >= total * 50) { p50 = b * 10.0; got50 = 1; }
        if (seen * 100 >= total * 99) { p99 = b * 10.0; break; }
    }
    snprintf(buf, cap, "{\"requests\":%lu,\"streams\":%lu,\"paced_writes\":%lu,\"late_p50_us\":%.0f,"
             "\"late_p99_us\":%.0f,\"late_max_us\":%.0f,\"threads\":%d,\"chunks\":%d,\"pace_us\":%ld}",
             (unsigned long)requests, (unsigned long)streams, (unsigned long)events, p50, p99, late_max / 1000.0,
             opt_threads, opt_chunks, opt_pace_us);
}

static void reset_stats(void) {
    for (int t = 0; t < opt_threads; t++) {
        worker *w = &workers[t];
        w->requests = w->streams = w->events = w->late_max_ns = 0;
        memset(w->late, 0, sizeof w->late);
    }
}

static int is_stream(const char *body, size_t n) {
    const char *p = body, *end = body + n;
    while ((p = memmem(p, (size_t)(end - p), "\"stream\"", 8)) != NULL) {
        p += 8;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p < end && *p == ':') {
            p++;
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
            if (end - p >= 4 && memcmp(p, "true", 4) == 0) return 1;
        }
    }
    return 0;
}

/* Writes step `s` of the stream; schedules the next one or ends the stream. Returns -1 if it died. */
static int stream_step(conn *c, uint64_t now) {
    int s = c->streaming - 1; /* streaming holds step + 1 */
    if (send_bytes(c, steps[s], step_lens[s]) < 0) return -1;
    if (s > 0) c->w->events++;
    if (s + 1 < step_count) {
        c->streaming++;
        if (opt_pace_us == 0) return stream_step(c, now);
        c->due = (s == 0 ? now : c->due) + (uint64_t)opt_pace_us * 1000ull;
        heap_push(c->w, c);
        return 0;
    }
    c->streaming = 0;
    return process_input(c); /* a request that arrived meanwhile */
}

/* Handles every complete request in the input buffer. Returns -1 if the connection must close. */
static int process_input(conn *c) {
    while (!c->streaming && c->in_len > 0) {
        char *head_end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!head_end) return c->in_len > 65536 ? -1 : 0;
        size_t head_len = (size_t)(head_end - c->in) + 4;
        long content_length = 0;
        int chunked = 0;
        for (char *line = memchr(c->in, '\n', head_len); line && line < head_end; line = memchr(line, '\n', (size_t)(head_end - line))) {
            line++;
            if (strncasecmp(line, "content-length:", 15) == 0) content_length = strtol(line + 15, NULL, 10);
            else if (strncasecmp(line, "transfer-encoding:", 18) == 0 && memmem(line, (size_t)(head_end - line), "chunked", 7)) chunked = 1;
        }
        /* The body, de-chunked if need be. */
        char *body = c->in + head_len, *decoded = NULL;
        size_t body_len = 0, consumed;
        if (chunked) {
            size_t pos = head_len, dlen = 0, dcap = 0;
            for (;;) {
                char *eol = memmem(c->in + pos, c->in_len - pos, "\r\n", 2);
                if (!eol) { free(decoded); return 0; }
                long size = strtol(c->in + pos, NULL, 16);
                pos = (size_t)(eol - c->in) + 2;
                if (size == 0) {
                    char *end = memmem(c->in + pos, c->in_len - pos, "\r\n", 2); /* no trailers expected */
                    if (!end) { free(decoded); return 0; }
                    pos = (size_t)(end - c->in) + 2;
                    break;
                }
                if (c->in_len < pos + (size_t)size + 2) { free(decoded); return 0; }
                decoded = append(decoded, &dlen, &dcap, c->in + pos, (size_t)size);
                pos += (size_t)size + 2;
            }
            body = decoded; body_len = dlen; consumed = pos;
        } else {
            if (c->in_len < head_len + (size_t)content_length) return 0;
            body_len = (size_t)content_length;
            consumed = head_len + body_len;
        }
        int rc = 0;
        if (strncmp(c->in, "GET /stats", 10) == 0 || strncmp(c->in, "POST /stats/reset", 17) == 0) {
            char json[1024], resp[1200];
            if (c->in[0] == 'P') reset_stats();
            stats_json(json, sizeof json);
            int n = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                             strlen(json), json);
            rc = send_bytes(c, resp, (size_t)n);
        } else if (strncmp(c->in, "GET ", 4) == 0) {
            const char *r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"object\":\"list\",\"data\":[]}";
            rc = send_bytes(c, r, strlen(r));
        } else if (is_stream(body, body_len)) {
            c->w->requests++;
            c->w->streams++;
            c->streaming = 1;
            rc = 1; /* the stream starts after the input is consumed */
        } else {
            c->w->requests++;
            rc = send_bytes(c, json_response, json_response_len);
        }
        free(decoded);
        memmove(c->in, c->in + consumed, c->in_len - consumed);
        c->in_len -= consumed;
        if (rc < 0) return -1;
        if (rc == 1 && stream_step(c, now_ns()) < 0) return -1;
    }
    return 0;
}

static void on_readable(conn *c) {
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 32768;
            c->in = realloc(c->in, c->in_cap);
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = read(c->fd, c->in + c->in_len, room);
        if (n > 0) {
            c->in_len += (size_t)n;
            if ((size_t)n < room) break; /* drained */
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        close_conn(c);
        return;
    }
    if (process_input(c) < 0) close_conn(c);
}

static void on_timer(worker *w) {
    uint64_t expirations;
    if (read(w->tfd, &expirations, sizeof expirations) < 0) { /* spurious */ }
    w->armed = 0;
    uint64_t now = now_ns();
    /* Every write due within the next BATCH_NS goes out now: fewer wake-ups, events at most that early. */
    while (w->heap_len && w->heap[0]->due <= now + BATCH_NS) {
        conn *c = heap_pop(w);
        if (c->dead) { bury(c); continue; }
        uint64_t late = now > c->due ? now - c->due : 0;
        if (late > w->late_max_ns) w->late_max_ns = late;
        uint64_t b = late / 10000;
        w->late[b > LATE_BUCKETS ? LATE_BUCKETS : b]++;
        if (stream_step(c, now) < 0) close_conn(c);
    }
}

static void *run_worker(void *arg) {
    worker *w = arg;
    struct epoll_event events[256];
    for (;;) {
        arm_timer(w);
        int n = epoll_wait(w->epfd, events, 256, -1);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == &w->lfd) {
                for (;;) {
                    int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *c = calloc(1, sizeof *c);
                    c->fd = fd; c->w = w;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
                }
            } else if (p == &w->tfd) {
                on_timer(w);
            } else {
                conn *c = p;
                if (c->dead) continue;
                if (events[i].events & EPOLLOUT) {
                    if (flush_out(c) < 0) { close_conn(c); continue; }
                }
                if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
            }
        }
        while (w->graveyard) { conn *c = w->graveyard; w->graveyard = c->next_dead; free_conn(c); }
    }
    return NULL;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--port")) opt_port = atoi(v), i++;
        else if (!strcmp(a, "--threads")) opt_threads = atoi(v), i++;
        else if (!strcmp(a, "--chunks")) opt_chunks = atoi(v), i++;
        else if (!strcmp(a, "--pace-us")) opt_pace_us = atol(v), i++;
        else { fprintf(stderr, "usage: fakeup --port P [--threads T] [--chunks N] [--pace-us U]\n"); return 2; }
    }
    if (opt_threads < 1 || opt_threads > MAX_THREADS || opt_chunks < 0) { fprintf(stderr, "bad options\n"); return 2; }
    signal(SIGPIPE, SIG_IGN); /* a peer that closed mid-write is an error to count, not a reason to die */
    build_bodies();
    for (int t = 0; t < opt_threads; t++) {
        worker *w = &workers[t];
        w->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(w->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(w->lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(w->lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
        if (listen(w->lfd, 4096) < 0) die("listen");
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->lfd};
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfd, &ev);
        ev.data.ptr = &w->tfd;
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev);
    }
    printf("fakeup listening on 127.0.0.1:%d (%d threads, %d chunks, pace %ld us)\n", opt_port, opt_threads, opt_chunks, opt_pace_us);
    fflush(stdout);
    pthread_t tids[MAX_THREADS];
    for (int t = 1; t < opt_threads; t++) pthread_create(&tids[t], NULL, run_worker, &workers[t]);
    run_worker(&workers[0]);
    return 0;
}
