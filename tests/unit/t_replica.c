/* --query-db: the WAL position a recompute waits for on the replica. */
#include "autoconfig.h"

#include "dashboard_int.h"
#include "tap.h"

static const struct {
	const char *lsn, *block, *segment;
	const char *want; /* NULL: refused */
} cases[] = {
	/* Mid-page: the insert position is the end of the last record. */
	{ "0/3001FD8", "8192", "16777216", "0/3001FD8" },
	/* Right after a page header: the last record ended at the boundary,
	 * where the replica's replay position stops (seen on PostgreSQL 15). */
	{ "0/3002018", "8192", "16777216", "0/3002000" },
	/* Right after a segment's long header. */
	{ "0/4000028", "8192", "16777216", "0/4000000" },
	{ "1/28", "8192", "16777216", "1/0" },
	/* 24 bytes into a segment's first page is inside its long header: a
	 * record cannot end there, and the insert position cannot be there. */
	{ "0/4000018", "8192", "16777216", "0/4000000" },
	/* A record may end 40 bytes into an ordinary page (a continuation). */
	{ "0/3002028", "8192", "16777216", "0/3002028" },
	/* Other sizes, and unknown ones falling back to the defaults. */
	{ "0/3002018", "16384", "16777216", "0/3002018" },
	{ "0/3008018", "32768", "67108864", "0/3008000" },
	{ "0/3002018", NULL, NULL, "0/3002000" },
	{ "0/3002018", "junk", "7", "0/3002000" },
	{ "FFFFFFFF/FFFFFFFF", "8192", "16777216", "FFFFFFFF/FFFFFFFF" },
	{ "", "8192", "16777216", NULL },
	{ "3002018", "8192", "16777216", NULL },
	{ "0/3002018 ", "8192", "16777216", NULL },
	{ "0/xyz", "8192", "16777216", NULL },
};

int main(void)
{
	char out[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool r = replica_wait_target(cases[i].lsn, cases[i].block, cases[i].segment, out, sizeof(out));

		if (!cases[i].want) {
			ok(!r, "'%s' is refused", cases[i].lsn);
			continue;
		}
		ok(r, "'%s' is an LSN", cases[i].lsn);
		is_str(out, cases[i].want, "'%s' with %s-byte pages waits for %s", cases[i].lsn,
		       cases[i].block ? cases[i].block : "(unknown)", cases[i].want);
	}
	ok(!replica_wait_target(NULL, "8192", "16777216", out, sizeof(out)), "no LSN");
	return done_testing();
}
