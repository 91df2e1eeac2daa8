/* SMTP load for the gateway benchmark, as bench/smtp-load.py does it but in C, so that the load
 * generator takes less of the two cores the gateway and the raw signing loop are compared on.
 * CONNECTIONS sessions (a thread each), each signed in with the account token, send FROM's
 * messages of SIZE bytes for SECONDS, pipelined (a message's content and the next MAIL/RCPT/DATA
 * in one write). Prints one JSON line: messages sent, messages per second, latency p50/p99 in ms
 * (from the write carrying a message's MAIL to the reply to the message), and replies other
 * than 250.
 *
 * Usage: smtp-load HOST:PORT TOKEN FROM SIZE SECONDS CONNECTIONS
 * Build: cc -O2 -pthread -o smtp-load bench/smtp-load.c
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct session {
    pthread_t thread;
    double *latencies;
    long count, capacity, failures;
    char first_failure[256];
};

static struct sockaddr_in address;
static const char *token, *sender;
static char *message, *envelope;
static size_t message_length, envelope_length;
static double deadline;

static double now(void) {
    struct timespec spec;
    clock_gettime(CLOCK_MONOTONIC, &spec);
    return spec.tv_sec + spec.tv_nsec / 1e9;
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

/* Reads up to and including the next final reply line (its fourth character not '-'); returns
 * its code and copies the line to `line`. */
struct reader {
    char buffer[65536];
    size_t start, end;
};

static int reply(int socket, struct reader *reader, char *line, size_t line_size) {
    for (;;) {
        char *newline = memchr(reader->buffer + reader->start, '\n', reader->end - reader->start);
        if (newline) {
            char *text = reader->buffer + reader->start;
            size_t length = newline - text + 1;
            reader->start += length;
            if (length >= 4 && text[3] == '-')
                continue;
            size_t copied = length < line_size - 1 ? length : line_size - 1;
            memcpy(line, text, copied);
            line[copied] = 0;
            return atoi(text);
        }
        if (reader->start > 0) {
            memmove(reader->buffer, reader->buffer + reader->start, reader->end - reader->start);
            reader->end -= reader->start;
            reader->start = 0;
        }
        ssize_t got = read(socket, reader->buffer + reader->end, sizeof reader->buffer - reader->end);
        if (got <= 0) {
            fprintf(stderr, "the gateway closed the connection\n");
            exit(1);
        }
        reader->end += got;
    }
}

static void send_all(int socket, const char *data, size_t length) {
    while (length > 0) {
        ssize_t sent = write(socket, data, length);
        if (sent <= 0)
            fail("write");
        data += sent;
        length -= sent;
    }
}

