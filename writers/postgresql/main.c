// SPDX-License-Identifier: GPL-2.0
/*
 * vss-writer-postgresql: the in-box writer for a PostgreSQL 15+ cluster.
 *
 * prepare-snapshot  pg_backup_start(label, fast) in a session held open,
 *                   after a temporary slot that keeps the backup's WAL;
 *                   its checkpoint spread (the default) or immediate
 * freeze            the session must still be alive (nothing is blocked:
 *                   PostgreSQL never stops writing; the atomic set of data,
 *                   WAL and tablespaces is what makes the image consistent)
 * post-snapshot     pg_backup_stop(); backup_label, tablespace_map and the
 *                   WAL from the backup's start to its stop go into the
 *                   image, so that a restored image recovers by itself
 * abort             the backup is stopped and its results dropped
 *
 * A server that is down, a lost connection or a failed call vetoes the set
 * with the server's own message. See Documentation/writer-postgresql.rst.
 */
#include "pg_backup.h"
#include "../common/db_writer.h"
#include "../common/image_mount.h"
#include "../common/mountinfo.h"

#include <errno.h>
#include <getopt.h>
#include <libvsswriter.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_WRITER_CLASS_ID	"0a8f9c4e-2d3b-4f6a-9e51-7c2b3d4e5f60"

struct pg_writer {
	struct db_writer dw;		/* first: the callbacks' argument is both */
	struct pgw pgw;
	const char *conninfo;
	uid_t connect_uid;
	enum pgw_checkpoint checkpoint;
};

/*
 * A spread checkpoint is hurried after this share of the step's limit, so
 * that the rest of it (written at full speed) still fits.
 */
#define PG_HURRY_NUM	2
#define PG_HURRY_DEN	3

_Static_assert(DB_WRITER_MAX_PATHS >= 2 + PGW_MAX_TABLESPACES,
	       "the data directory, the WAL directory and every tablespace");

static int pg_open(struct db_writer *dw)
{
	struct pg_writer *pw = (struct pg_writer *)dw;
	int ret = pgw_connect(&pw->pgw, pw->conninfo, pw->connect_uid);

	return ret ? ret : pgw_identify(&pw->pgw);
}

static int pg_identify(struct db_writer *dw)
{
	return pgw_identify(&((struct pg_writer *)dw)->pgw);
}

static void pg_close(struct db_writer *dw)
{
	pgw_close(&((struct pg_writer *)dw)->pgw);
}

static unsigned int pg_paths(struct db_writer *dw, const char **paths)
{
	struct pgw *pgw = &((struct pg_writer *)dw)->pgw;
	unsigned int i, n = 0;

	paths[n++] = pgw->data_dir;
	paths[n++] = pgw->wal_dir;
	for (i = 0; i < pgw->nr_tablespaces; i++)
		paths[n++] = pgw->tablespace[i];
	return n;
}

static const struct db_writer_ops pg_ops = {
	.open = pg_open, .identify = pg_identify, .close = pg_close, .paths = pg_paths,
};

static int on_prepare_snapshot(struct vsw_writer *w, const struct vsw_event *ev,
			       void *arg)
{
	struct pg_writer *pw = arg;
	char label[96];

	if (db_writer_refresh(w, &pw->dw))
		return db_writer_veto(w, &pw->dw);
	snprintf(label, sizeof(label), "vss backup %llu",
		 (unsigned long long)ev->session);
	if (pgw_backup_start(&pw->pgw, label, pw->checkpoint,
			     (unsigned int)((uint64_t)ev->timeout_ms * PG_HURRY_NUM / PG_HURRY_DEN)))
		return db_writer_veto(w, &pw->dw);
	return 0;
}

static int on_freeze(struct vsw_writer *w, const struct vsw_event *ev, void *arg)
{
	struct pg_writer *pw = arg;

	(void)ev;
	/* The backup lives in this session: a lost session lost the backup. */
	if (!pw->pgw.in_backup || pgw_ping(&pw->pgw))
		return vsw_event_fail(w, VSW_FAILURE_RETRYABLE,
				      "the backup session was lost: %s",
				      pw->pgw.error[0] ? pw->pgw.error :
				      "no backup is running");
	return 0;
}

/* Mounts the image holding @path; @in_image receives @path inside it. */
static int mount_image_of(struct vsw_writer *w, const char *set_id,
			  const char *path, struct image_mount *m,
			  char *in_image, size_t len)
{
	struct vss_mount_of where;
	char why[256];
	int ret;

	ret = vss_mount_of_path(path, NULL, &where);
	if (ret)
		return vsw_event_fail(w, VSW_FAILURE_NON_RETRYABLE,
				      "%s: cannot find its filesystem: %s", path,
				      strerror(-ret));
	ret = image_mount(set_id, where.dev, where.fs_type, m, why, sizeof(why));
	if (ret)
		return vsw_event_fail(w, ret == -ENOENT ?
				      VSW_FAILURE_INCONSISTENT_SNAPSHOT :
				      VSW_FAILURE_NON_RETRYABLE, "%s: %s", path, why);
	if (vss_path_in_image(m->dir, where.rel_path, in_image, len)) {
		image_umount(m);
		return vsw_event_fail(w, VSW_FAILURE_NON_RETRYABLE,
				      "%s: path too long in the image", path);
	}
	return 0;
}

