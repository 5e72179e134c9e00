/*
 * A writer that writes more than the channel's buffer before any reader was started: the
 * write waits (the engine holds only the buffer until a reader connects), and the library
 * warns on stderr after a few seconds, naming the channel. Prints the channel id, then
 * gives up on its write with III_TIMEOUT and exits 0. III_URL names the engine.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iii.h"

#define SIZE ((size_t)64 * 1024 * 1024) /* more than the buffer (64 frames of 64 KiB) and the sockets hold */

int main(void)
{
    const char *url = getenv("III_URL");
    iii_worker *worker = NULL;
    char *writer_ref = NULL, *reader_ref = NULL;
    iii_writer *writer = NULL;
    int status = 1;
    if (url == NULL || iii_worker_connect(url, &worker) != III_OK ||
        iii_channel_create(worker, 10000, &writer_ref, &reader_ref) != III_OK ||
        iii_writer_open(worker, writer_ref, NULL, &writer) != III_OK) {
        fprintf(stderr, "stalled_writer: setup failed: %s\n", iii_last_error_message());
        goto done;
    }
    printf("%s\n", writer_ref);
    fflush(stdout);
    unsigned char *data = calloc(SIZE, 1);
    if (data == NULL)
        goto done;
    iii_result result = iii_writer_write(writer, data, SIZE, 7000);
    free(data);
    if (result != III_TIMEOUT) {
        fprintf(stderr, "stalled_writer: expected III_TIMEOUT, got %s\n", iii_result_name(result));
        goto done;
    }
    status = 0;
done:
    iii_writer_free(writer);
    iii_string_free(writer_ref);
    iii_string_free(reader_ref);
    iii_worker_free(worker);
    return status;
}
