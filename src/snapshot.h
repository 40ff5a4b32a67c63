/*
 * snapshot: one immutable dashboard document, built once per recompute:
 * the document text with version, generatedAt and reason added, and the
 * complete WebSocket frame of 42["dashboardDataUpdate",<doc>] that every
 * client's queue shares by reference. Refcounted; the hub holds the current
 * one, acks being built from doc.
 */
#ifndef PGPUSH_SNAPSHOT_H
#define PGPUSH_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pmdshare.h"

struct snapshot {
	int refs;
	int64_t version;
	int64_t generated_ms;
	char *doc;          /* NUL-terminated JSON object */
	size_t doc_len;
	struct buf *frame;  /* WebSocket text frame, shared by all clients */
	struct buf *frame_z;/* the same, permessage-deflate compressed, or NULL */
	size_t body_off;    /* where the DBA's own members start in doc (after
			     * version, generatedAt, reason): unchanged
			     * documents compare from here */
	int zlevel;         /* snapshot_deflate's level; -1: not compressed */
	/* The update frame as a shared-context message (snapshot_deflate):
	 * each client's frame is chosen from it when written (pmd_msg_bind).
	 * NULL without compression. */
	struct pmd_msg *msg;

	/* The delta from the feed's previous document (hub_feed_publish,
	 * snapshot_attach_patch): 42["dashboardDataPatch",{from,to,patch}],
	 * built once, plain and compressed, shared by every opted-in member
	 * whose last version is patch_from. NULL: no previous document, or the
	 * patch was not smaller than the document (patch_full). */
	int64_t patch_from;
	struct buf *patch_frame;
	struct buf *patch_frame_z;
	struct pmd_msg *patch_msg; /* patch_frame's, when compressed */
	size_t patch_len;   /* the patch array's bytes; 0 without one */
	size_t patch_ops;
	bool patch_full;
	double diff_us;     /* the diff's CPU time */
};

enum snapshot_error {
	SNAPSHOT_ERR_NOMEM = -1,
	SNAPSHOT_ERR_NOT_JSON = -2,    /* the query result is not valid JSON */
	SNAPSHOT_ERR_NOT_OBJECT = -3,  /* valid JSON, but not an object */
};

/* Builds a snapshot from the query's JSON text. reason is any string (it is
 * escaped). On success *out holds one reference owned by the caller. */
int snapshot_new(const char *json, size_t len, int64_t version, int64_t generated_ms,
		 const char *reason, struct snapshot **out)
	__attribute__((warn_unused_result));

/* The same for namespace nsp ("/ops"; NULL or "/": the main one): the
 * frame is 42/ops,["dashboardDataUpdate",<doc>]. */
int snapshot_new_nsp(const char *json, size_t len, int64_t version, int64_t generated_ms,
		     const char *reason, const char *nsp, struct snapshot **out)
	__attribute__((warn_unused_result));

/* Builds frame_z once (RFC 7692, no context takeover: one compressed frame
 * serves every client that negotiated it). Keeps it only when smaller than
 * the plain frame. Returns 0, or -1 when out of memory (frame_z stays NULL
 * and clients get the plain frame). */
int snapshot_deflate(struct snapshot *s, int level);

/* Chains s's messages behind prev's (pmd_msg_keep), so that the payloads
 * of the feed's last few versions stay available as dictionaries after
 * prev is gone. prev NULL: nothing. */
void snapshot_follow(struct snapshot *s, const struct snapshot *prev);

/* Whether a and b carry the same DBA document (byte for byte after the
 * whitespace between tokens went), whatever their version, generatedAt
 * and reason. */
bool snapshot_same_document(const struct snapshot *a, const struct snapshot *b);

/* Diffs prev's document into s's (jsonpatch_diff, both as clients hold
 * them: version, generatedAt and reason included) and builds s's patch
 * frames for namespace nsp, compressed at s->zlevel when s was. Returns 0
 * (patch_full set when the patch is not smaller: no frame), or -1 when
 * out of memory or the diff failed (no frame: members get the document). */
int snapshot_attach_patch(struct snapshot *s, const struct snapshot *prev, const char *nsp);

static inline struct snapshot *snapshot_ref(struct snapshot *s)
{
	s->refs++;
	return s;
}

/* snapshot_unref(NULL) is a no-op. */
void snapshot_unref(struct snapshot *s);

/* Copies valid JSON text to out (room for len bytes) without the
 * whitespace between tokens; strings are copied as they are. Returns the
 * new length. */
size_t snapshot_compact_json(const char *in, size_t len, char *out);

/* Builds the frame of 42["<event>",<json>] (json must be valid JSON). */
struct buf *snapshot_event_frame(const char *event, const char *json, size_t json_len);
/* The same in namespace nsp (42/ops,[...]; NULL, "" or "/": the main one). */
struct buf *snapshot_event_frame_nsp(const char *nsp, const char *event, const char *json,
				     size_t json_len);

/* Appends s to dst as a JSON string literal (quotes included) into a
 * buffer of dstlen; returns the length or -1 when it does not fit. */
long snapshot_json_string(const char *s, char *dst, size_t dstlen);

#endif