static int on_post_snapshot(struct vsw_writer *w, const struct vsw_event *ev,
			    void *arg)
{
	struct pg_writer *pw = arg;
	struct image_mount data_img, wal_img;
	char data_dir[PATH_MAX], wal_dir[PATH_MAX];
	struct vss_mount_of d, l;
	bool wal_apart;
	int ret;

	if (pgw_backup_stop(&pw->pgw))
		return vsw_event_fail(w, VSW_FAILURE_RETRYABLE, "%s", pw->pgw.error);
	if (!ev->set_id)
		return vsw_event_fail(w, VSW_FAILURE_NON_RETRYABLE,
				      "post-snapshot without a snapshot set");
	if (vss_mount_of_path(pw->pgw.data_dir, NULL, &d) ||
	    vss_mount_of_path(pw->pgw.wal_dir, NULL, &l))
		return vsw_event_fail(w, VSW_FAILURE_NON_RETRYABLE,
				      "cannot find the filesystems of %s and %s",
				      pw->pgw.data_dir, pw->pgw.wal_dir);
	wal_apart = d.dev != l.dev;
	ret = mount_image_of(w, ev->set_id, pw->pgw.data_dir, &data_img,
			     data_dir, sizeof(data_dir));
	if (ret)
		return ret;
	if (wal_apart) {
		ret = mount_image_of(w, ev->set_id, pw->pgw.wal_dir, &wal_img,
				     wal_dir, sizeof(wal_dir));
		if (ret) {
			image_umount(&data_img);
			return ret;
		}
	} else if (vss_path_in_image(data_img.dir, l.rel_path, wal_dir,
				     sizeof(wal_dir))) {
		image_umount(&data_img);
		return vsw_event_fail(w, VSW_FAILURE_NON_RETRYABLE,
				      "%s: path too long in the image", pw->pgw.wal_dir);
	}
	ret = pgw_fix_image(&pw->pgw, data_dir, wal_dir);
	if (wal_apart && image_umount(&wal_img) && !ret)
		ret = -EIO;
	if (image_umount(&data_img) && !ret)
		ret = -EIO;
	if (ret)
		return vsw_event_fail(w, VSW_FAILURE_NON_RETRYABLE, "%s",
				      pw->pgw.error[0] ? pw->pgw.error :
				      "cannot unmount the images");
	return 0;
}

static int on_abort(struct vsw_writer *w, const struct vsw_event *ev, void *arg)
{
	struct pg_writer *pw = arg;

	(void)w;
	(void)ev;
	pgw_backup_abort(&pw->pgw);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vss-writer-postgresql [--conninfo STR] [--connect-as USER]\n"
		"                             [--name NAME] [--socket PATH]\n"
		"                             [--freeze-window MS] [--checkpoint fast|spread]\n"
		"  --conninfo STR     libpq connection string\n"
		"                     (default \"host=/var/run/postgresql dbname=postgres user=postgres\")\n"
		"  --connect-as USER  connect with this user's uid, for peer\n"
		"                     authentication (default postgres; \"\" keeps root)\n"
		"  --name NAME        writer name (default postgresql)\n"
		"  --socket PATH      vsswriterd's socket\n"
		"  --freeze-window MS the longest the writer may stay frozen\n"
		"  --checkpoint fast|spread\n"
		"                     the backup's starting checkpoint: spread (default)\n"
		"                     paces its writes as the server's own checkpoints do,\n"
		"                     and is hurried after 2/3 of the step's time limit;\n"
		"                     fast writes every dirty buffer at once\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "conninfo", required_argument, NULL, 'c' },
		{ "connect-as", required_argument, NULL, 'u' },
		{ "name", required_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 's' },
		{ "freeze-window", required_argument, NULL, 'f' },
		{ "checkpoint", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct pg_writer pw = {
		.dw = { .ops = &pg_ops, .program = "vss-writer-postgresql",
			.component_name = "cluster", .error = pw.pgw.error },
	};
	struct vsw_writer_params params = {
		.name = "postgresql",
		.class_id = PG_WRITER_CLASS_ID,
		.writer_class = VSW_CLASS_BACK_END,
	};
	const struct vsw_callbacks cb = {
		.identify = db_writer_on_identify,
		.prepare_snapshot = on_prepare_snapshot,
		.freeze = on_freeze,
		.post_snapshot = on_post_snapshot,
		.abort = on_abort,
	};
	const char *connect_as = "postgres";
	int opt, ret;

	pw.conninfo = "host=/var/run/postgresql dbname=postgres user=postgres";
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': pw.conninfo = optarg; break;
		case 'u': connect_as = optarg; break;
		case 'n': params.name = optarg; break;
		case 's': params.socket_path = optarg; break;
		case 'f': params.freeze_window_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'k':
			if (!strcmp(optarg, "fast")) {
				pw.checkpoint = PGW_CHECKPOINT_FAST;
			} else if (!strcmp(optarg, "spread")) {
				pw.checkpoint = PGW_CHECKPOINT_SPREAD;
			} else {
				fprintf(stderr, "vss-writer-postgresql: --checkpoint %s: "
					"give fast or spread\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	pw.connect_uid = (uid_t)-1;
	if (*connect_as) {
		struct passwd *p = getpwnam(connect_as);

		if (!p) {
			fprintf(stderr, "vss-writer-postgresql: no user %s\n", connect_as);
			return 1;
		}
		pw.connect_uid = p->pw_uid;
	}
	/* Image fix-ups mount images: privately, and gone if we die. */
	ret = vsw_private_mounts();
	if (ret) {
		fprintf(stderr, "vss-writer-postgresql: cannot make a private mount namespace: %s\n",
			strerror(-ret));
		return 1;
	}
	return db_writer_run(&pw.dw, &params, &cb);
}
