/*
 * The channel guide's (docs/ARCHITECTURE.md, Examples) "Bidirectional Streaming with Progress" example in C:
 * `transform::coordinator` streams text to `transform::worker` through one channel; the worker
 * reports its progress as text messages and streams the upper-cased text back through a second
 * channel.
 *
 *     bidirectional
 *
 * registers both functions, triggers the coordinator with 200 lines of text (written in 8
 * pieces) and prints its result as one JSON line: the upper-cased text, the progress messages
 * ({"type":"progress","chunks":k} for each chunk the worker read) and the worker's own answer.
 * III_URL names the engine (default ws://localhost:49134). See README.md for building.
 *
 * Ownership, as in iii.h: every handle is freed with its _free function and every string the
 * library returns with iii_string_free.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iii.h"

#define DEFAULT_URL "ws://localhost:49134"
#define LINES 200
#define PIECES 8
#define CHUNK_BYTES (64 * 1024) /* the engine's frame size: what one read moves at most */
#define CONNECT_TIMEOUT_MS 10000
#define IO_TIMEOUT_MS 30000
#define TRIGGER_TIMEOUT_MS 30000

/* ---- small helpers ---------------------------------------------------------------------- */

static void report(const char *what, iii_result result)
{
    fprintf(stderr, "bidirectional: %s: %s: %s\n", what, iii_result_name(result), iii_last_error_message());
}