static void base64(const unsigned char *in, size_t length, char *out) {
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < length; i += 3) {
        unsigned n = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
        out[o++] = table[n >> 18 & 63], out[o++] = table[n >> 12 & 63];
        out[o++] = table[n >> 6 & 63], out[o++] = table[n & 63];
    }
    if (i < length) {
        unsigned n = in[i] << 16 | (i + 1 < length ? in[i + 1] << 8 : 0);
        out[o++] = table[n >> 18 & 63], out[o++] = table[n >> 12 & 63];
        out[o++] = i + 1 < length ? table[n >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

static void *run(void *argument) {
    struct session *session = argument;
    struct reader *reader = calloc(1, sizeof *reader);
    char line[512], command[1024], plain[512], encoded[700];
    int fd = socket(AF_INET, SOCK_STREAM, 0), yes = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) < 0)
        fail("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    reply(fd, reader, line, sizeof line);
    send_all(fd, "EHLO load.example\r\n", 19);
    reply(fd, reader, line, sizeof line);
    size_t plain_length = (size_t)snprintf(plain, sizeof plain, "%cload%c%s", 0, 0, token);
    base64((unsigned char *)plain, plain_length, encoded);
    int length = snprintf(command, sizeof command, "AUTH PLAIN %s\r\n", encoded);
    send_all(fd, command, length);
    if (reply(fd, reader, line, sizeof line) != 235) {
        fprintf(stderr, "authentication failed: %s", line);
        exit(1);
    }
    double started = now();
    send_all(fd, envelope, envelope_length);
    for (int i = 0; i < 3; i++)
        reply(fd, reader, line, sizeof line);
    char *both = malloc(message_length + envelope_length);
    memcpy(both, message, message_length);
    memcpy(both + message_length, envelope, envelope_length);
    for (;;) {
        int more = now() < deadline;
        send_all(fd, both, message_length + (more ? envelope_length : 0));
        int code = reply(fd, reader, line, sizeof line);
        double finished = now();
        if (session->count == session->capacity) {
            session->capacity = session->capacity ? 2 * session->capacity : 4096;
            session->latencies = realloc(session->latencies, session->capacity * sizeof(double));
        }
        session->latencies[session->count++] = finished - started;
        started = finished;
        if (code != 250 && session->failures++ == 0) {
            /* Kept JSON-safe: the line end, quotes and backslashes become spaces. */
            size_t i;
            for (i = 0; line[i] && i < sizeof session->first_failure - 1; i++)
                session->first_failure[i] = (line[i] < ' ' || line[i] == '"' || line[i] == '\\') ? ' ' : line[i];
            session->first_failure[i] = 0;
        }
        if (!more)
            break;
        for (int i = 0; i < 3; i++)
            reply(fd, reader, line, sizeof line);
    }
    send_all(fd, "QUIT\r\n", 6);
    close(fd);
    free(both);
    free(reader);
    return NULL;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: smtp-load HOST:PORT TOKEN FROM SIZE SECONDS CONNECTIONS\n");
        return 2;
    }
    char *host = strdup(argv[1]), *port = strrchr(host, ':');
    if (!port)
        return 2;
    *port++ = 0;
    address.sin_family = AF_INET;
    address.sin_port = htons(atoi(port));
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1)
        return 2;
    token = argv[2], sender = argv[3];
    long size = atol(argv[4]), connections = atol(argv[6]);
    double seconds = atof(argv[5]);

    char head[1024];
    int head_length = snprintf(head, sizeof head,
                               "From: Load <%s>\r\nTo: someone@example.net\r\nSubject: load\r\n"
                               "Message-ID: <load@bench.example>\r\n\r\n", sender);
    const char *body_line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    size_t line_length = strlen(body_line);
    long lines = (size - head_length) / (long)line_length;
    if (lines < 1)
        lines = 1;
    message_length = head_length + lines * line_length + 3;
    message = malloc(message_length);
    memcpy(message, head, head_length);
    for (long i = 0; i < lines; i++)
        memcpy(message + head_length + i * line_length, body_line, line_length);
    memcpy(message + message_length - 3, ".\r\n", 3);
    envelope = malloc(1024);
    envelope_length = snprintf(envelope, 1024, "MAIL FROM:<%s>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n", sender);

    struct session *sessions = calloc(connections, sizeof *sessions);
    double started = now();
    deadline = started + seconds;
    for (long i = 0; i < connections; i++)
        pthread_create(&sessions[i].thread, NULL, run, &sessions[i]);
    long total = 0, failures = 0;
    const char *first_failure = NULL;
    for (long i = 0; i < connections; i++) {
        pthread_join(sessions[i].thread, NULL);
        total += sessions[i].count;
        failures += sessions[i].failures;
        if (!first_failure && sessions[i].failures)
            first_failure = sessions[i].first_failure;
    }
    double elapsed = now() - started;
    double *all = malloc((total ? total : 1) * sizeof(double));
    long n = 0;
    for (long i = 0; i < connections; i++)
        for (long j = 0; j < sessions[i].count; j++)
            all[n++] = sessions[i].latencies[j];
    qsort(all, n, sizeof(double), compare);
    double p50 = n ? all[(long)(0.50 * n) < n ? (long)(0.50 * n) : n - 1] * 1000 : 0;
    double p99 = n ? all[(long)(0.99 * n) < n ? (long)(0.99 * n) : n - 1] * 1000 : 0;
    printf("{\"messages\": %ld, \"per_second\": %ld, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"size\": %zu, "
           "\"failures\": %ld, \"first_failure\": %s%s%s}\n",
           total, (long)(total / elapsed + 0.5), p50, p99, message_length - 3, failures,
           first_failure ? "\"" : "", first_failure ? first_failure : "null", first_failure ? "\"" : "");
    return 0;
}
