/*
 * pgoutput-capture: reads a real logical replication stream through
 * src/pgoutput.c and prints what it decoded, one line per event worth
 * checking; optionally saves the raw CopyData messages as test vectors.
 *
 *   pgoutput-capture [--binary] [--out FILE] CONNINFO SLOT PUBLICATION
 *
 * Connects with replication=database, creates SLOT as a TEMPORARY LOGICAL
 * pgoutput slot (gone with the connection), starts streaming with
 * proto_version '1', the publication and messages 'true' (binary 'true'
 * with --binary), prints "ready" and then, until a non-transactional
 * logical message with prefix "pgpush.capture.end"
 * (pg_logical_emit_message(false, 'pgpush.capture.end', '')):
 *   commit <schema.table>,...     each committed transaction's tables
 *   relation <id> <schema.table> <replica identity> <columns>
 *   message <prefix>
 * then "kinds" with how many messages of each type it saw, sends a final
 * standby status update and waits until the server shows its position as
 * the slot's confirmed_flush_lsn ("confirmed <lsn>"), which checks the
 * encoder against the server. It answers keepalives that ask for a reply
 * and confirms every commit, as the daemon will.
 *
 * FILE holds each CopyData payload as a big-endian Int32 length and the
 * bytes: the format of tests/unit/pgoutput-stream.bin and of the inputs of
 * tests/fuzz/fuzz_pgoutput.c.
 *
 * Exit status: 0 done, 1 a decoder or server error (printed), 2 usage.
 * Gives up after 60 seconds.
 */
#include "autoconfig.h"

#include "pgoutput.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define END_PREFIX "pgpush.capture.end"

static int64_t pg_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return pgoutput_pg_time((int64_t)tv.tv_sec * 1000000 + tv.tv_usec);
}

static int send_status(PGconn *conn, uint64_t lsn, bool reply)
{
	uint8_t buf[PGOUTPUT_STATUS_LEN];

	/* Nothing is applied anywhere: written and flushed say what was read. */
	if (pgoutput_encode_status(buf, sizeof(buf), lsn, lsn, 0, pg_now(), reply) < 0)
		return -1;
	if (PQputCopyData(conn, (const char *)buf, sizeof(buf)) != 1 || PQflush(conn) != 0) {
		fprintf(stderr, "pgoutput-capture: sending a status update: %s", PQerrorMessage(conn));
		return -1;
	}
	return 0;
}