/* A growable, NUL-terminated byte buffer. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buffer;

/* Makes room for `extra` more bytes and the terminating NUL; 0 on success. */
static int buffer_reserve(buffer *b, size_t extra)
{
    if (b->cap - b->len > extra)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len <= extra)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buffer_append(buffer *b, const char *bytes, size_t len)
{
    if (buffer_reserve(b, len) != 0)
        return -1;
    memcpy(b->data + b->len, bytes, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static int buffer_append_str(buffer *b, const char *s)
{
    return buffer_append(b, s, strlen(s));
}

/* Appends `text` as a JSON string literal (quotes, escapes for '"', '\\' and control bytes). */
static int buffer_append_json_string(buffer *b, const char *text, size_t len)
{
    if (buffer_append(b, "\"", 1) != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        char escaped[8];
        if (c == '"' || c == '\\') {
            snprintf(escaped, sizeof escaped, "\\%c", c);
        } else if (c == '\n') {
            snprintf(escaped, sizeof escaped, "\\n");
        } else if (c < 0x20) {
            snprintf(escaped, sizeof escaped, "\\u%04x", c);
        } else {
            escaped[0] = (char)c;
            escaped[1] = '\0';
        }
        if (buffer_append_str(b, escaped) != 0)
            return -1;
    }
    return buffer_append(b, "\"", 1);
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

/*
 * Decodes the JSON string literal at `p` into `out`; 0 on success. Handles the escapes a JSON
 * encoder writes for text like ours; \u escapes outside ASCII are refused to keep this short.
 */
static int json_decode_string(const char *p, buffer *out)
{
    if (*p++ != '"')
        return -1;
    for (; *p != '"'; p++) {
        char c = *p;
        if (c == '\0')
            return -1;
        if (c == '\\') {
            switch (*++p) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                char hex[5] = {0};
                for (int i = 0; i < 4; i++)
                    if ((hex[i] = *++p) == '\0')
                        return -1;
                long code = strtol(hex, NULL, 16);
                if (code <= 0 || code > 0x7f)
                    return -1;
                c = (char)code;
                break;
            }
            default: return -1;
            }
        }
        if (buffer_append(out, &c, 1) != 0)
            return -1;
    }
    return 0;
}

/* Answers the invocation with an error naming the failed call. */
static void reply_failure(iii_reply *reply, const char *code, const char *what, iii_result result)
{
    char message[512];
    snprintf(message, sizeof message, "%s: %s: %s", what, iii_result_name(result), iii_last_error_message());
    iii_reply_error(reply, code, message);
}

/* ---- transform::worker ------------------------------------------------------------------ */

/*
 * Input: {"reader":<ref of the input channel's reader>,"writer":<ref of the output channel's
 * writer>}. Sends {"type":"progress","chunks":k} after the k-th chunk read, then writes the
 * upper-cased text and closes; answers {"status":"done","chunks":k}.
 */
static void worker_handler(void *userdata, const char *input_json, iii_reply *reply)
{
    iii_worker *worker = userdata;
    iii_reader *reader = NULL;
    iii_writer *writer = NULL;
    buffer text = {0};
    iii_result result = iii_reader_open(worker, input_json, "reader", &reader);
    if (result != III_OK) {
        reply_failure(reply, "worker_failed", "iii_reader_open", result);
        goto done;
    }
    result = iii_writer_open(worker, input_json, "writer", &writer);
    if (result != III_OK) {
        reply_failure(reply, "worker_failed", "iii_writer_open", result);
        goto done;
    }

    long chunks = 0;
    for (;;) {
        if (buffer_reserve(&text, CHUNK_BYTES) != 0) {
            iii_writer_abort(writer, "out of memory", IO_TIMEOUT_MS);
            iii_reply_error(reply, "worker_failed", "out of memory");
            goto done;
        }
        size_t len = 0;
        result = iii_reader_read(reader, (uint8_t *)text.data + text.len, CHUNK_BYTES, &len, IO_TIMEOUT_MS);
        if (result != III_OK)
            break;
        text.len += len;
        chunks++;
        char progress[64];
        snprintf(progress, sizeof progress, "{\"type\":\"progress\",\"chunks\":%ld}", chunks);
        result = iii_writer_send_message(writer, progress, IO_TIMEOUT_MS);
        if (result != III_OK) {
            reply_failure(reply, "worker_failed", "iii_writer_send_message", result);
            goto done;
        }
    }
    if (result != III_END) {
        reply_failure(reply, "worker_failed", "iii_reader_read", result);
        iii_writer_abort(writer, "the input stream failed", IO_TIMEOUT_MS);
        goto done;
    }

    /* ASCII upper case: the text of this example is ASCII. */
    for (size_t i = 0; i < text.len; i++)
        text.data[i] = (char)toupper((unsigned char)text.data[i]);
    result = iii_writer_write(writer, (const uint8_t *)text.data, text.len, IO_TIMEOUT_MS);
    if (result != III_OK) {
        reply_failure(reply, "worker_failed", "iii_writer_write", result);
        goto done;
    }
    result = iii_writer_close(writer, IO_TIMEOUT_MS);
    if (result != III_OK) {
        reply_failure(reply, "worker_failed", "iii_writer_close", result);
        goto done;
    }
    char answer[64];
    snprintf(answer, sizeof answer, "{\"status\":\"done\",\"chunks\":%ld}", chunks);
    iii_reply_ok(reply, answer);

done:
    free(text.data);
    iii_writer_free(writer);
    iii_reader_free(reader);
}

/* ---- transform::coordinator ------------------------------------------------------------- */

/* The trigger of transform::worker, run on a thread of its own. */
typedef struct {
    pthread_t thread;
    iii_worker *worker;
    char *payload;
    char *result_json; /* the worker's answer, on III_OK */
    iii_result result;
    char error[512];
} worker_call;

static void *call_worker(void *arg)
{
    worker_call *call = arg;
    call->result = iii_trigger(call->worker, "transform::worker", call->payload, TRIGGER_TIMEOUT_MS,
                               &call->result_json);
    if (call->result != III_OK)
        snprintf(call->error, sizeof call->error, "%s", iii_last_error_message());
    return NULL;
}

/* Writes `text` in `pieces` writes (so the worker has several chunks to report on) and closes. */
static iii_result feed(iii_writer *writer, const buffer *text, long pieces)
{
    size_t step = pieces > 1 ? (text->len + (size_t)pieces - 1) / (size_t)pieces : text->len;
    for (size_t start = 0; start < text->len; start += step) {
        size_t len = text->len - start < step ? text->len - start : step;
        iii_result result = iii_writer_write(writer, (const uint8_t *)text->data + start, len, IO_TIMEOUT_MS);
        if (result != III_OK) {
            report("iii_writer_write", result);
            return result;
        }
    }
    iii_result result = iii_writer_close(writer, IO_TIMEOUT_MS);
    if (result != III_OK)
        report("iii_writer_close", result);
    return result;
}

/*
 * Input: {"text":"...","pieces":k}. Creates the input and output channels, triggers the worker
 * with the input's reader ref and the output's writer ref, writes the text, then reads the
 * result and the progress messages; answers {"result":...,"progress":[...],"worker":...}.
 */
static void coordinator_handler(void *userdata, const char *input_json, iii_reply *reply)
{
    iii_worker *worker = userdata;
    buffer text = {0}, output = {0}, answer = {0};
    char *in_writer_ref = NULL, *in_reader_ref = NULL, *out_writer_ref = NULL, *out_reader_ref = NULL;
    iii_writer *in_writer = NULL;
    iii_reader *out_reader = NULL;
    worker_call call = {.worker = worker};
    int call_started = 0;

    const char *text_json = json_value_after(input_json, "text");
    if (text_json == NULL || json_decode_string(text_json, &text) != 0 || buffer_reserve(&text, 0) != 0) {
        iii_reply_error(reply, "bad_input", "expected {\"text\":\"...\"}");
        goto done;
    }
    const char *pieces_json = json_value_after(input_json, "pieces");
    long pieces = pieces_json ? strtol(pieces_json, NULL, 10) : 1;

    iii_result result = iii_channel_create(worker, IO_TIMEOUT_MS, &in_writer_ref, &in_reader_ref);
    if (result == III_OK)
        result = iii_channel_create(worker, IO_TIMEOUT_MS, &out_writer_ref, &out_reader_ref);
    if (result != III_OK) {
        reply_failure(reply, "coordinator_failed", "iii_channel_create", result);
        goto done;
    }
    result = iii_writer_open(worker, in_writer_ref, NULL, &in_writer);
    if (result == III_OK)
        result = iii_reader_open(worker, out_reader_ref, NULL, &out_reader);
    if (result != III_OK) {
        reply_failure(reply, "coordinator_failed", "opening the local channel ends", result);
        goto done;
    }

    const char *format = "{\"reader\":%s,\"writer\":%s}";
    size_t payload_size = strlen(format) + strlen(in_reader_ref) + strlen(out_writer_ref) + 1;
    if ((call.payload = malloc(payload_size)) == NULL) {
        iii_reply_error(reply, "coordinator_failed", "out of memory");
        goto done;
    }
    snprintf(call.payload, payload_size, format, in_reader_ref, out_writer_ref);

    /*
     * The trigger blocks until the worker answers, and the worker answers only after it has
     * written its output, which this thread must read meanwhile (an unread channel holds only
     * so much). So the trigger runs on a thread of its own while this one writes and reads.
     */
    if (pthread_create(&call.thread, NULL, call_worker, &call) != 0) {
        iii_reply_error(reply, "coordinator_failed", "cannot start the trigger thread");
        goto done;
    }
    call_started = 1;

    result = feed(in_writer, &text, pieces);
    if (result != III_OK) {
        iii_writer_abort(in_writer, "the coordinator failed", IO_TIMEOUT_MS);
        reply_failure(reply, "coordinator_failed", "writing the input", result);
        goto done;
    }

    /* The output stream, until the worker closes it. */
    for (;;) {
        if (buffer_reserve(&output, CHUNK_BYTES) != 0) {
            iii_reply_error(reply, "coordinator_failed", "out of memory");
            goto done;
        }
        size_t len = 0;
        result = iii_reader_read(out_reader, (uint8_t *)output.data + output.len, CHUNK_BYTES, &len, IO_TIMEOUT_MS);
        if (result != III_OK)
            break;
        output.len += len;
    }
    if (result != III_END) {
        reply_failure(reply, "coordinator_failed", "reading the output", result);
        goto done;
    }

    /*
     * The progress messages. The worker sends them all before it writes its output, and a
     * reader has every message sent before the bytes (or the end) it returns, so they are all
     * queued now; III_END says none is left. (The reader queues up to 1,024 messages and then
     * stops taking frames until messages are taken: a flow with more messages than that in
     * flight would take them on another thread while reading the bytes.)
     */
    if (buffer_append_str(&answer, "{\"result\":") != 0 ||
        buffer_append_json_string(&answer, output.data ? output.data : "", output.len) != 0 ||
        buffer_append_str(&answer, ",\"progress\":[") != 0) {
        iii_reply_error(reply, "coordinator_failed", "out of memory");
        goto done;
    }
    for (int first = 1;; first = 0) {
        char *message = NULL;
        result = iii_reader_next_message(out_reader, IO_TIMEOUT_MS, &message);
        if (result != III_OK)
            break;
        int failed = (!first && buffer_append_str(&answer, ",") != 0) || buffer_append_str(&answer, message) != 0;
        iii_string_free(message);
        if (failed) {
            iii_reply_error(reply, "coordinator_failed", "out of memory");
            goto done;
        }
    }
    if (result != III_END) {
        reply_failure(reply, "coordinator_failed", "iii_reader_next_message", result);
        goto done;
    }

    pthread_join(call.thread, NULL);
    call_started = 0;
    if (call.result != III_OK) {
        char message[600];
        snprintf(message, sizeof message, "transform::worker: %s: %s", iii_result_name(call.result), call.error);
        iii_reply_error(reply, "coordinator_failed", message);
        goto done;
    }
    if (buffer_append_str(&answer, "],\"worker\":") != 0 || buffer_append_str(&answer, call.result_json) != 0 ||
        buffer_append_str(&answer, "}") != 0) {
        iii_reply_error(reply, "coordinator_failed", "out of memory");
        goto done;
    }
    result = iii_reply_ok(reply, answer.data);
    if (result != III_OK)
        report("iii_reply_ok", result);

done:
    /* On a failure path the ends are freed first, so a worker still running sees its peers go
       and fails instead of waiting; then its trigger is joined. */
    iii_writer_free(in_writer);
    iii_reader_free(out_reader);
    if (call_started)
        pthread_join(call.thread, NULL);
    iii_string_free(call.result_json);
    free(call.payload);
    iii_string_free(in_writer_ref);
    iii_string_free(in_reader_ref);
    iii_string_free(out_writer_ref);
    iii_string_free(out_reader_ref);
    free(text.data);
    free(output.data);
    free(answer.data);
}

/* ---- main --------------------------------------------------------------------------------- */

int main(void)
{
    const char *url = getenv("III_URL");
    if (url == NULL || *url == '\0')
        url = DEFAULT_URL;

    /* {"text":"the quick brown fox jumps over the lazy dog 0\n...","pieces":8} */
    buffer text = {0}, payload = {0};
    for (int i = 0; i < LINES; i++) {
        char line[64];
        int len = snprintf(line, sizeof line, "the quick brown fox jumps over the lazy dog %d\n", i);
        if (buffer_append(&text, line, (size_t)len) != 0)
            return 1;
    }
    char pieces[32];
    snprintf(pieces, sizeof pieces, ",\"pieces\":%d}", PIECES);
    int built = buffer_append_str(&payload, "{\"text\":") == 0 && buffer_append_json_string(&payload, text.data, text.len) == 0 &&
                buffer_append_str(&payload, pieces) == 0;
    free(text.data);
    if (!built) {
        free(payload.data);
        return 1;
    }

    iii_worker *worker = NULL;
    iii_result result = iii_worker_connect(url, &worker);
    if (result != III_OK) {
        report("iii_worker_connect", result);
        free(payload.data);
        return 1;
    }
    int status = 1;
    char *answer = NULL;
    if ((result = iii_register_function(worker, "transform::worker", worker_handler, worker)) != III_OK ||
        (result = iii_register_function(worker, "transform::coordinator", coordinator_handler, worker)) != III_OK) {
        report("iii_register_function", result);
    } else if ((result = iii_worker_ready(worker, CONNECT_TIMEOUT_MS)) != III_OK) {
        report("iii_worker_ready", result);
    } else if ((result = iii_trigger(worker, "transform::coordinator", payload.data, TRIGGER_TIMEOUT_MS, &answer)) !=
               III_OK) {
        report("iii_trigger transform::coordinator", result);
    } else {
        printf("%s\n", answer);
        status = 0;
    }
    iii_string_free(answer);
    free(payload.data);
    iii_worker_free(worker);
    return status;
}
