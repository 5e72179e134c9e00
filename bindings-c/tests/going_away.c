/*
 * An engine that stops under a stream in flight: the reader gets every byte written before,
 * then III_GOING_AWAY (never III_END: the stream did not end cleanly).
 *
 *     going_away        connects to III_URL, writes 100,000 bytes into a channel, reads the
 *                       first chunk, prints READING, then reads on while the test stops the
 *                       engine; prints "going_away 100000"
 *     going_away http   serves GET /endless: 100,000 bytes, then 1,000 more every 10 ms for
 *                       as long as the engine lets it; prints READY once the route is
 *                       registered, then "download going_away" when a write fails with
 *                       III_GOING_AWAY
 *
 * Exits 0 when the outcome is the expected one.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iii.h"

#define SENT 100000
#define TIMEOUT_MS 20000

static int fail(const char *what, iii_result result)
{
    fprintf(stderr, "going_away: %s: %s: %s\n", what, iii_result_name(result), iii_last_error_message());
    return 1;
}

static void pause_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* How the download's last write ended; written by the handler's thread once. */
static atomic_int download_result = -1;

/* GET /endless: a download that outlives any grace period, written until a write fails. */
static void endless(void *userdata, const char *input_json, iii_reply *reply)
{
    iii_worker *worker = userdata;
    iii_writer *response = NULL;
    static uint8_t head[SENT], more[1000];
    memset(more, 'y', sizeof more);
    iii_result result = iii_writer_open(worker, input_json, "response", &response);
    if (result == III_OK)
        result = iii_writer_send_message(response, "{\"type\":\"set_status\",\"status_code\":200}", TIMEOUT_MS);
    if (result == III_OK)
        result = iii_writer_write(response, head, sizeof head, TIMEOUT_MS);
    while (result == III_OK) {
        pause_ms(10);
        result = iii_writer_write(response, more, sizeof more, TIMEOUT_MS);
    }
    if (result != III_GOING_AWAY)
        fprintf(stderr, "going_away http: a write failed with %s (expected III_GOING_AWAY): %s\n",
                iii_result_name(result), iii_last_error_message());
    iii_writer_free(response);
    iii_reply_ok(reply, NULL);
    /* Last: once it is set, main frees the worker and exits. */
    download_result = (int)result;
}

static int serve_download(const char *url)
{
    iii_worker *worker = NULL;
    iii_result result = iii_worker_connect(url, &worker);
    if (result == III_OK)
        result = iii_register_function(worker, "c::endless", endless, worker);
    if (result == III_OK)
        result = iii_register_trigger(worker, "http", "c::endless",
                                      "{\"api_path\":\"/endless\",\"http_method\":\"GET\"}");
    if (result == III_OK)
        result = iii_worker_ready(worker, TIMEOUT_MS);
    if (result != III_OK) {
        fail("serving /endless", result);
        iii_worker_free(worker);
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    for (int waited = 0; download_result < 0 && waited < 60000; waited += 10)
        pause_ms(10);
    iii_worker_free(worker);
    if (download_result != III_GOING_AWAY)
        return 1;
    printf("download going_away\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = getenv("III_URL");
    if (url == NULL)
        return fail("III_URL is not set", III_INVALID_ARGUMENT);
    if (argc > 1 && strcmp(argv[1], "http") == 0)
        return serve_download(url);
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
