/*
 * A channel whose peer process dies with SIGKILL mid-stream:
 *
 *     killed_peer writer    the writer is killed: the reader gets every byte written before,
 *                           III_TIMEOUT while the writer is alive but silent, then
 *                           III_WRITER_LOST (never III_END: the stream did not end cleanly)
 *     killed_peer reader    the reader is killed: the writer's writes fail with
 *                           III_READER_CLOSED
 *
 * The process forks before any iii call (so no library thread exists in the child), the child
 * connects as a worker of its own and passes a channel ref to the parent through a pipe.
 * III_URL names the engine. Prints one line and exits 0 when the outcome is the expected one.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iii.h"

#define CHUNK (64 * 1024)
#define SENT (3 * CHUNK + 1000) /* what the killed writer writes before it stops */
#define TIMEOUT_MS 10000
/* The writer gives up after this much without an error. It normally learns within a few MiB
 * (its 1 MiB window and what the sockets hold), but under valgrind, which runs one thread at a
 * time, the library's thread that reads the engine's close can run late: up to 74 MiB seen. */
#define READ_LIMIT ((size_t)1024 * 1024 * 1024)

static const char *program = "killed_peer";
static pid_t child_pid = -1; /* until it has been killed and reaped */

/* Kills the child with SIGKILL and reaps it (once). */
static void kill_child(void)
{
    if (child_pid > 0) {
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
        child_pid = -1;
    }
}

static void fail_call(const char *who, const char *what, iii_result result)
{
    fprintf(stderr, "%s (%s): %s: %s: %s\n", program, who, what, iii_result_name(result), iii_last_error_message());
}

/* The byte at offset `i` of the test stream. */
static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 31 + 7);
}

/* Reads one line (without its '\n') from `fd` into `line`; 0 on success. */
static int read_line(int fd, char *line, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, line + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (line[len] == '\n') {
            line[len] = '\0';
            return 0;
        }
        len++;
    }
    return -1;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * The child: connects, creates a channel, keeps one end (`keep` is "writer" or "reader"),
 * sends the other end's ref as one line on `fd`; then, as writer, writes SENT bytes, or, as
 * reader, reads one chunk and writes "read\n"; then waits to be killed.
 */
static void child(const char *url, int fd, int keep_writer)
{
    iii_worker *worker = NULL;
    char *writer_ref = NULL, *reader_ref = NULL;
    iii_result result = iii_worker_connect(url, &worker);
    if (result == III_OK)
        result = iii_worker_ready(worker, TIMEOUT_MS);
    if (result == III_OK)
        result = iii_channel_create(worker, TIMEOUT_MS, &writer_ref, &reader_ref);
    if (result != III_OK) {
        fail_call("child", "setting up", result);
        _exit(1);
    }
    const char *other = keep_writer ? reader_ref : writer_ref;
    if (write_all(fd, other, strlen(other)) != 0 || write_all(fd, "\n", 1) != 0)
        _exit(1);

    if (keep_writer) {
        iii_writer *writer = NULL;
        if ((result = iii_writer_open(worker, writer_ref, NULL, &writer)) != III_OK) {
            fail_call("child", "iii_writer_open", result);
            _exit(1);
        }
        static uint8_t data[SENT];
        for (size_t i = 0; i < SENT; i++)
            data[i] = pattern(i);
        for (size_t start = 0; start < SENT; start += CHUNK) {
            size_t len = SENT - start < CHUNK ? SENT - start : CHUNK;
            if ((result = iii_writer_write(writer, data + start, len, TIMEOUT_MS)) != III_OK) {
                fail_call("child", "iii_writer_write", result);
                _exit(1);
            }
        }
    } else {
        iii_reader *reader = NULL;
        if ((result = iii_reader_open(worker, reader_ref, NULL, &reader)) != III_OK) {
            fail_call("child", "iii_reader_open", result);
            _exit(1);
        }
        static uint8_t data[CHUNK];
        size_t len = 0;
        if ((result = iii_reader_read(reader, data, sizeof data, &len, TIMEOUT_MS)) != III_OK) {
            fail_call("child", "iii_reader_read", result);
            _exit(1);
        }
        if (write_all(fd, "read\n", 5) != 0)
            _exit(1);
    }
    for (;;)
        pause(); /* until SIGKILL: nothing is closed or freed on purpose */
}