static int command(PGconn *conn, const char *sql, ExecStatusType want)
{
	PGresult *res = PQexec(conn, sql);
	int rc = 0;

	if (PQresultStatus(res) != want) {
		fprintf(stderr, "pgoutput-capture: %s: %s", sql, PQerrorMessage(conn));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* Waits until the slot's confirmed_flush_lsn reaches lsn, read from a
 * second, ordinary connection. */
static int await_confirmed(const char *conninfo, const char *slot, uint64_t lsn)
{
	PGconn *conn = PQconnectdb(conninfo);
	char want[32];
	int rc = -1;

	snprintf(want, sizeof(want), "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "pgoutput-capture: %s", PQerrorMessage(conn));
		goto out;
	}
	for (int i = 0; i < 200; i++) {
		const char *params[2] = { slot, want };
		PGresult *res = PQexecParams(conn,
			"SELECT confirmed_flush_lsn >= $2::pg_lsn, confirmed_flush_lsn "
			"FROM pg_replication_slots WHERE slot_name = $1", 2, NULL, params, NULL, NULL, 0);
		bool done = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			    strcmp(PQgetvalue(res, 0, 0), "t") == 0;

		if (done)
			printf("confirmed %s\n", PQgetvalue(res, 0, 1));
		PQclear(res);
		if (done) {
			rc = 0;
			goto out;
		}
		usleep(50000);
	}
	fprintf(stderr, "pgoutput-capture: the slot never confirmed %s\n", want);
out:
	PQfinish(conn);
	return rc;
}

int main(int argc, char **argv)
{
	const char *out_path = NULL, *conninfo, *slot, *pub;
	bool binary = false;
	const char *keys[] = { "dbname", "replication", NULL };
	const char *vals[] = { NULL, "database", NULL };
	unsigned long kinds[256] = { 0 };
	struct pgoutput_decoder *dec = NULL;
	PGconn *conn = NULL;
	FILE *out = NULL;
	char sql[512];
	int status = 1, argi = 1;

	for (; argi < argc && strncmp(argv[argi], "--", 2) == 0; argi++) {
		if (strcmp(argv[argi], "--binary") == 0)
			binary = true;
		else if (strcmp(argv[argi], "--out") == 0 && argi + 1 < argc)
			out_path = argv[++argi];
		else
			break;
	}
	if (argc - argi != 3) {
		fprintf(stderr, "usage: %s [--binary] [--out FILE] CONNINFO SLOT PUBLICATION\n", argv[0]);
		return 2;
	}
	conninfo = argv[argi];
	slot = argv[argi + 1];
	pub = argv[argi + 2];
	alarm(60);

	if (out_path && !(out = fopen(out_path, "wb"))) {
		perror(out_path);
		return 1;
	}
	if (pgoutput_decoder_new(&dec, 0) < 0)
		goto out;
	vals[0] = conninfo;
	conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "pgoutput-capture: %s", PQerrorMessage(conn));
		goto out;
	}
	snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT \"%s\" TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT",
		 slot);
	if (command(conn, sql, PGRES_TUPLES_OK) < 0)
		goto out;
	snprintf(sql, sizeof(sql), "START_REPLICATION SLOT \"%s\" LOGICAL 0/0 (proto_version '1', "
		 "publication_names '%s', messages 'true'%s)", slot, pub, binary ? ", binary 'true'" : "");
	if (command(conn, sql, PGRES_COPY_BOTH) < 0)
		goto out;
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		char *buf = NULL;
		int len = PQgetCopyData(conn, &buf, 0);
		struct pgoutput_event ev;
		int rc;

		if (len < 0) {
			fprintf(stderr, "pgoutput-capture: stream ended: %s", PQerrorMessage(conn));
			goto out;
		}
		if (out) {
			uint8_t n[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };

			if (fwrite(n, 1, 4, out) != 4 || fwrite(buf, 1, (size_t)len, out) != (size_t)len) {
				perror(out_path);
				PQfreemem(buf);
				goto out;
			}
		}
		rc = pgoutput_feed(dec, (const uint8_t *)buf, (size_t)len, &ev);
		if (rc < 0) {
			printf("error %s (message type '%c', %d bytes)\n", pgoutput_error_message(rc),
			       len ? buf[0] : '?', len);
			PQfreemem(buf);
			goto out;
		}
		kinds[ev.msg == 'k' ? 'k' : (uint8_t)ev.kind]++;
		switch (ev.type) {
		case PGOUTPUT_EV_COMMIT:
			printf("commit ");
			for (size_t i = 0; i < ev.ntables; i++)
				printf("%s%s", i ? "," : "", ev.tables[i]->name);
			printf("\n");
			rc = send_status(conn, pgoutput_decoder_flush_lsn(dec), false);
			break;
		case PGOUTPUT_EV_RELATION:
			printf("relation %" PRIu32 " %s %c %u\n", ev.relation->id, ev.relation->name,
			       ev.relation->replident, (unsigned)ev.relation->ncols);
			break;
		case PGOUTPUT_EV_MESSAGE:
			printf("message %s\n", ev.prefix);
			break;
		case PGOUTPUT_EV_KEEPALIVE:
			if (ev.reply_requested)
				rc = send_status(conn, pgoutput_decoder_flush_lsn(dec), false);
			break;
		default:
			break;
		}
		if (ev.type == PGOUTPUT_EV_MESSAGE && !ev.transactional &&
		    strcmp(ev.prefix, END_PREFIX) == 0) {
			/* The marker's own position is handled too. */
			uint64_t lsn = ev.wal_end > pgoutput_decoder_flush_lsn(dec) ? ev.wal_end
										   : pgoutput_decoder_flush_lsn(dec);

			PQfreemem(buf);
			printf("kinds");
			for (int k = 0; k < 256; k++) {
				if (kinds[k])
					printf(" %c=%lu", k, kinds[k]);
			}
			printf("\n");
			fflush(stdout);
			if (send_status(conn, lsn, false) < 0 || await_confirmed(conninfo, slot, lsn) < 0)
				goto out;
			break;
		}
		PQfreemem(buf);
		if (rc < 0)
			goto out;
	}
	status = 0;
out:
	fflush(stdout);
	if (out && fclose(out) != 0) {
		perror(out_path);
		status = 1;
	}
	PQfinish(conn);
	pgoutput_decoder_free(dec);
	return status;
}
