/*
 * An engine that stops under a stream in flight: the reader gets every byte written before,
 * then III_GOING_AWAY (never III_END: the stream did not end cleanly).
 *
 *     going_away    connects to III_URL, writes 100,000 bytes into a channel, reads the first
 *                   chunk, prints READING, then reads on while the test stops the engine
 *
 * Prints "going_away 100000" and exits 0 when the outcome is the expected one.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>

#include "iii.h"

#define SENT 100000
#define TIMEOUT_MS 20000

static int fail(const char *what, iii_result result)
{
    fprintf(stderr, "going_away: %s: %s: %s\n", what, iii_result_name(result), iii_last_error_message());
    return 1;
}

int main(void)
{
    const char *url = getenv("III_URL");
    if (url == NULL)
        return fail("III_URL is not set", III_INVALID_ARGUMENT);
    iii_worker *worker = NULL;
    char *writer_ref = NULL, *reader_ref = NULL;
    iii_writer *writer = NULL;
    iii_reader *reader = NULL;
    iii_result result = iii_worker_connect(url, &worker);
    if (result == III_OK)
        result = iii_worker_ready(worker, TIMEOUT_MS);
    if (result == III_OK)
        result = iii_channel_create(worker, TIMEOUT_MS, &writer_ref, &reader_ref);
    if (result == III_OK)
        result = iii_writer_open(worker, writer_ref, NULL, &writer);
    if (result == III_OK)
        result = iii_reader_open(worker, reader_ref, NULL, &reader);
    if (result != III_OK)
        return fail("setting up", result);
    static uint8_t data[SENT];
    if ((result = iii_writer_write(writer, data, sizeof data, TIMEOUT_MS)) != III_OK)
        return fail("iii_writer_write", result);
    static uint8_t buffer[16 * 1024];
    size_t total = 0, len = 0;
    if ((result = iii_reader_read(reader, buffer, sizeof buffer, &len, TIMEOUT_MS)) != III_OK)
        return fail("the first iii_reader_read", result);
    total += len;
    printf("READING\n");
    fflush(stdout);
    while ((result = iii_reader_read(reader, buffer, sizeof buffer, &len, TIMEOUT_MS)) == III_OK)
        total += len;
    if (result != III_GOING_AWAY) {
        fprintf(stderr, "going_away: read %zu bytes, then %s (expected III_GOING_AWAY): %s\n", total,
                iii_result_name(result), iii_last_error_message());
        return 1;
    }
    printf("going_away %zu\n", total);
    iii_reader_free(reader);
    iii_writer_free(writer);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
    iii_worker_free(worker);
    return total == SENT ? 0 : 1;
}
