/*
 * The channel guide's (docs/ARCHITECTURE.md, Examples) "Streaming Data Between Functions" example in C, across two processes:
 * a producer streams JSON records through a channel to `pipeline::consumer`, which counts them
 * and sums their values.
 *
 *     pipeline serve          registers pipeline::consumer, prints READY once the engine has
 *                             it, and serves until stdin ends or SIGINT/SIGTERM
 *     pipeline produce [N]    creates a channel, triggers pipeline::consumer with the reader's
 *                             ref, writes N records (default 5000) to the writer, closes it and
 *                             prints the consumer's result as one JSON line:
 *                             {"label":"batch-001","count":N,"total":N(N+1)/2}
 *
 * III_URL names the engine (default ws://localhost:49134). See README.md for building.
 *
 * Ownership, as in iii.h: every handle is freed with its _free function and every string the
 * library returns with iii_string_free.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iii.h"

#define DEFAULT_URL "ws://localhost:49134"
#define DEFAULT_RECORDS 5000
#define CHUNK_BYTES (64 * 1024) /* the engine's frame size: what one read or write moves */
#define CONNECT_TIMEOUT_MS 10000
#define IO_TIMEOUT_MS 30000
#define TRIGGER_TIMEOUT_MS 30000

/* ---- small helpers ---------------------------------------------------------------------- */

/* Prints what failed, with the library's message for the last failure on this thread. */
static void report(const char *what, iii_result result)
{
    fprintf(stderr, "pipeline: %s: %s: %s\n", what, iii_result_name(result), iii_last_error_message());
}

/* A growable byte buffer. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buffer;

/* Makes room for `extra` more bytes; 0 on success. */
static int buffer_reserve(buffer *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

/*
 * Where the value of `"key":` starts in `json` (past the colon and any spaces), or NULL.
 * A plain text search, which is enough for the flat objects of this example: it skips a
 * string that merely equals the key (no colon after it) but does not otherwise parse JSON.
 */
static const char *json_value_after(const char *json, const char *key)
{
    size_t key_len = strlen(key);
    for (const char *quote = strchr(json, '"'); quote != NULL; quote = strchr(quote + 1, '"')) {
        if (strncmp(quote + 1, key, key_len) != 0 || quote[1 + key_len] != '"')
            continue;
        const char *p = quote + 2 + key_len;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != ':')
            continue;
        p++;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        return p;
    }
    return NULL;
}

