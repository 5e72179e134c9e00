/*
 * The C API's contract at its edges, against a running engine (III_URL): NULL arguments,
 * invalid JSON and UTF-8, refs under the wrong key or of the wrong direction, out-parameters
 * left alone on failure, replies (error, none, invalid JSON), timeouts that lose nothing,
 * messages before bytes, aborts, and a closed reader. Prints one line per check and exits 1
 * if any failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iii.h"

#define T 10000 /* ms */

static int failures = 0;

/* Checks that `got` is `want`; on failure prints the library's last error message too. */
#define EXPECT(call, want)                                                                          \
    do {                                                                                           \
        iii_result got_ = (call);                                                                  \
        if (got_ == (want)) {                                                                      \
            printf("ok   %s -> %s\n", #call, iii_result_name(got_));                               \
        } else {                                                                                   \
            printf("FAIL %s -> %s (%s), expected %s (line %d)\n", #call, iii_result_name(got_),    \
                   iii_last_error_message(), iii_result_name(want), __LINE__);                     \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define TRUE(condition)                                                                            \
    do {                                                                                           \
        if (condition) {                                                                           \
            printf("ok   %s\n", #condition);                                                      \
        } else {                                                                                   \
            printf("FAIL %s (line %d)\n", #condition, __LINE__);                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* "contract<pid>::name": function ids of this process alone, so that several runs can share an
   engine (a function id is routed to the worker that registered it last). */
static const char *fn(const char *name)
{
    static char ids[8][64];
    static int next = 0;
    char *id = ids[next++ % 8];
    snprintf(id, sizeof ids[0], "contract%ld::%s", (long)getpid(), name);
    return id;
}

/* ---- handlers ---------------------------------------------------------------------------- */

static void replies_error(void *userdata, const char *input_json, iii_reply *reply)
{
    (void)userdata;
    (void)input_json;
    iii_reply_error(reply, "my_code", "my message");
}

static void never_replies(void *userdata, const char *input_json, iii_reply *reply)
{
    (void)userdata;
    (void)input_json;
    (void)reply;
}

/* Tries the wrong replies first (each must be refused), then echoes its input. */
static void checks_replies(void *userdata, const char *input_json, iii_reply *reply)
{
    int *refused = userdata;
    *refused = iii_reply_ok(reply, "{not json") == III_INVALID_ARGUMENT &&
               iii_reply_ok(NULL, "{}") == III_NULL_ARGUMENT &&
               iii_reply_error(reply, NULL, "message") == III_NULL_ARGUMENT;
    iii_reply_ok(reply, input_json);
}

static void replies_null(void *userdata, const char *input_json, iii_reply *reply)
{
    (void)userdata;
    (void)input_json;
    iii_reply_ok(reply, NULL);
}

/* ---- checks ------------------------------------------------------------------------------ */

static void without_engine(void)
{
    TRUE(strcmp(iii_result_name(III_OK), "III_OK") == 0);
    TRUE(strcmp(iii_result_name(III_WRITER_LOST), "III_WRITER_LOST") == 0);
    TRUE(strcmp(iii_result_name((iii_result)9999), "III_UNKNOWN") == 0);
    TRUE(iii_last_error_message() != NULL);

    iii_worker *worker = (iii_worker *)&failures; /* a sentinel: must stay untouched */
    EXPECT(iii_worker_connect(NULL, &worker), III_NULL_ARGUMENT);
    TRUE(worker == (iii_worker *)&failures);
    TRUE(strlen(iii_last_error_message()) > 0);
    EXPECT(iii_worker_connect("ws://127.0.0.1:1", NULL), III_NULL_ARGUMENT);
    EXPECT(iii_worker_connect("ws://127.0.0.1:\xff", &worker), III_INVALID_ARGUMENT);
    TRUE(worker == (iii_worker *)&failures);
    EXPECT(iii_worker_ready(NULL, T), III_NULL_ARGUMENT);

    /* A URL that is not ws:// is refused at once, naming it. */
    EXPECT(iii_worker_connect("http://127.0.0.1:1", &worker), III_INVALID_ARGUMENT);
    TRUE(worker == (iii_worker *)&failures);
    TRUE(strstr(iii_last_error_message(), "http://127.0.0.1:1") != NULL);
    EXPECT(iii_worker_connect("localhost:49134", &worker), III_INVALID_ARGUMENT);

    /* A refused engine fails a call within the connect timeout (well before the call's own
       timeout), with the URL and the cause in the message. */
    worker = NULL;
    EXPECT(iii_worker_connect_with("ws://127.0.0.1:1", 500, &worker), III_OK);
    char *result = NULL;
    struct timespec started, ended;
    clock_gettime(CLOCK_MONOTONIC, &started);
    EXPECT(iii_trigger(worker, "x::y", "{}", 20000, &result), III_CONNECTION);
    clock_gettime(CLOCK_MONOTONIC, &ended);
    double waited = (double)(ended.tv_sec - started.tv_sec) + (ended.tv_nsec - started.tv_nsec) / 1e9;
    TRUE(waited < 5.0);
    TRUE(strstr(iii_last_error_message(), "ws://127.0.0.1:1") != NULL);
    TRUE(strstr(iii_last_error_message(), "refused") != NULL);
    TRUE(result == NULL);
    iii_worker_free(worker);

    /* An unreachable engine (TEST-NET-1, RFC 5737: nothing answers) fails the same way. */
    worker = NULL;
    EXPECT(iii_worker_connect_with("ws://192.0.2.1:49134", 500, &worker), III_OK);
    clock_gettime(CLOCK_MONOTONIC, &started);
    EXPECT(iii_trigger(worker, "x::y", "{}", 20000, &result), III_CONNECTION);
    clock_gettime(CLOCK_MONOTONIC, &ended);
    waited = (double)(ended.tv_sec - started.tv_sec) + (ended.tv_nsec - started.tv_nsec) / 1e9;
    TRUE(waited < 5.0);
    TRUE(strstr(iii_last_error_message(), "ws://192.0.2.1:49134") != NULL);
    iii_worker_free(worker);

    /* _free(NULL) is a no-op. */
    iii_worker_free(NULL);
    iii_reader_free(NULL);
    iii_writer_free(NULL);
    iii_string_free(NULL);
    EXPECT(iii_reader_close(NULL), III_NULL_ARGUMENT);
    EXPECT(iii_writer_close(NULL, T), III_NULL_ARGUMENT);
}

static void arguments(iii_worker *worker)
{
    char *writer_ref = NULL, *reader_ref = NULL;
    EXPECT(iii_channel_create(NULL, T, &writer_ref, &reader_ref), III_NULL_ARGUMENT);
    EXPECT(iii_channel_create(worker, T, NULL, &reader_ref), III_NULL_ARGUMENT);
    EXPECT(iii_channel_create(worker, T, &writer_ref, NULL), III_NULL_ARGUMENT);
    TRUE(writer_ref == NULL && reader_ref == NULL);
    EXPECT(iii_channel_create(worker, T, &writer_ref, &reader_ref), III_OK);
    if (writer_ref == NULL || reader_ref == NULL)
        return;
    TRUE(strstr(writer_ref, "\"write\"") != NULL && strstr(reader_ref, "\"read\"") != NULL);

    iii_reader *reader = (iii_reader *)&failures;
    iii_writer *writer = (iii_writer *)&failures;
    EXPECT(iii_reader_open(NULL, reader_ref, NULL, &reader), III_NULL_ARGUMENT);
    EXPECT(iii_reader_open(worker, NULL, NULL, &reader), III_NULL_ARGUMENT);
    EXPECT(iii_reader_open(worker, reader_ref, NULL, NULL), III_NULL_ARGUMENT);
    EXPECT(iii_reader_open(worker, "{not json", NULL, &reader), III_INVALID_ARGUMENT);
    EXPECT(iii_reader_open(worker, "\"just a string\"", NULL, &reader), III_INVALID_ARGUMENT);
    EXPECT(iii_reader_open(worker, "{\"channel_id\":\"x\"}", NULL, &reader), III_INVALID_ARGUMENT);
    EXPECT(iii_reader_open(worker, "{\"a\":\"\xff\"}", NULL, &reader), III_INVALID_ARGUMENT);
    EXPECT(iii_reader_open(worker, writer_ref, NULL, &reader), III_INVALID_ARGUMENT);   /* direction */
    EXPECT(iii_writer_open(worker, reader_ref, NULL, &writer), III_INVALID_ARGUMENT);   /* direction */
    TRUE(reader == (iii_reader *)&failures && writer == (iii_writer *)&failures);

    /* The ref under a key of a bigger object (as in a handler's input), and a wrong key. */
    size_t size = strlen(reader_ref) + strlen(writer_ref) + 64;
    char *input = malloc(size);
    snprintf(input, size, "{\"label\":\"x\",\"reader\":%s,\"writer\":%s}", reader_ref, writer_ref);
    EXPECT(iii_reader_open(worker, input, "nope", &reader), III_INVALID_ARGUMENT);
    EXPECT(iii_reader_open(worker, input, "label", &reader), III_INVALID_ARGUMENT);
    EXPECT(iii_reader_open(worker, input, "writer", &reader), III_INVALID_ARGUMENT);
    EXPECT(iii_writer_open(worker, input, "reader", &writer), III_INVALID_ARGUMENT);
    EXPECT(iii_reader_open(worker, input, "reader", &reader), III_OK);
    EXPECT(iii_writer_open(worker, input, "writer", &writer), III_OK);
    free(input);

    uint8_t byte;
    size_t len = 7;
    char *message = (char *)&failures;
    EXPECT(iii_reader_read(reader, NULL, 1, &len, T), III_NULL_ARGUMENT);
    EXPECT(iii_reader_read(reader, &byte, 1, NULL, T), III_NULL_ARGUMENT);
    EXPECT(iii_reader_read(NULL, &byte, 1, &len, T), III_NULL_ARGUMENT);
    EXPECT(iii_reader_next_message(reader, T, NULL), III_NULL_ARGUMENT);
    EXPECT(iii_writer_write(NULL, &byte, 1, T), III_NULL_ARGUMENT);
    EXPECT(iii_writer_write(writer, NULL, 1, T), III_NULL_ARGUMENT);
    EXPECT(iii_writer_send_message(writer, NULL, T), III_NULL_ARGUMENT);
    EXPECT(iii_writer_send_message(writer, "\xff", T), III_INVALID_ARGUMENT);

    /* Timeouts lose nothing: a read that timed out, then the bytes; a frame larger than the
       buffer comes in pieces. */
    EXPECT(iii_reader_read(reader, &byte, 1, &len, 200), III_TIMEOUT);
    EXPECT(iii_reader_next_message(reader, 200, &message), III_TIMEOUT);
    TRUE(len == 7 && message == (char *)&failures);
    EXPECT(iii_writer_send_message(writer, "first message", T), III_OK);
    EXPECT(iii_writer_write(writer, (const uint8_t *)"abc", 3, T), III_OK);
    EXPECT(iii_writer_close(writer, T), III_OK);
    char text[4] = {0};
    EXPECT(iii_reader_read(reader, (uint8_t *)text, 2, &len, T), III_OK);
    TRUE(len == 2 && memcmp(text, "ab", 2) == 0);
    EXPECT(iii_reader_read(reader, (uint8_t *)text, 3, &len, T), III_OK);
    TRUE(len == 1 && text[0] == 'c');
    EXPECT(iii_reader_read(reader, (uint8_t *)text, 3, &len, T), III_END);
    EXPECT(iii_reader_read(reader, (uint8_t *)text, 3, &len, T), III_END);
    /* The message sent before the bytes is there once the bytes were read. */
    message = NULL;
    EXPECT(iii_reader_next_message(reader, T, &message), III_OK);
    TRUE(message != NULL && strcmp(message, "first message") == 0);
    iii_string_free(message);
    EXPECT(iii_reader_next_message(reader, T, &message), III_END);
    iii_reader_free(reader);
    iii_writer_free(writer);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
}

static void abort_and_close(iii_worker *worker)
{
    char *writer_ref = NULL, *reader_ref = NULL;
    iii_reader *reader = NULL;
    iii_writer *writer = NULL;
    EXPECT(iii_channel_create(worker, T, &writer_ref, &reader_ref), III_OK);
    EXPECT(iii_writer_open(worker, writer_ref, NULL, &writer), III_OK);
    EXPECT(iii_reader_open(worker, reader_ref, NULL, &reader), III_OK);
    if (reader && writer) {
        uint8_t buffer[16];
        size_t len = 0;
        EXPECT(iii_writer_write(writer, (const uint8_t *)"xy", 2, T), III_OK);
        EXPECT(iii_writer_abort(writer, "changed my mind", T), III_OK);
        iii_result result;
        while ((result = iii_reader_read(reader, buffer, sizeof buffer, &len, T)) == III_OK) {
        }
        EXPECT(result, III_CHANNEL_ABORTED);
    }
    iii_reader_free(reader);
    iii_writer_free(writer);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);

    /* The reader closes early: the writer's next writes fail with III_READER_CLOSED. */
    writer_ref = reader_ref = NULL;
    reader = NULL;
    writer = NULL;
    EXPECT(iii_channel_create(worker, T, &writer_ref, &reader_ref), III_OK);
    EXPECT(iii_writer_open(worker, writer_ref, NULL, &writer), III_OK);
    EXPECT(iii_reader_open(worker, reader_ref, NULL, &reader), III_OK);
    if (reader && writer) {
        uint8_t buffer[16];
        size_t len = 0;
        EXPECT(iii_writer_write(writer, (const uint8_t *)"xy", 2, T), III_OK);
        EXPECT(iii_reader_read(reader, buffer, sizeof buffer, &len, T), III_OK);
        EXPECT(iii_reader_close(reader), III_OK);
        static uint8_t chunk[64 * 1024];
        iii_result result;
        int writes = 0;
        while ((result = iii_writer_write(writer, chunk, sizeof chunk, T)) == III_OK && ++writes < 1024) {
        }
        EXPECT(result, III_READER_CLOSED);
    }
    iii_reader_free(reader);
    iii_writer_free(writer);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
}

static void functions(iii_worker *worker)
{
    int refused = 0;
    EXPECT(iii_register_function(NULL, fn("x"), replies_error, NULL), III_NULL_ARGUMENT);
    EXPECT(iii_register_function(worker, NULL, replies_error, NULL), III_NULL_ARGUMENT);
    EXPECT(iii_register_function(worker, fn("x"), NULL, NULL), III_NULL_ARGUMENT);
    EXPECT(iii_register_function(worker, fn("error"), replies_error, NULL), III_OK);
    EXPECT(iii_register_function(worker, fn("silent"), never_replies, NULL), III_OK);
    EXPECT(iii_register_function(worker, fn("echo"), checks_replies, &refused), III_OK);
    EXPECT(iii_register_function(worker, fn("null"), replies_null, NULL), III_OK);
    EXPECT(iii_worker_ready(worker, T), III_OK);

    char *result = (char *)&failures;
    EXPECT(iii_trigger(worker, fn("echo"), "{not json", T, &result), III_INVALID_ARGUMENT);
    EXPECT(iii_trigger(worker, NULL, "{}", T, &result), III_NULL_ARGUMENT);
    EXPECT(iii_trigger(worker, fn("echo"), "{}", T, NULL), III_NULL_ARGUMENT);
    EXPECT(iii_trigger(worker, fn("error"), "{}", T, &result), III_INVOCATION_FAILED);
    const char *error = iii_last_error_message();
    printf("     last error message: %s\n", error);
    TRUE(strcmp(error, "my_code: my message") == 0);
    EXPECT(iii_trigger(worker, fn("silent"), "{}", T, &result), III_INVOCATION_FAILED);
    TRUE(strstr(iii_last_error_message(), "the handler did not reply") != NULL);
    EXPECT(iii_trigger(worker, fn("nobody"), "{}", T, &result), III_INVOCATION_FAILED);
    TRUE(result == (char *)&failures);

    result = NULL;
    EXPECT(iii_trigger(worker, fn("echo"), "{\"a\":[1,2]}", T, &result), III_OK);
    printf("     echoed: %s\n", result ? result : "(null)");
    /* The engine adds "_caller_worker_id" to an object payload (docs/PROTOCOL.md section 3). */
    TRUE(result != NULL && strstr(result, "\"a\":[1,2]") != NULL);
    TRUE(refused);
    iii_string_free(result);
    result = NULL;
    EXPECT(iii_trigger(worker, fn("null"), "{}", T, &result), III_OK);
    TRUE(result != NULL && strcmp(result, "null") == 0);
    iii_string_free(result);

    EXPECT(iii_unregister_function(worker, fn("echo")), III_OK);
    EXPECT(iii_unregister_function(worker, NULL), III_NULL_ARGUMENT);
}

int main(void)
{
    const char *url = getenv("III_URL");
    if (url == NULL) {
        fprintf(stderr, "contract: set III_URL to a running engine\n");
        return 2;
    }
    without_engine();

    iii_worker *worker = NULL;
    EXPECT(iii_worker_connect(url, &worker), III_OK);
    EXPECT(iii_worker_ready(worker, T), III_OK);
    if (worker != NULL) {
        arguments(worker);
        abort_and_close(worker);
        functions(worker);
    }
    iii_worker_free(worker);

    printf("contract: %d failed\n", failures);
    return failures ? 1 : 0;
}
