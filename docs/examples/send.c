/* SPDX-License-Identifier: Apache-2.0 */
/*
 * send.c: a complete kanal client in C, to copy into a service backend.
 *
 * It builds one kanal.v1.EventBatch with protobuf-c, POSTs it to kanald
 * over a plain HTTP/1.1 socket (no library beyond libc and protobuf-c),
 * reads the kanal.v1.BatchAck and prints what was accepted and why
 * anything was rejected. It retries the SAME batch (same batch_id, same
 * bytes) when the connection fails or kanald answers 503 or 429 (a rate
 * limit), so an event is never counted twice: kanald answers a batch_id
 * it already has with duplicate: true and adds nothing. Any other answer
 * is final and is not retried: the same bytes would get the same answer.
 *
 *   protoc-c --c_out=gen -Iproto proto/kanal/v1/events.proto
 *   cc -std=c11 -D_GNU_SOURCE -Igen docs/examples/send.c \
 *       gen/kanal/v1/events.pb-c.c -lprotobuf-c -o kanal-example-send
 *   KANAL_TOKEN=... ./kanal-example-send http://127.0.0.1:8080/v1/events
 *
 * (The CMake build makes it as build/docs/examples/kanal-example-send.)
 *
 * Usage: kanal-example-send [-b BATCH_ID] [-a ATTEMPTS] [-x] URL
 *   -b  the batch_id (default: derived from the time and the process id);
 *       keep it when you resend the same events
 *   -a  how many times to try before giving up (default 8)
 *   -x  add one invalid event (a raw NIK as citizen_ref) to see a rejection
 * Exit: 0 the batch was acknowledged (even if some events were rejected),
 * 1 kanald refused the whole batch or could not be reached, 2 usage.
 *
 * Only http:// is spoken here. For https (kanald --tls-cert, or a proxy)
 * use libcurl or OpenSSL's BIO_new_ssl_connect in post_once().
 */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "kanal/v1/events.pb-c.h"

#define IO_TIMEOUT_S	10		/* per connect, send and receive */
#define BACKOFF_MAX_S	30		/* longest wait between two tries */
#define RESPONSE_MAX	(1 << 20)	/* a BatchAck of 10,000 rejections fits */

struct url {
	char host[256];
	char port[8];
	char path[512];
};

struct response {
	int status;		/* HTTP status; 0 when no answer came */
	int retry_after_s;	/* Retry-After, or -1 */
	uint8_t *body;		/* points into buf */
	size_t body_len;
	uint8_t buf[RESPONSE_MAX];
};

