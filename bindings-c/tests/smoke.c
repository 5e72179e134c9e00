/*
 * A quick end-to-end check of libiii against a running engine:
 *
 *     III_URL=ws://127.0.0.1:49134 ./smoke        (or: ./smoke ws://127.0.0.1:49134)
 *
 * Creates a channel, streams bytes (a frame larger than the read buffer comes in pieces) and a
 * message through it, registers a function whose handler reads a channel from its input
 * (blocking iii calls inside a handler), triggers it, and checks the error codes: NULL
 * arguments, invalid JSON, wrong keys, a ref with a wrong access key, an aborted writer.
 * Prints one line per check; exits 1 if any failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iii.h"

#define T 10000 /* ms */

static int failures = 0;
static char count_id[64]; /* "smoke<pid>::count": runs sharing an engine do not answer each other */

#define CHECK(call, want)                                                                          \
    do {                                                                                           \
        iii_result got_ = (call);                                                                  \
        if (got_ != (want)) {                                                                      \
            printf("FAIL line %d: %s -> %s (%s), expected %s\n", __LINE__, #call,                  \
                   iii_result_name(got_), iii_last_error_message(), iii_result_name(want));        \
            failures++;                                                                            \
        } else {                                                                                   \
            printf("ok   %s -> %s\n", #call, iii_result_name(got_));                               \
        }                                                                                          \
    } while (0)

#define TRUE(condition)                                                                            \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            printf("FAIL line %d: %s\n", __LINE__, #condition);                                    \
            failures++;                                                                            \
        } else {                                                                                   \
            printf("ok   %s\n", #condition);                                                       \
        }                                                                                          \
    } while (0)

/* Handler of "smoke<pid>::count": opens the reader under "reader" in its input, counts the bytes
   until the end, and answers {"bytes": n}. It blocks on iii calls, which handlers may do. */
static void count_bytes(void *userdata, const char *input_json, iii_reply *reply)
{
    iii_worker *worker = userdata;
    iii_reader *reader = NULL;
    iii_result result = iii_reader_open(worker, input_json, "reader", &reader);
    if (result != III_OK) {
        iii_reply_error(reply, "bad_input", iii_last_error_message());
        return;
    }
    uint8_t buffer[1000];
    size_t len = 0, total = 0;
    while ((result = iii_reader_read(reader, buffer, sizeof buffer, &len, T)) == III_OK)
        total += len;
    if (result != III_END) {
        iii_reply_error(reply, "read_failed", iii_result_name(result));
    } else {
        char answer[64];
        snprintf(answer, sizeof answer, "{\"bytes\":%zu}", total);
        iii_reply_ok(reply, answer);
    }
    iii_reader_free(reader);
}

/* A copy of `ref_json` whose access_key is "wrong" (caller frees). */
static char *with_wrong_key(const char *ref_json)
{
    const char *key = strstr(ref_json, "\"access_key\":\"");
    if (key == NULL)
        return NULL;
    const char *value = key + strlen("\"access_key\":\"");
    const char *end = strchr(value, '"');
    if (end == NULL)
        return NULL;
    size_t size = strlen(ref_json) + 16;
    char *copy = malloc(size);
    if (copy != NULL)
        snprintf(copy, size, "%.*swrong%s", (int)(value - ref_json), ref_json, end);
    return copy;
}

