// SPDX-License-Identifier: GPL-2.0
/*
 * vss-writer-mariadb: the in-box writer for a MariaDB 10.4+ server.
 *
 * prepare-snapshot  BACKUP STAGE START, then FLUSH (tables flushed, new
 *                   non-transactional writes wait)
 * freeze            BACKUP STAGE BLOCK_DDL, then BLOCK_COMMIT: no commit
 *                   and no binary log write until the thaw; this is the
 *                   instant of the backup
 * thaw, abort       BACKUP STAGE END
 *
 * One connection holds the stages for the whole sequence; if it drops (or
 * this process dies) the server releases them by itself. Lock waits are
 * bounded by lock_wait_timeout, below the freeze window. A server that is
 * down or a failed stage vetoes the set with the server's message. See
 * Documentation/writer-mariadb.rst.
 */
#include "my_backup.h"
#include "../common/db_writer.h"

#include <errno.h>
#include <getopt.h>
#include <libvsswriter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MY_WRITER_CLASS_ID	"3c7e1f2a-8b4d-4e9f-a6c5-1d2e3f4a5b6c"

struct my_writer {
	struct db_writer dw;		/* first: the callbacks' argument is both */
	struct myw myw;
	const char *socket_path;
	const char *user;
	unsigned int lock_wait_s;
};

_Static_assert(DB_WRITER_MAX_PATHS >= MYW_MAX_DIRS, "every directory of the server");

static int my_open(struct db_writer *dw)
{
	struct my_writer *mw = (struct my_writer *)dw;
	int ret = myw_connect(&mw->myw, mw->socket_path, mw->user, mw->lock_wait_s);

	return ret ? ret : myw_identify(&mw->myw);
}

static int my_identify(struct db_writer *dw)
{
	return myw_identify(&((struct my_writer *)dw)->myw);
}

static void my_close(struct db_writer *dw)
{
	myw_close(&((struct my_writer *)dw)->myw);
}

static unsigned int my_paths(struct db_writer *dw, const char **paths)
{
	struct myw *myw = &((struct my_writer *)dw)->myw;
	unsigned int i;

	for (i = 0; i < myw->nr_dirs; i++)
		paths[i] = myw->dir[i];
	return myw->nr_dirs;
}

static const struct db_writer_ops my_ops = {
	.open = my_open, .identify = my_identify, .close = my_close, .paths = my_paths,
};

static int on_prepare_snapshot(struct vsw_writer *w, const struct vsw_event *ev,
			       void *arg)
{
	struct my_writer *mw = arg;

	(void)ev;
	if (db_writer_refresh(w, &mw->dw) || myw_stage(&mw->myw, MYW_FLUSH)) {
		myw_end(&mw->myw);
		return db_writer_veto(w, &mw->dw);
	}
	return 0;
}

static int on_freeze(struct vsw_writer *w, const struct vsw_event *ev, void *arg)
{
	struct my_writer *mw = arg;

	(void)ev;
	if (myw_stage(&mw->myw, MYW_BLOCK_COMMIT)) {
		myw_end(&mw->myw);
		return db_writer_veto(w, &mw->dw);
	}
	return 0;
}

static int on_end(struct vsw_writer *w, const struct vsw_event *ev, void *arg)
{
	struct my_writer *mw = arg;

	if (myw_end(&mw->myw) && ev->step == VSW_STEP_THAW)
		return db_writer_veto(w, &mw->dw);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vss-writer-mariadb [--socket-path PATH] [--user USER]\n"
		"                          [--lock-wait-timeout SEC] [--name NAME]\n"
		"                          [--socket PATH] [--freeze-window MS]\n"
		"  --socket-path PATH      the server's socket (default: the client's)\n"
		"  --user USER             account with the RELOAD privilege\n"
		"                          (default root, by unix_socket authentication)\n"
		"  --lock-wait-timeout SEC bound on each stage's lock wait (default 20)\n"
		"  --name NAME             writer name (default mariadb)\n"
		"  --socket PATH           vsswriterd's socket\n"
		"  --freeze-window MS      the longest the writer may stay frozen\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket-path", required_argument, NULL, 'p' },
		{ "user", required_argument, NULL, 'u' },
		{ "lock-wait-timeout", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 's' },
		{ "freeze-window", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct my_writer mw = {
		.dw = { .ops = &my_ops, .program = "vss-writer-mariadb",
			.component_name = "server", .error = mw.myw.error },
		.user = "root",
		.lock_wait_s = 20,
	};
	struct vsw_writer_params params = {
		.name = "mariadb",
		.class_id = MY_WRITER_CLASS_ID,
		.writer_class = VSW_CLASS_BACK_END,
	};
	const struct vsw_callbacks cb = {
		.identify = db_writer_on_identify,
		.prepare_snapshot = on_prepare_snapshot,
		.freeze = on_freeze,
		.thaw = on_end,
		.abort = on_end,
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': mw.socket_path = optarg; break;
		case 'u': mw.user = optarg; break;
		case 'l': mw.lock_wait_s = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'n': params.name = optarg; break;
		case 's': params.socket_path = optarg; break;
		case 'f': params.freeze_window_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return db_writer_run(&mw.dw, &params, &cb);
}
