// SPDX-License-Identifier: GPL-2.0
/*
 * The shape both in-box database writers share; see db_writer.h.
 */
#include "db_writer.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void fill_component(struct db_writer *dw)
{
	dw->component = (struct vsw_component){
		.name = dw->component_name,
		.paths = dw->paths,
		.path_count = dw->ops->paths(dw, dw->paths),
		.backup_types = VSW_BACKUP_FULL | VSW_BACKUP_COPY,
	};
}

int db_writer_refresh(struct vsw_writer *w, struct db_writer *dw)
{
	const struct db_writer_ops *ops = dw->ops;
	int ret;

	if (ops->identify(dw)) {
		ops->close(dw);
		ret = ops->open(dw);
		if (ret)
			return ret;
	}
	fill_component(dw);
	ret = vsw_writer_set_components(w, &dw->component, 1);
	if (!ret)
		dw->identified = true;
	return ret;
}

int db_writer_veto(struct vsw_writer *w, struct db_writer *dw)
{
	return vsw_event_fail(w, VSW_FAILURE_RETRYABLE, "%s", dw->error);
}

int db_writer_on_identify(struct vsw_writer *w, const struct vsw_event *ev, void *arg)
{
	struct db_writer *dw = arg;

	(void)ev;
	/*
	 * A server that is down keeps the components it had: a set of its
	 * devices is then vetoed at prepare-snapshot with the server's
	 * message, instead of going on without the writer.
	 */
	if (db_writer_refresh(w, dw) && !dw->identified)
		return db_writer_veto(w, dw);
	return 0;
}

int db_writer_run(struct db_writer *dw, struct vsw_writer_params *params,
		  const struct vsw_callbacks *cb)
{
	struct vsw_writer *w;
	sigset_t stop;
	int sig, ret;

	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	/* Components from the start, so that `vssctl writers` shows them. */
	if (!dw->ops->open(dw)) {
		fill_component(dw);
		params->components = &dw->component;
		params->component_count = 1;
		dw->identified = true;
	} else {
		fprintf(stderr, "%s: %s (retrying at every backup)\n", dw->program,
			dw->error);
	}
	ret = vsw_writer_start(params, cb, dw, &w);
	if (ret) {
		fprintf(stderr, "%s: %s\n", dw->program, strerror(-ret));
		return 1;
	}
	sigwait(&stop, &sig);
	vsw_writer_stop(w);
	dw->ops->close(dw);
	return 0;
}