/* The length of the JSON string literal (quotes included) at `p`, or 0 if there is none. */
static size_t json_string_literal_len(const char *p)
{
    if (*p != '"')
        return 0;
    for (size_t i = 1; p[i] != '\0'; i++) {
        if (p[i] == '\\' && p[i + 1] != '\0')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return 0;
}

/* ---- pipeline::consumer ----------------------------------------------------------------- */

/* Answers the invocation with an error naming the failed call. */
static void reply_failure(iii_reply *reply, const char *what, iii_result result)
{
    char message[512];
    snprintf(message, sizeof message, "%s: %s: %s", what, iii_result_name(result), iii_last_error_message());
    iii_reply_error(reply, "consumer_failed", message);
}

/*
 * Input: {"label":"...","reader":<reader ref>}. Reads the whole stream, counts the records and
 * sums their values, and answers {"label":...,"count":...,"total":...}. Runs on one of the
 * library's blocking threads, so it may call the blocking iii functions.
 */
static void consumer_handler(void *userdata, const char *input_json, iii_reply *reply)
{
    iii_worker *worker = userdata;
    iii_reader *reader = NULL;
    iii_result result = iii_reader_open(worker, input_json, "reader", &reader);
    if (result != III_OK) {
        reply_failure(reply, "iii_reader_open", result);
        return;
    }

    /* Read until the writer closes (III_END); anything else is a failure. */
    buffer raw = {0};
    for (;;) {
        if (buffer_reserve(&raw, CHUNK_BYTES + 1) != 0) {
            iii_reader_free(reader);
            free(raw.data);
            iii_reply_error(reply, "consumer_failed", "out of memory");
            return;
        }
        size_t len = 0;
        result = iii_reader_read(reader, (uint8_t *)raw.data + raw.len, CHUNK_BYTES, &len, IO_TIMEOUT_MS);
        if (result != III_OK)
            break;
        raw.len += len;
    }
    if (result != III_END) {
        reply_failure(reply, "iii_reader_read", result);
        iii_reader_free(reader);
        free(raw.data);
        return;
    }
    iii_reader_free(reader);
    raw.data[raw.len] = '\0'; /* room for it was reserved before the last read */

    /* The records are [{"name":"item-1","value":1},...]: one "value" per record. */
    long long count = 0, total = 0;
    for (const char *p = raw.data; (p = json_value_after(p, "value")) != NULL;) {
        char *end;
        total += strtoll(p, &end, 10);
        count++;
        p = end;
    }
    free(raw.data);

    const char *label = json_value_after(input_json, "label");
    size_t label_len = label ? json_string_literal_len(label) : 0;
    char answer[512];
    snprintf(answer, sizeof answer, "{\"label\":%.*s,\"count\":%lld,\"total\":%lld}",
             (int)(label_len ? label_len : 4), label_len ? label : "null", count, total);
    result = iii_reply_ok(reply, answer);
    if (result != III_OK)
        report("iii_reply_ok", result);
}

/* serve: registers the consumer and serves until stdin ends or SIGINT/SIGTERM. */

/* Turns the end of stdin into a SIGTERM for the waiting main thread. */
static void *watch_stdin(void *unused)
{
    (void)unused;
    char scratch[256];
    ssize_t n;
    do
        n = read(STDIN_FILENO, scratch, sizeof scratch);
    while (n > 0 || (n < 0 && errno == EINTR));
    kill(getpid(), SIGTERM);
    return NULL;
}

static int serve(const char *url)
{
    /*
     * SIGINT and SIGTERM are blocked before the library starts any thread (every thread
     * inherits the mask), so they stay pending until sigwait below takes them.
     */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    iii_worker *worker = NULL;
    iii_result result = iii_worker_connect(url, &worker);
    if (result != III_OK) {
        report("iii_worker_connect", result);
        return 1;
    }
    int status = 1;
    result = iii_register_function(worker, "pipeline::consumer", consumer_handler, worker);
    if (result != III_OK) {
        report("iii_register_function", result);
        goto done;
    }
    result = iii_worker_ready(worker, CONNECT_TIMEOUT_MS);
    if (result != III_OK) {
        report("iii_worker_ready", result);
        goto done;
    }
    printf("READY\n");
    fflush(stdout);

    pthread_t watcher;
    if (pthread_create(&watcher, NULL, watch_stdin, NULL) != 0) {
        fprintf(stderr, "pipeline: cannot start the stdin watcher\n");
        goto done;
    }
    pthread_detach(watcher);
    int signal_number;
    sigwait(&stop, &signal_number);
    status = 0;

done:
    iii_worker_free(worker);
    return status;
}

/* ---- produce ------------------------------------------------------------------------------ */

/* The trigger of pipeline::consumer, run on a thread of its own. */
typedef struct {
    iii_worker *worker;
    char *payload;
    char *result_json; /* the consumer's answer, on III_OK */
    iii_result result;
    char error[512];
} consumer_call;

static void *call_consumer(void *arg)
{
    consumer_call *call = arg;
    call->result = iii_trigger(call->worker, "pipeline::consumer", call->payload, TRIGGER_TIMEOUT_MS,
                               &call->result_json);
    if (call->result != III_OK)
        snprintf(call->error, sizeof call->error, "%s", iii_last_error_message());
    return NULL;
}

/* Writes [{"name":"item-1","value":1},...,{"name":"item-N","value":N}] in 64 KiB writes. */
static iii_result write_records(iii_writer *writer, long long records)
{
    static char chunk[CHUNK_BYTES];
    size_t used = 0;
    chunk[used++] = '[';
    for (long long i = 1; i <= records; i++) {
        char record[96];
        int len = snprintf(record, sizeof record, "%s{\"name\":\"item-%lld\",\"value\":%lld}",
                           i > 1 ? "," : "", i, i);
        if (used + (size_t)len > sizeof chunk) {
            iii_result result = iii_writer_write(writer, (const uint8_t *)chunk, used, IO_TIMEOUT_MS);
            if (result != III_OK)
                return result;
            used = 0;
        }
        memcpy(chunk + used, record, (size_t)len);
        used += (size_t)len;
    }
    if (used == sizeof chunk) {
        iii_result result = iii_writer_write(writer, (const uint8_t *)chunk, used, IO_TIMEOUT_MS);
        if (result != III_OK)
            return result;
        used = 0;
    }
    chunk[used++] = ']';
    return iii_writer_write(writer, (const uint8_t *)chunk, used, IO_TIMEOUT_MS);
}

static int produce(const char *url, long long records)
{
    iii_worker *worker = NULL;
    iii_result result = iii_worker_connect(url, &worker);
    if (result != III_OK) {
        report("iii_worker_connect", result);
        return 1;
    }
    int status = 1;
    char *writer_ref = NULL, *reader_ref = NULL;
    iii_writer *writer = NULL;
    consumer_call call = {.worker = worker};

    result = iii_worker_ready(worker, CONNECT_TIMEOUT_MS);
    if (result != III_OK) {
        report("iii_worker_ready", result);
        goto done;
    }
    result = iii_channel_create(worker, CONNECT_TIMEOUT_MS, &writer_ref, &reader_ref);
    if (result != III_OK) {
        report("iii_channel_create", result);
        goto done;
    }
    result = iii_writer_open(worker, writer_ref, NULL, &writer);
    if (result != III_OK) {
        report("iii_writer_open", result);
        goto done;
    }

    const char *format = "{\"label\":\"batch-001\",\"reader\":%s}";
    size_t payload_size = strlen(format) + strlen(reader_ref) + 1;
    call.payload = malloc(payload_size);
    if (call.payload == NULL) {
        fprintf(stderr, "pipeline: out of memory\n");
        goto done;
    }
    snprintf(call.payload, payload_size, format, reader_ref);

    /*
     * The reader's ref must reach the consumer before we write more than the channel holds
     * for a reader that has not connected yet (64 frames in the engine, plus the library's
     * write window); after that a write waits for the reader. Writing everything first and
     * triggering afterwards would therefore only work for small payloads, so the trigger,
     * which blocks until the consumer answers, runs on a thread of its own while this thread
     * writes. This way any number of records streams through with bounded memory.
     */
    pthread_t trigger_thread;
    if (pthread_create(&trigger_thread, NULL, call_consumer, &call) != 0) {
        fprintf(stderr, "pipeline: cannot start the trigger thread\n");
        goto done;
    }
    result = write_records(writer, records);
    if (result == III_OK) {
        result = iii_writer_close(writer, IO_TIMEOUT_MS);
        if (result != III_OK)
            report("iii_writer_close", result);
    } else {
        report("iii_writer_write", result);
        /* Tell the consumer the stream is incomplete instead of leaving it waiting. */
        iii_writer_abort(writer, "producer failed", IO_TIMEOUT_MS);
    }
    pthread_join(trigger_thread, NULL);

    if (call.result != III_OK) {
        fprintf(stderr, "pipeline: iii_trigger pipeline::consumer: %s: %s\n", iii_result_name(call.result),
                call.error);
    } else if (result == III_OK) {
        printf("%s\n", call.result_json);
        status = 0;
    }

done:
    iii_string_free(call.result_json);
    free(call.payload);
    iii_writer_free(writer);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
    iii_worker_free(worker);
    return status;
}

/* ---- main --------------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: pipeline serve | pipeline produce [RECORDS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *url = getenv("III_URL");
    if (url == NULL || *url == '\0')
        url = DEFAULT_URL;

    if (argc == 2 && strcmp(argv[1], "serve") == 0)
        return serve(url);
    if ((argc == 2 || argc == 3) && strcmp(argv[1], "produce") == 0) {
        long long records = DEFAULT_RECORDS;
        if (argc == 3) {
            char *end;
            errno = 0;
            records = strtoll(argv[2], &end, 10);
            if (errno != 0 || *end != '\0' || end == argv[2] || records < 0)
                return usage();
        }
        return produce(url, records);
    }
    return usage();
}
