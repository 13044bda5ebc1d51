/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the in-box database writers share: one component naming the
 * server's directories, learned from the server itself and kept while the
 * server is down (so that a set of its devices is vetoed at
 * prepare-snapshot with the server's message, instead of going on without
 * the writer), the reconnection before each backup, and the process's
 * life (components from the start, then events until SIGTERM or SIGINT).
 */
#ifndef VSS_DB_WRITER_H
#define VSS_DB_WRITER_H

#include <libvsswriter.h>
#include <stdbool.h>
#include <stddef.h>

#define DB_WRITER_MAX_PATHS	66

struct db_writer;

struct db_writer_ops {
	/* A new connection to the server, then identify; 0 or a negative errno. */
	int (*open)(struct db_writer *dw);
	/* Reads the server's directories again; fails without a connection. */
	int (*identify)(struct db_writer *dw);
	void (*close)(struct db_writer *dw);
	/* The directories identify found, into @paths; returns their count. */
	unsigned int (*paths)(struct db_writer *dw, const char **paths);
};

/* The first member of each writer's own structure, so a pointer to one is one to both. */
struct db_writer {
	const struct db_writer_ops *ops;
	const char *program;		/* "vss-writer-postgresql", for messages */
	const char *component_name;	/* "cluster" */
	const char *error;		/* the server's (or the writer's) last message */
	const char *paths[DB_WRITER_MAX_PATHS];
	struct vsw_component component;
	/* The server's directories were learned once: they stay its components. */
	bool identified;
};

/*
 * Reconnects if the connection is gone or no longer answers, reads the
 * directories and makes them the writer's component. 0, or non-zero with
 * the server's message in @dw->error.
 */
int db_writer_refresh(struct vsw_writer *w, struct db_writer *dw);

/* Fails the step being handled with the server's message (retryable). */
int db_writer_veto(struct vsw_writer *w, struct db_writer *dw);

/* The identify callback; @arg is the struct db_writer. */
int db_writer_on_identify(struct vsw_writer *w, const struct vsw_event *ev, void *arg);

/*
 * The writer's life: SIGTERM and SIGINT are blocked (they end it), the
 * components come from a first identify if the server answers, then the
 * writer runs with @cb (whose argument is @dw) until one of them. The
 * process's exit status.
 */
int db_writer_run(struct db_writer *dw, struct vsw_writer_params *params,
		  const struct vsw_callbacks *cb);

#endif /* VSS_DB_WRITER_H */
