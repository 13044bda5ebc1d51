/* SPDX-License-Identifier: GPL-2.0 */
/* A circular doubly linked list with the node inside the element. */
#ifndef WD_LIST_H
#define WD_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct wd_list {
	struct wd_list *next;
	struct wd_list *prev;
};

static inline void wd_list_init(struct wd_list *head)
{
	head->next = head->prev = head;
}

static inline bool wd_list_empty(const struct wd_list *head)
{
	return head->next == head;
}

static inline void wd_list_add_tail(struct wd_list *head, struct wd_list *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

/* Safe to call twice: a removed node points at itself. */
static inline void wd_list_del(struct wd_list *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->next = node->prev = node;
}

static inline bool wd_list_linked(const struct wd_list *node)
{
	return node->next != node;
}

#define wd_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define wd_list_first(head, type, member) \
	(wd_list_empty(head) ? NULL : wd_container_of((head)->next, type, member))

/* Iterates so that the current element may be removed. */
#define wd_list_for_each_safe(pos, tmp, head) \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif /* WD_LIST_H */