/* Bytes and a message through a channel opened here. */
static void stream(iii_worker *worker)
{
    char *writer_ref = NULL, *reader_ref = NULL;
    iii_writer *writer = NULL;
    iii_reader *reader = NULL;
    CHECK(iii_channel_create(worker, T, &writer_ref, &reader_ref), III_OK);
    if (writer_ref == NULL || reader_ref == NULL)
        return;
    /* A ref of this live channel with a wrong access key: the engine refuses the socket on the
       first read. (A finished channel answers late connects with its end status instead.) */
    char *wrong = with_wrong_key(reader_ref);
    TRUE(wrong != NULL);
    iii_reader *impostor = NULL;
    if (wrong != NULL && iii_reader_open(worker, wrong, NULL, &impostor) == III_OK) {
        uint8_t byte;
        size_t len = 0;
        CHECK(iii_reader_read(impostor, &byte, 1, &len, T), III_CHANNEL_CONNECT);
        TRUE(strlen(iii_last_error_message()) > 0);
    }
    iii_reader_free(impostor);
    free(wrong);
    CHECK(iii_writer_open(worker, writer_ref, NULL, &writer), III_OK);
    CHECK(iii_reader_open(worker, reader_ref, NULL, &reader), III_OK);
    if (writer != NULL && reader != NULL) {
        static uint8_t data[100000];
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = (uint8_t)(i * 7);
        CHECK(iii_writer_send_message(writer, "hello, reader", T), III_OK);
        CHECK(iii_writer_write(writer, data, sizeof data, T), III_OK);
        CHECK(iii_writer_send_message(writer, "goodbye", T), III_OK);
        CHECK(iii_writer_close(writer, T), III_OK);

        /* The messages first (the bytes read on the way are kept), then the bytes in pieces. */
        char *message = NULL;
        CHECK(iii_reader_next_message(reader, T, &message), III_OK);
        TRUE(message != NULL && strcmp(message, "hello, reader") == 0);
        iii_string_free(message);
        message = NULL;
        CHECK(iii_reader_next_message(reader, T, &message), III_OK);
        TRUE(message != NULL && strcmp(message, "goodbye") == 0);
        iii_string_free(message);
        message = NULL;
        CHECK(iii_reader_next_message(reader, T, &message), III_END);
        TRUE(message == NULL);

        uint8_t buffer[4096];
        size_t len = 0, total = 0;
        int same = 1;
        iii_result result;
        while ((result = iii_reader_read(reader, buffer, sizeof buffer, &len, T)) == III_OK) {
            for (size_t i = 0; i < len; i++)
                same &= buffer[i] == data[total + i];
            total += len;
        }
        CHECK(result, III_END);
        TRUE(total == sizeof data && same);
        /* Both ends count what they moved: the bytes, and the two messages. */
        iii_channel_stats written = {0}, read = {0};
        CHECK(iii_writer_stats(writer, &written), III_OK);
        CHECK(iii_reader_stats(reader, &read), III_OK);
        TRUE(written.bytes == sizeof data && written.messages == 2 && written.frames >= 1);
        TRUE(read.bytes == sizeof data && read.messages == 2 && read.frames == written.frames);
        CHECK(iii_reader_stats(reader, NULL), III_NULL_ARGUMENT);
    }
    iii_writer_free(writer);
    iii_reader_free(reader);

    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
}

/* An aborted writer: the reader gets the bytes written before, then III_CHANNEL_ABORTED. */
static void aborted(iii_worker *worker)
{
    char *writer_ref = NULL, *reader_ref = NULL;
    iii_writer *writer = NULL;
    iii_reader *reader = NULL;
    CHECK(iii_channel_create(worker, T, &writer_ref, &reader_ref), III_OK);
    if (writer_ref == NULL || reader_ref == NULL)
        return;
    CHECK(iii_writer_open(worker, writer_ref, NULL, &writer), III_OK);
    CHECK(iii_reader_open(worker, reader_ref, NULL, &reader), III_OK);
    if (writer != NULL && reader != NULL) {
        CHECK(iii_writer_write(writer, (const uint8_t *)"partial", 7, T), III_OK);
        CHECK(iii_writer_abort(writer, "out of disk", T), III_OK);
        uint8_t buffer[64];
        size_t len = 0, total = 0;
        iii_result result;
        while ((result = iii_reader_read(reader, buffer, sizeof buffer, &len, T)) == III_OK)
            total += len;
        CHECK(result, III_CHANNEL_ABORTED);
        TRUE(total == 7);
        TRUE(strstr(iii_last_error_message(), "out of disk") != NULL);
    }
    iii_writer_free(writer);
    iii_reader_free(reader);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
}