/* The parent's side when the writer is killed. */
static int reader_side(iii_worker *worker, const char *reader_ref)
{
    int status = 1;
    iii_reader *reader = NULL;
    iii_result result = iii_reader_open(worker, reader_ref, NULL, &reader);
    if (result != III_OK) {
        fail_call("parent", "iii_reader_open", result);
        goto done;
    }
    static uint8_t data[CHUNK];
    size_t got = 0;
    while (got < SENT) {
        size_t len = 0;
        if ((result = iii_reader_read(reader, data, sizeof data, &len, TIMEOUT_MS)) != III_OK) {
            fail_call("parent", "reading what the writer wrote", result);
            goto done;
        }
        for (size_t i = 0; i < len; i++) {
            if (data[i] != pattern(got + i)) {
                fprintf(stderr, "%s: byte %zu differs\n", program, got + i);
                goto done;
            }
        }
        got += len;
    }
    size_t len = 0;
    if ((result = iii_reader_read(reader, data, sizeof data, &len, 300)) != III_TIMEOUT) {
        fail_call("parent", "a read while the writer is silent (expected III_TIMEOUT)", result);
        goto done;
    }

    kill_child();
    result = iii_reader_read(reader, data, sizeof data, &len, TIMEOUT_MS);
    if (result != III_WRITER_LOST) {
        fail_call("parent", "the read after the writer was killed (expected III_WRITER_LOST)", result);
        goto done;
    }
    /* It stays lost. */
    result = iii_reader_read(reader, data, sizeof data, &len, TIMEOUT_MS);
    if (result != III_WRITER_LOST) {
        fail_call("parent", "a second read after the writer was lost (expected III_WRITER_LOST)", result);
        goto done;
    }
    printf("writer killed: reader got %zu bytes, then III_TIMEOUT, then III_WRITER_LOST\n", got);
    status = 0;
done:
    iii_reader_free(reader);
    return status;
}

/* The parent's side when the reader is killed. */
static int writer_side(iii_worker *worker, const char *writer_ref, int fd)
{
    int status = 1;
    iii_writer *writer = NULL;
    iii_result result = iii_writer_open(worker, writer_ref, NULL, &writer);
    if (result != III_OK) {
        fail_call("parent", "iii_writer_open", result);
        goto done;
    }
    static uint8_t data[CHUNK];
    memset(data, 'x', sizeof data);
    if ((result = iii_writer_write(writer, data, sizeof data, TIMEOUT_MS)) != III_OK) {
        fail_call("parent", "the first write", result);
        goto done;
    }
    char line[16];
    if (read_line(fd, line, sizeof line) != 0 || strcmp(line, "read") != 0) {
        fprintf(stderr, "%s: the reader did not report its read\n", program);
        goto done;
    }
    kill_child();

    size_t written = sizeof data;
    while (written < READ_LIMIT) {
        result = iii_writer_write(writer, data, sizeof data, TIMEOUT_MS);
        if (result != III_OK)
            break;
        written += sizeof data;
    }
    if (result != III_READER_CLOSED) {
        fail_call("parent", "writes after the reader was killed (expected III_READER_CLOSED)", result);
        goto done;
    }
    printf("reader killed: writer got III_READER_CLOSED (%zu MiB written after the kill)\n", (written - sizeof data) >> 20);
    status = 0;
done:
    iii_writer_free(writer);
    return status;
}

int main(int argc, char **argv)
{
    const char *url = getenv("III_URL");
    if (argc != 2 || (strcmp(argv[1], "writer") != 0 && strcmp(argv[1], "reader") != 0) || url == NULL) {
        fprintf(stderr, "usage: III_URL=ws://... killed_peer writer|reader\n");
        return 2;
    }
    int kill_writer = strcmp(argv[1], "writer") == 0;

    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        return 1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        child(url, fds[1], kill_writer);
    }
    close(fds[1]);
    child_pid = pid;

    int status = 1;
    char ref[4096];
    iii_worker *worker = NULL;
    if (read_line(fds[0], ref, sizeof ref) != 0) {
        fprintf(stderr, "%s: the child sent no channel ref\n", program);
        goto done;
    }
    iii_result result = iii_worker_connect(url, &worker);
    if (result == III_OK)
        result = iii_worker_ready(worker, TIMEOUT_MS);
    if (result != III_OK) {
        fail_call("parent", "connecting", result);
        goto done;
    }
    status = kill_writer ? reader_side(worker, ref) : writer_side(worker, ref, fds[0]);

done:
    kill_child(); /* if a failure came first: the child is not left behind */
    close(fds[0]);
    iii_worker_free(worker);
    return status;
}
