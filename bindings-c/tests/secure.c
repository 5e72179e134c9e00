/*
 * Credentials and TLS from C.
 *
 *     secure tls CA_FILE DONE_FILE
 *         connects to III_URL (wss://) trusting CA_FILE (iii_worker_connect_settings), streams
 *         2,000,000 bytes through a channel to its own c::count and prints "channel 2000000";
 *         serves GET /download (1,000,000 bytes of 'z'), prints READY, and serves until
 *         DONE_FILE exists (at most 60 s)
 *     secure auth MAIN_URL GUARDED_URL
 *         serves access::auth on MAIN_URL (token "good" granted, anything else refused) and
 *         connects to GUARDED_URL twice with an Authorization header: "Bearer good" creates
 *         a channel ("good admitted"), "Bearer bad" is refused ("bad refused")
 *
 * Exits 0 when everything went as described.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iii.h"

#define TIMEOUT_MS 20000
#define STREAMED 2000000
#define DOWNLOADED 1000000

static int fail(const char *what, iii_result result)
{
    fprintf(stderr, "secure: %s: %s: %s\n", what, iii_result_name(result), iii_last_error_message());
    return 1;
}

/* c::count: reads the channel under "reader" to its end; replies {"bytes":N}. */
static void count(void *userdata, const char *input_json, iii_reply *reply)
{
    iii_reader *reader = NULL;
    static uint8_t buffer[65536];
    size_t total = 0, len = 0;
    iii_result result = iii_reader_open(userdata, input_json, "reader", &reader);
    while (result == III_OK) {
        result = iii_reader_read(reader, buffer, sizeof buffer, &len, TIMEOUT_MS);
        if (result == III_OK)
            total += len;
    }
    iii_reader_free(reader);
    if (result != III_END) {
        iii_reply_error(reply, "read_failed", iii_result_name(result));
        return;
    }
    char answer[64];
    snprintf(answer, sizeof answer, "{\"bytes\":%zu}", total);
    iii_reply_ok(reply, answer);
}

/* GET /download: DOWNLOADED bytes of 'z'. */
static void download(void *userdata, const char *input_json, iii_reply *reply)
{
    static uint8_t body[DOWNLOADED];
    memset(body, 'z', sizeof body);
    iii_writer *response = NULL;
    iii_result result = iii_writer_open(userdata, input_json, "response", &response);
    if (result == III_OK)
        result = iii_writer_send_message(response, "{\"type\":\"set_status\",\"status_code\":200}", TIMEOUT_MS);
    if (result == III_OK)
        result = iii_writer_write(response, body, sizeof body, TIMEOUT_MS);
    if (result == III_OK)
        result = iii_writer_close(response, TIMEOUT_MS);
    iii_writer_free(response);
    if (result == III_OK)
        iii_reply_ok(reply, NULL);
    else
        iii_reply_error(reply, "download_failed", iii_result_name(result));
}

static int over_tls(const char *url, const char *ca_file, const char *done_file)
{
    char settings[1024];
    snprintf(settings, sizeof settings, "{\"ca_file\":\"%s\"}", ca_file);
    iii_worker *worker = NULL;
    iii_result result = iii_worker_connect_settings(url, settings, &worker);
    if (result == III_OK)
        result = iii_register_function(worker, "c::count", count, worker);
    if (result == III_OK)
        result = iii_register_function(worker, "c::download", download, worker);
    if (result == III_OK)
        result = iii_register_trigger(worker, "http", "c::download",
                                      "{\"api_path\":\"/download\",\"http_method\":\"GET\"}");
    if (result == III_OK)
        result = iii_worker_ready(worker, TIMEOUT_MS);
    if (result != III_OK) {
        iii_worker_free(worker);
        return fail("connecting over wss://", result);
    }
    char *writer_ref = NULL, *reader_ref = NULL, *answer = NULL;
    iii_writer *writer = NULL;
    static uint8_t data[STREAMED];
    memset(data, 'x', sizeof data);
    result = iii_channel_create(worker, TIMEOUT_MS, &writer_ref, &reader_ref);
    if (result == III_OK)
        result = iii_writer_open(worker, writer_ref, NULL, &writer);
    if (result == III_OK)
        result = iii_writer_write(writer, data, sizeof data, TIMEOUT_MS);
    if (result == III_OK)
        result = iii_writer_close(writer, TIMEOUT_MS);
    char payload[1024];
    if (result == III_OK) {
        snprintf(payload, sizeof payload, "{\"reader\":%s}", reader_ref);
        result = iii_trigger(worker, "c::count", payload, TIMEOUT_MS, &answer);
    }
    int status = 0;
    if (result != III_OK)
        status = fail("streaming over wss://", result);
    else if (strcmp(answer, "{\"bytes\":2000000}") != 0)
        status = (fprintf(stderr, "secure: c::count answered %s\n", answer), 1);
    else
        printf("channel %d\nREADY\n", STREAMED);
    fflush(stdout);
    for (int waited = 0; status == 0 && waited < 1200 && access(done_file, F_OK) != 0; waited++) {
        struct timespec pause = {0, 50000000L};
        nanosleep(&pause, NULL);
    }
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
    iii_string_free(answer);
    iii_writer_free(writer);
    iii_worker_free(worker);
    return status;
}

/* access::auth: the grant for "Bearer good", a refusal for anything else. */
static void authenticate(void *userdata, const char *input_json, iii_reply *reply)
{
    (void)userdata;
    if (strstr(input_json, "\"authorization\":\"Bearer good\"") != NULL)
        iii_reply_ok(reply, "{\"allowed_functions\":[],\"function_registration_prefix\":\"c\"}");
    else
        iii_reply_error(reply, "unauthorized", "bad token");
}

static int with_headers(const char *main_url, const char *guarded_url)
{
    iii_worker *trusted = NULL, *good = NULL, *bad = NULL;
    iii_result result = iii_worker_connect(main_url, &trusted);
    if (result == III_OK)
        result = iii_register_function(trusted, "access::auth", authenticate, NULL);
    if (result == III_OK)
        result = iii_worker_ready(trusted, TIMEOUT_MS);
    if (result != III_OK) {
        iii_worker_free(trusted);
        return fail("serving access::auth", result);
    }
    int status = 0;
    char *writer_ref = NULL, *reader_ref = NULL;
    result = iii_worker_connect_settings(guarded_url, "{\"headers\":{\"Authorization\":\"Bearer good\"}}", &good);
    if (result == III_OK)
        result = iii_channel_create(good, TIMEOUT_MS, &writer_ref, &reader_ref);
    if (result == III_OK)
        printf("good admitted\n");
    else
        status = fail("the good token", result);
    result = iii_worker_connect_settings(
        guarded_url, "{\"headers\":{\"Authorization\":\"Bearer bad\"},\"connect_timeout_ms\":1500}", &bad);
    if (result == III_OK)
        result = iii_channel_create(bad, TIMEOUT_MS, &writer_ref, &reader_ref);
    if (result == III_CONNECTION && strstr(iii_last_error_message(), "401") != NULL)
        printf("bad refused\n");
    else
        status = fail("the bad token (expected III_CONNECTION naming 401)", result);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
    iii_worker_free(bad);
    iii_worker_free(good);
    iii_worker_free(trusted);
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "tls") == 0)
        return over_tls(getenv("III_URL"), argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "auth") == 0)
        return with_headers(argv[2], argv[3]);
    fprintf(stderr, "usage: secure tls CA_FILE DONE_FILE | secure auth MAIN_URL GUARDED_URL\n");
    return 2;
}