/* A function that reads a channel, triggered with the channel's reader ref in its payload. */
static void function(iii_worker *worker)
{
    CHECK(iii_register_function(worker, count_id, count_bytes, worker), III_OK);
    CHECK(iii_worker_ready(worker, T), III_OK);

    char *writer_ref = NULL, *reader_ref = NULL;
    iii_writer *writer = NULL;
    CHECK(iii_channel_create(worker, T, &writer_ref, &reader_ref), III_OK);
    if (writer_ref == NULL || reader_ref == NULL)
        return;
    CHECK(iii_writer_open(worker, writer_ref, NULL, &writer), III_OK);
    if (writer != NULL) {
        /* Written and closed before the call: the engine buffers it (well under 64 frames). */
        static uint8_t data[200000];
        CHECK(iii_writer_write(writer, data, sizeof data, T), III_OK);
        CHECK(iii_writer_close(writer, T), III_OK);
        size_t size = strlen(reader_ref) + 32;
        char *payload = malloc(size);
        snprintf(payload, size, "{\"reader\":%s}", reader_ref);
        char *result = NULL;
        CHECK(iii_trigger(worker, count_id, payload, T, &result), III_OK);
        TRUE(result != NULL && strstr(result, "\"bytes\":200000") != NULL);
        iii_string_free(result);
        free(payload);
    }
    iii_writer_free(writer);

    /* The handler's own error, and a function nobody registered. */
    char *result = NULL;
    CHECK(iii_trigger(worker, count_id, "{\"no_reader\":1}", T, &result), III_INVOCATION_FAILED);
    TRUE(strncmp(iii_last_error_message(), "bad_input: ", 11) == 0);
    CHECK(iii_trigger(worker, "smoke::nobody", "{}", T, &result), III_INVOCATION_FAILED);
    TRUE(result == NULL);
    CHECK(iii_unregister_function(worker, count_id), III_OK);
    CHECK(iii_unregister_function(worker, count_id), III_INVALID_ARGUMENT);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
}

/* NULL arguments, invalid JSON, wrong keys, and result names. */
static void errors(iii_worker *worker)
{
    char *out = NULL;
    iii_reader *reader = NULL;
    CHECK(iii_trigger(NULL, "a::b", "{}", T, &out), III_NULL_ARGUMENT);
    CHECK(iii_trigger(worker, "a::b", NULL, T, &out), III_NULL_ARGUMENT);
    CHECK(iii_trigger(worker, "a::b", "{\"unclosed\":", T, &out), III_INVALID_ARGUMENT);
    TRUE(strstr(iii_last_error_message(), "JSON") != NULL);
    CHECK(iii_channel_create(worker, T, NULL, &out), III_NULL_ARGUMENT);
    CHECK(iii_reader_open(worker, "[1,2", NULL, &reader), III_INVALID_ARGUMENT);
    CHECK(iii_reader_open(worker, "{\"channel_id\":\"c\",\"access_key\":\"k\",\"direction\":\"read\"}",
                          "reader", &reader),
          III_INVALID_ARGUMENT); /* no such key */
    CHECK(iii_reader_open(worker, "{\"channel\":\"c\",\"key\":\"k\"}", NULL, &reader),
          III_INVALID_ARGUMENT); /* not a ref */
    TRUE(out == NULL && reader == NULL);
    CHECK(iii_register_function(worker, "a::b", NULL, NULL), III_NULL_ARGUMENT);
    CHECK(iii_reader_read(NULL, NULL, 0, NULL, T), III_NULL_ARGUMENT);
    CHECK(iii_writer_write(NULL, NULL, 0, T), III_NULL_ARGUMENT);

    TRUE(strcmp(iii_result_name(III_OK), "III_OK") == 0);
    TRUE(strcmp(iii_result_name(III_CHANNEL_ABORTED), "III_CHANNEL_ABORTED") == 0);
    TRUE(strcmp(iii_result_name(III_PANIC), "III_PANIC") == 0);
    TRUE(strcmp(iii_result_name((iii_result)1000), "III_UNKNOWN") == 0);
    CHECK(iii_worker_ready(worker, T), III_OK);
    TRUE(strcmp(iii_last_error_message(), "") == 0);
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : getenv("III_URL");
    if (url == NULL) {
        fprintf(stderr, "smoke: give the engine URL as III_URL or the first argument\n");
        return 2;
    }
    snprintf(count_id, sizeof count_id, "smoke%ld::count", (long)getpid());
    iii_worker *worker = NULL;
    CHECK(iii_worker_connect(url, &worker), III_OK);
    if (worker == NULL)
        return 1;
    CHECK(iii_worker_ready(worker, T), III_OK);
    stream(worker);
    aborted(worker);
    function(worker);
    errors(worker);
    iii_worker_free(worker);
    printf("smoke: %d failed\n", failures);
    return failures ? 1 : 0;
}
