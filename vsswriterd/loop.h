/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's one event loop: epoll over non-blocking descriptors, and a
 * timerfd for every time limit. Single-threaded; callbacks may add and
 * remove watches and timers freely, since each epoll_wait() hands over
 * one event only (no stale pointer can be left in a batch).
 */
#ifndef WD_LOOP_H
#define WD_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct wd_loop;
struct wd_watch;

typedef void (*wd_io_fn)(struct wd_watch *watch, uint32_t events);

struct wd_watch {
	int fd;			/* -1 when not watched */
	uint32_t events;
	wd_io_fn fn;
	void *arg;
};

struct wd_timer;
typedef void (*wd_timer_fn)(struct wd_timer *timer);

struct wd_timer {
	struct wd_watch watch;	/* over the timerfd */
	wd_timer_fn fn;
	void *arg;
	bool armed;
	bool initialized;	/* owns a timerfd */
	uint64_t deadline_ns;	/* CLOCK_MONOTONIC, when armed */
};

int wd_loop_new(struct wd_loop **out);
void wd_loop_free(struct wd_loop *loop);
/*
 * Waits up to @timeout_ms (-1: forever) and dispatches one event.
 * Returns 1 when one was dispatched, 0 on timeout or a signal, -errno.
 */
int wd_loop_run_once(struct wd_loop *loop, int timeout_ms);

void wd_watch_init(struct wd_watch *w);
int wd_watch_add(struct wd_loop *loop, struct wd_watch *w, int fd,
		 uint32_t events, wd_io_fn fn, void *arg);
int wd_watch_modify(struct wd_loop *loop, struct wd_watch *w, uint32_t events);
/* Stops watching; the descriptor stays open. Safe on an unwatched one. */
void wd_watch_del(struct wd_loop *loop, struct wd_watch *w);

/* Creates the timerfd; the timer starts disarmed. */
int wd_timer_init(struct wd_loop *loop, struct wd_timer *t, wd_timer_fn fn,
		  void *arg);
/* Arms (or re-arms) to fire once, @ms from now; 0 fires at once. */
void wd_timer_arm_ms(struct wd_timer *t, uint64_t ms);
void wd_timer_arm_at(struct wd_timer *t, uint64_t deadline_ns);
void wd_timer_disarm(struct wd_timer *t);
/* Closes the timerfd; safe on a timer never initialized (zeroed). */
void wd_timer_fini(struct wd_loop *loop, struct wd_timer *t);
/* Milliseconds left, 0 when due or disarmed. */
uint64_t wd_timer_left_ms(const struct wd_timer *t);

#endif /* WD_LOOP_H */
