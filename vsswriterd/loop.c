// SPDX-License-Identifier: GPL-2.0
/*
 * The event loop; see loop.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "loop.h"
#include "wire.h"

struct wd_loop {
	int epfd;
};

int wd_loop_new(struct wd_loop **out)
{
	struct wd_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int err = -errno;

		free(loop);
		return err;
	}
	*out = loop;
	return 0;
}

void wd_loop_free(struct wd_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop);
}

int wd_loop_run_once(struct wd_loop *loop, int timeout_ms)
{
	struct epoll_event ev;
	struct wd_watch *w;
	int n;

	n = epoll_wait(loop->epfd, &ev, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	w = ev.data.ptr;
	w->fn(w, ev.events);
	return 1;
}

void wd_watch_init(struct wd_watch *w)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

int wd_watch_add(struct wd_loop *loop, struct wd_watch *w, int fd,
		 uint32_t events, wd_io_fn fn, void *arg)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	w->fd = fd;
	w->events = events;
	w->fn = fn;
	w->arg = arg;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		w->fd = -1;
		return -errno;
	}
	return 0;
}

int wd_watch_modify(struct wd_loop *loop, struct wd_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (w->fd < 0)
		return -EBADF;
	if (w->events == events)
		return 0;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void wd_watch_del(struct wd_loop *loop, struct wd_watch *w)
{
	if (w->fd < 0)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->fd = -1;
}

static void timer_ready(struct wd_watch *w, uint32_t events)
{
	struct wd_timer *t = w->arg;
	uint64_t expirations;

	(void)events;
	if (read(w->fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	if (!t->armed || !t->fn)
		return;
	t->armed = false;
	t->fn(t);
}

int wd_timer_init(struct wd_loop *loop, struct wd_timer *t, wd_timer_fn fn,
		  void *arg)
{
	int fd, err;

	memset(t, 0, sizeof(*t));
	t->watch.fd = -1;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	t->fn = fn;
	t->arg = arg;
	err = wd_watch_add(loop, &t->watch, fd, EPOLLIN, timer_ready, t);
	if (err) {
		close(fd);
		return err;
	}
	t->initialized = true;
	return 0;
}

void wd_timer_arm_at(struct wd_timer *t, uint64_t deadline_ns)
{
	struct itimerspec its = { 0 };

	if (!t->initialized)
		return;
	/* A zero it_value would disarm: the earliest time is 1 ns. */
	if (!deadline_ns)
		deadline_ns = 1;
	its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000ULL);
	its.it_value.tv_nsec = (long)(deadline_ns % 1000000000ULL);
	t->armed = true;
	t->deadline_ns = deadline_ns;
	timerfd_settime(t->watch.fd, TFD_TIMER_ABSTIME, &its, NULL);
}

void wd_timer_arm_ms(struct wd_timer *t, uint64_t ms)
{
	wd_timer_arm_at(t, vsw_now_ns() + ms * 1000000ULL);
}

void wd_timer_disarm(struct wd_timer *t)
{
	struct itimerspec its = { 0 };
	uint64_t expirations;

	if (!t->initialized)
		return;
	t->armed = false;
	timerfd_settime(t->watch.fd, 0, &its, NULL);
	/* An expiry already counted would still wake the loop: drop it. */
	(void)!read(t->watch.fd, &expirations, sizeof(expirations));
}

void wd_timer_fini(struct wd_loop *loop, struct wd_timer *t)
{
	int fd = t->watch.fd;

	if (!t->initialized)
		return;
	wd_watch_del(loop, &t->watch);
	close(fd);
	t->armed = false;
	t->initialized = false;
	t->fn = NULL;
}

uint64_t wd_timer_left_ms(const struct wd_timer *t)
{
	uint64_t now = vsw_now_ns();

	if (!t->armed || t->deadline_ns <= now)
		return 0;
	return (t->deadline_ns - now + 999999) / 1000000;
}