/* http://HOST[:PORT]/PATH only; returns 0 or -1. */
static int
url_parse(const char *s, struct url *u)
{
	const char *host, *end, *colon, *slash;

	if (strncmp(s, "http://", 7) != 0)
		return -1;
	host = s + 7;
	slash = strchr(host, '/');
	end = slash != NULL ? slash : host + strlen(host);
	colon = memchr(host, ':', (size_t)(end - host));
	if (colon == NULL)
		colon = end;
	if (colon == host || (size_t)(colon - host) >= sizeof(u->host))
		return -1;
	snprintf(u->host, sizeof(u->host), "%.*s", (int)(colon - host), host);
	if (colon < end) {
		if ((size_t)(end - colon - 1) >= sizeof(u->port) ||
		    end == colon + 1)
			return -1;
		snprintf(u->port, sizeof(u->port), "%.*s",
		    (int)(end - colon - 1), colon + 1);
	} else
		snprintf(u->port, sizeof(u->port), "80");
	snprintf(u->path, sizeof(u->path), "%s", slash != NULL ? slash :
	    "/v1/events");
	return 0;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The events of this example. In a real backend there is one event per
 * finished transaction, sent in batches of up to a few thousand every few
 * seconds. The strings must outlive the pack (here they are literals).
 */
static size_t
build_events(Kanal__V1__ServiceEvent *ev, size_t max, int with_bad)
{
	static uint8_t event_id[16];
	static const char raw_nik[] = "3273012345678901";
	int64_t t = now_ms();
	size_t n = 0;

	/* event_id: optional, exactly 16 bytes (a UUID); for tracing only. */
	for (size_t i = 0; i < sizeof(event_id); i++)
		event_id[i] = (uint8_t)(rand() & 0xff);

	/* A birth certificate applied for and issued online, 4 minutes. */
	kanal__v1__service_event__init(&ev[n]);
	ev[n].event_id.data = event_id;
	ev[n].event_id.len = sizeof(event_id);
	ev[n].service_code = (char *)"dukcapil.akta-lahir";
	ev[n].channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
	ev[n].occurred_at_ms = t - 60 * 1000;
	ev[n].region_code = (char *)"32.73.01";	/* kecamatan */
	ev[n].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
	ev[n].duration_ms = 4 * 60 * 1000;
	n++;

	/* The same service at the counter of a kelurahan office, 25 minutes. */
	kanal__v1__service_event__init(&ev[n]);
	ev[n].service_code = (char *)"dukcapil.akta-lahir";
	ev[n].channel = KANAL__V1__CHANNEL__CHANNEL_COUNTER;
	ev[n].occurred_at_ms = t - 2 * 60 * 1000;
	ev[n].region_code = (char *)"32.73.01.1001";	/* kelurahan */
	ev[n].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
	ev[n].duration_ms = 25 * 60 * 1000;
	n++;

	/*
	 * A family card changed in the mobile app with a volunteer's help
	 * (assisted digital). citizen_ref is an opaque pseudonym made in
	 * your system, e.g. a keyed hash; never the NIK itself.
	 */
	kanal__v1__service_event__init(&ev[n]);
	ev[n].service_code = (char *)"dukcapil.kartu-keluarga";
	ev[n].channel = KANAL__V1__CHANNEL__CHANNEL_MOBILE_APP;
	ev[n].occurred_at_ms = t - 3 * 60 * 1000;
	ev[n].region_code = (char *)"32.73.02";
	ev[n].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
	ev[n].duration_ms = 6 * 60 * 1000;
	ev[n].assisted = 1;
	ev[n].citizen_ref.data = (uint8_t *)"p1:8f3a0c5d2b7e";
	ev[n].citizen_ref.len = strlen("p1:8f3a0c5d2b7e");
	n++;

	/* An e-KTP session at a kiosk that the citizen left half-way. */
	kanal__v1__service_event__init(&ev[n]);
	ev[n].service_code = (char *)"dukcapil.ktp-el";
	ev[n].channel = KANAL__V1__CHANNEL__CHANNEL_KIOSK;
	ev[n].occurred_at_ms = t - 4 * 60 * 1000;
	ev[n].region_code = (char *)"32.73.02";
	ev[n].outcome = KANAL__V1__OUTCOME__OUTCOME_ABANDONED;
	n++;			/* duration_ms 0: not measured */

	if (with_bad && n < max) {
		/* Rejected with REJECT_REASON_CITIZEN_REF_NIK: 16 digits. */
		kanal__v1__service_event__init(&ev[n]);
		ev[n].service_code = (char *)"dukcapil.akta-lahir";
		ev[n].channel = KANAL__V1__CHANNEL__CHANNEL_WEB;
		ev[n].occurred_at_ms = t;
		ev[n].region_code = (char *)"32.73.01";
		ev[n].outcome = KANAL__V1__OUTCOME__OUTCOME_COMPLETED;
		ev[n].citizen_ref.data = (uint8_t *)raw_nik;
		ev[n].citizen_ref.len = strlen(raw_nik);
		n++;
	}
	return n;
}

static int
connect_to(const struct url *u)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", u->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd == -1)
			continue;
		/* Without timeouts a stalled peer would hang the sender. */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int
write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t w = send(fd, b, len, MSG_NOSIGNAL);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * Splits the answer into status, Retry-After and body. The request said
 * "Connection: close", so the body is everything up to end of file;
 * Content-Length is checked when present.
 */
static int
parse_response(struct response *r, size_t len)
{
	char *head = (char *)r->buf, *end, *line;
	long clen = -1;

	r->buf[len] = '\0';
	end = strstr(head, "\r\n\r\n");
	if (end == NULL || sscanf(head, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	*end = '\0';
	for (line = strstr(head, "\r\n"); line != NULL;
	    line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, "Retry-After:", 12) == 0)
			r->retry_after_s = atoi(line + 12);
		else if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = atol(line + 15);
	}
	r->body = (uint8_t *)end + 4;
	r->body_len = len - (size_t)(r->body - r->buf);
	if (clen >= 0 && (size_t)clen != r->body_len)
		return -1;	/* cut short: treat like a lost connection */
	return 0;
}

/*
 * One POST. Returns 0 with r filled in when an HTTP answer came, -1 on a
 * connection error (nothing is known about the batch then: retry it).
 */
static int
post_once(const struct url *u, const char *token, const uint8_t *body,
    size_t body_len, struct response *r)
{
	char head[1024];
	size_t got = 0;
	int fd, n;

	r->status = 0;
	r->retry_after_s = -1;
	fd = connect_to(u);
	if (fd == -1)
		return -1;
	n = snprintf(head, sizeof(head),
	    "POST %s HTTP/1.1\r\n"
	    "Host: %s:%s\r\n"
	    "Authorization: Bearer %s\r\n"
	    "Content-Type: application/x-protobuf\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "\r\n", u->path, u->host, u->port, token, body_len);
	if (n < 0 || (size_t)n >= sizeof(head) ||
	    write_all(fd, head, (size_t)n) == -1 ||
	    write_all(fd, body, body_len) == -1)
		goto fail;
	for (;;) {
		ssize_t rd = recv(fd, r->buf + got, sizeof(r->buf) - 1 - got, 0);

		if (rd == -1 && errno == EINTR)
			continue;
		if (rd < 0)
			goto fail;
		if (rd == 0)
			break;
		got += (size_t)rd;
		if (got == sizeof(r->buf) - 1)
			goto fail;
	}
	close(fd);
	if (parse_response(r, got) == -1) {
		errno = EPROTO;		/* no complete answer */
		return -1;
	}
	return 0;
fail:
	n = errno;
	close(fd);
	errno = n;
	return -1;
}

/* Prints the acknowledgement; returns 0, or -1 if it does not decode. */
static int
print_ack(const struct response *r)
{
	Kanal__V1__BatchAck *ack;

	ack = kanal__v1__batch_ack__unpack(NULL, r->body_len, r->body);
	if (ack == NULL)
		return -1;
	printf("batch %s: accepted=%u rejected=%u%s\n", ack->batch_id,
	    ack->accepted, ack->rejected, ack->duplicate ?
	    " duplicate (already counted; nothing added)" : "");
	for (size_t i = 0; i < ack->n_rejections; i++) {
		const Kanal__V1__Rejection *rj = ack->rejections[i];
		const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		    &kanal__v1__reject_reason__descriptor, (int)rj->code);

		/* Programs act on the code; the message is for people. */
		printf("  event %u: %s: %s\n", rj->index,
		    v != NULL ? v->name : "REJECT_REASON_?", rj->message);
	}
	kanal__v1__batch_ack__free_unpacked(ack, NULL);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: kanal-example-send [-b BATCH_ID] "
	    "[-a ATTEMPTS] [-x] URL\n(the token comes from $KANAL_TOKEN)\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	Kanal__V1__ServiceEvent ev[8], *evp[8];
	Kanal__V1__EventBatch batch = KANAL__V1__EVENT_BATCH__INIT;
	static struct response resp;	/* 1 MiB: not on the stack */
	char batch_id[65] = "";
	const char *token = getenv("KANAL_TOKEN");
	struct url u;
	uint8_t *body;
	size_t body_len, n;
	int attempts = 8, with_bad = 0, c, rc = 1;
	unsigned backoff_s = 1;

	while ((c = getopt(argc, argv, "a:b:x")) != -1) {
		switch (c) {
		case 'a':
			attempts = atoi(optarg);
			if (attempts < 1)
				usage();
			break;
		case 'b':
			if (strlen(optarg) < 1 || strlen(optarg) > 64)
				usage();
			snprintf(batch_id, sizeof(batch_id), "%s", optarg);
			break;
		case 'x':
			with_bad = 1;
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc || url_parse(argv[optind], &u) == -1)
		usage();
	if (token == NULL || *token == '\0') {
		fprintf(stderr, "set KANAL_TOKEN (kanalctl token new)\n");
		return 2;
	}
	srand((unsigned)now_ms() ^ (unsigned)getpid());

	/*
	 * batch_id: 1 to 64 printable ASCII characters, unique per source for
	 * at least kanald's dedup window (24 h). Choose it once per batch,
	 * before the first try, and keep it with the events until the batch is
	 * acknowledged (store both if your process may restart meanwhile).
	 */
	if (batch_id[0] == '\0')
		snprintf(batch_id, sizeof(batch_id), "example-%lld-%d",
		    (long long)now_ms(), (int)getpid());
	n = build_events(ev, sizeof(ev) / sizeof(ev[0]), with_bad);
	for (size_t i = 0; i < n; i++)
		evp[i] = &ev[i];
	batch.batch_id = batch_id;
	batch.n_events = n;
	batch.events = evp;

	/* Packed once: a retry sends exactly the same bytes. */
	body_len = kanal__v1__event_batch__get_packed_size(&batch);
	body = malloc(body_len);
	if (body == NULL) {
		perror("malloc");
		return 1;
	}
	kanal__v1__event_batch__pack(&batch, body);

	for (int attempt = 1; attempt <= attempts; attempt++) {
		unsigned wait_s;

		if (post_once(&u, token, body, body_len, &resp) == -1) {
			/* Maybe kanald got it, maybe not: the retry decides. */
			fprintf(stderr, "attempt %d: no answer from %s:%s (%s)\n",
			    attempt, u.host, u.port, strerror(errno));
			wait_s = backoff_s;
		} else if (resp.status == 200) {
			if (print_ack(&resp) == -1) {
				fprintf(stderr, "200 but the body is not a "
				    "BatchAck\n");
				break;
			}
			rc = 0;
			break;
		} else if (resp.status == 503 || resp.status == 429) {
			/*
			 * 503 wal_full, batch_in_progress, wal_unavailable or
			 * overloaded; 429 rate_limited: nothing was kept;
			 * wait as told.
			 */
			fprintf(stderr, "attempt %d: %d %.*s", attempt,
			    resp.status, (int)resp.body_len,
			    (const char *)resp.body);
			wait_s = resp.retry_after_s > 0 ?
			    (unsigned)resp.retry_after_s : backoff_s;
		} else {
			/*
			 * 400, 401, 403, 413, 415: the same bytes would get
			 * the same answer. The body is "reason: message".
			 */
			fprintf(stderr, "refused: HTTP %d %.*s\n", resp.status,
			    (int)resp.body_len, (const char *)resp.body);
			break;
		}
		if (attempt == attempts) {
			fprintf(stderr, "giving up after %d attempts; send "
			    "batch %s again later\n", attempts, batch_id);
			break;
		}
		if (wait_s > BACKOFF_MAX_S)
			wait_s = BACKOFF_MAX_S;
		sleep(wait_s);
		if (backoff_s < BACKOFF_MAX_S)
			backoff_s *= 2;
	}
	free(body);
	return rc;
}
