/*
 * pmdshare: shared-context permessage-deflate for messages many clients
 * get (issue 14), the part between pmd's sans-I/O window model and a
 * client's output queue.
 *
 * A struct pmd_msg is one compressible payload: a snapshot's update frame,
 * a patch frame, an ack. It holds the plain frame and a small cache of the
 * compressed frames built from it, one per group key (dictionary payload,
 * suffix, window bits). pmd_msg_bind gives one client the frame its window
 * calls for and records it in that client's struct pmd_window, so the
 * caller must bind exactly when the frame is committed to the client's
 * output, in output order (transport binds when the entry goes into
 * writev). Every client whose window ends with the same payload gets the
 * same frame: in steady state one deflate per broadcast.
 *
 * Which payloads can still serve as a dictionary: every live pmd_msg with an
 * id is in a process-wide registry of weak pointers (one slot per live
 * message, the id naming the slot and its generation), and leaves it when
 * freed. What keeps a message alive is references: its snapshot's, queue
 * entries', and pmd_msg_keep's chain (a feed's last PMDSHARE_KEEP
 * messages). A client whose payload is gone gets a self-contained frame,
 * never one it cannot decode.
 *
 * Not thread-safe, like pmd. Nothing here calls back.
 */
#ifndef PGPUSH_PMDSHARE_H
#define PGPUSH_PMDSHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pmd.h"

#define PMDSHARE_KEEP 4     /* messages a chain keeps alive behind its head */
#define PMDSHARE_CACHE 16   /* frames cached per message; more are built per client */

struct pmd_msg;

/*
 * A payload many clients may get: frame is its plain WebSocket text frame
 * (the msg takes a reference). It gets a process-wide id no other message
 * has had (PMD_NO_ID only when the registry is out of memory: it then
 * never serves as a dictionary) and enters the registry. standalone, if not NULL, is its
 * self-contained 15-bit frame already built (pmd_frame at level), seeded
 * into the cache. level is for self-contained frames; frames with a
 * dictionary use PMD_LEVEL_DICT. NULL when out of memory.
 */
struct pmd_msg *pmd_msg_new(struct buf *frame, struct buf *standalone, int level);

/*
 * A payload for one client (an ack, an error) whose last suffix_len bytes
 * are the last suffix_len bytes of payload suffix_of (PMD_NO_ID: none).
 * It gets no id: nobody uses it as a dictionary, but after it the client's
 * window still ends with that suffix (pmd_window_sent_suffix). The caller
 * vouches for the equality.
 */
struct pmd_msg *pmd_msg_new_tail(struct buf *frame, uint64_t suffix_of, size_t suffix_len,
				 int level);

struct pmd_msg *pmd_msg_ref(struct pmd_msg *m);
/* pmd_msg_unref(NULL) is a no-op. */
void pmd_msg_unref(struct pmd_msg *m);

uint64_t pmd_msg_id(const struct pmd_msg *m);
struct buf *pmd_msg_frame(const struct pmd_msg *m);

/*
 * m keeps prev alive (a reference), and the chain behind prev up to
 * PMDSHARE_KEEP messages in all; older links are cut. A feed calls it for
 * each new payload with its previous one, so clients that skipped a few
 * versions still find their dictionary.
 */
void pmd_msg_keep(struct pmd_msg *m, struct pmd_msg *prev);

/* The registry's look-up: the live message of that id, or NULL. */
struct pmd_msg *pmd_msg_find(uint64_t id);

/* The live registered message whose plain frame is frame, or NULL (a scan
 * of the registry: for rare per-client messages, acks). */
struct pmd_msg *pmd_msg_find_frame(const struct buf *frame);

/*
 * The frame for one client whose window is *w, to be written now: the
 * plain frame (no permessage-deflate, or compressing does not make it
 * smaller), the self-contained frame, or the group frame whose dictionary
 * is the payload at the end of its window. Records the send in *w. Returns
 * a new reference; *compressed says whether RSV1 is set. Out of memory: the
 * plain frame (always safe, it never enters the window).
 */
struct buf *pmd_msg_bind(struct pmd_msg *m, struct pmd_window *w, bool *compressed);

/* Frames built and cache hits since start (for tests and the benchmark). */
struct pmdshare_stats {
	unsigned long long built_dict, built_self, hits, plain;
};
void pmdshare_stats(struct pmdshare_stats *out);

#endif
