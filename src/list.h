/*
 * list: a circular, intrusive, doubly linked list (the kernel's list_head,
 * libuv's queue). A struct list_node is embedded in the element; the list
 * head is a node of its own. The list owns nothing: whoever links an
 * element unlinks it before freeing it. An unlinked node points to itself,
 * so list_unlink is idempotent and list_linked is a cheap test.
 */
#ifndef PGPUSH_LIST_H
#define PGPUSH_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

#define LIST_ENTRY(node, type, member) \
	((type *)(void *)((char *)(node) - offsetof(type, member)))

static inline void list_init(struct list_node *n)
{
	n->prev = n->next = n;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

/* True when n is in a list (n was initialised with list_init). */
static inline bool list_linked(const struct list_node *n)
{
	return n->next != n;
}

static inline void list_insert_before(struct list_node *pos, struct list_node *n)
{
	n->prev = pos->prev;
	n->next = pos;
	pos->prev->next = n;
	pos->prev = n;
}

static inline void list_push_back(struct list_node *head, struct list_node *n)
{
	list_insert_before(head, n);
}

static inline void list_unlink(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* The first node, or NULL when empty. */
static inline struct list_node *list_first(const struct list_node *head)
{
	return list_empty(head) ? NULL : head->next;
}

/* Unlinks and returns the first node, or NULL when empty. */
static inline struct list_node *list_pop_front(struct list_node *head)
{
	struct list_node *n = list_first(head);

	if (n)
		list_unlink(n);
	return n;
}

/* Iterates safely against unlinking the current node. */
#define LIST_FOR_EACH_SAFE(n, tmp, head) \
	for ((n) = (head)->next, (tmp) = (n)->next; (n) != (head); (n) = (tmp), (tmp) = (n)->next)

#endif
