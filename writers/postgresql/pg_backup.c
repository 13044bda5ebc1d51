// SPDX-License-Identifier: GPL-2.0
#include "pg_backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(struct pgw *pgw, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct pgw *pgw, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pgw->error, sizeof(pgw->error), fmt, ap);
	va_end(ap);
	return err;
}

/*
 * The server's own message on one line: libpq ends it with a newline and
 * puts its hints on lines of their own.
 */
static void one_line(char *msg)
{
	size_t n = strlen(msg), i, j = 0;

	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	for (i = 0; i < n; i++) {
		if (msg[i] == '\n' || msg[i] == '\t') {
			if (j && msg[j - 1] != ' ')
				msg[j++] = ' ';
			continue;
		}
		msg[j++] = msg[i];
	}
	msg[j] = 0;
}

static int fail_pq(struct pgw *pgw, const char *what)
{
	const char *msg = pgw->conn ? PQerrorMessage(pgw->conn) : "no connection";

	fail(pgw, -EIO, "%s: %s", what, msg);
	one_line(pgw->error);
	return -EIO;
}

/*
 * A session as @as_uid (peer authentication reads the credentials of
 * connect()); NULL only when out of memory, else check PQstatus().
 */
static PGconn *open_session(struct pgw *pgw, const char *conninfo, uid_t as_uid)
{
	uid_t saved = geteuid();
	PGconn *conn;

	if (as_uid != (uid_t)-1 && as_uid != saved && seteuid(as_uid)) {
		fail(pgw, -errno, "cannot take uid %u to connect: %s",
		     (unsigned int)as_uid, strerror(errno));
		return NULL;
	}
	conn = PQconnectdb(conninfo);
	if (as_uid != (uid_t)-1 && as_uid != saved && seteuid(saved))
		abort();	/* cannot happen: the saved uid is ours */
	return conn;
}

int pgw_connect(struct pgw *pgw, const char *conninfo, uid_t as_uid)
{
	PGconn *conn;

	memset(pgw, 0, sizeof(*pgw));
	pgw->conninfo = conninfo;
	pgw->as_uid = as_uid;
	conn = open_session(pgw, conninfo, as_uid);
	if (!conn && pgw->error[0])
		return -EPERM;
	pgw->conn = conn;
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		int ret = fail_pq(pgw, "cannot connect to the server");

		PQfinish(conn);
		pgw->conn = NULL;
		return ret;
	}
	pgw->server_version = PQserverVersion(conn);
	if (pgw->server_version < 150000) {
		pgw_close(pgw);
		return fail(pgw, -EPROTONOSUPPORT,
			    "server version %d: pg_backup_start() needs 15 or newer",
			    pgw->server_version);
	}
	return 0;
}

void pgw_close(struct pgw *pgw)
{
	PQfinish(pgw->conn);
	pgw->conn = NULL;
	free(pgw->label);
	free(pgw->tablespace_map);
	pgw->label = pgw->tablespace_map = NULL;
	pgw->in_backup = false;
}

/* Runs @sql with @nparams text parameters; one result, tuples or command. */
static PGresult *query(struct pgw *pgw, const char *sql, int nparams,
		       const char *const *params, const char *what)
{
	PGresult *res;

	if (!pgw->conn) {
		fail(pgw, -ENOTCONN, "%s: not connected to the server", what);
		return NULL;
	}
	res = PQexecParams(pgw->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *msg = PQresultErrorMessage(res);

		fail(pgw, -EIO, "%s: %s", what, *msg ? msg : PQerrorMessage(pgw->conn));
		one_line(pgw->error);
		PQclear(res);
		return NULL;
	}
	return res;
}

static int copy_field(struct pgw *pgw, char *dst, size_t len, PGresult *res,
		      int row, int col, const char *what)
{
	const char *v = PQgetvalue(res, row, col);

	if (PQgetisnull(res, row, col) || strlen(v) >= len)
		return fail(pgw, -EPROTO, "%s: unexpected answer from the server",
			    what);
	strcpy(dst, v);
	return 0;
}

int pgw_ping(struct pgw *pgw)
{
	PGresult *res = query(pgw, "SELECT 1", 0, NULL, "the server does not answer");

	if (!res)
		return -EIO;
	PQclear(res);
	return 0;
}

int pgw_identify(struct pgw *pgw)
{
	char wal_link[PATH_MAX + 8];
	PGresult *res;
	int i, ret;

	res = query(pgw, "SELECT current_setting('data_directory')", 0, NULL,
		    "cannot read the data directory");
	if (!res)
		return -EIO;
	ret = copy_field(pgw, pgw->data_dir, sizeof(pgw->data_dir), res, 0, 0,
			 "data_directory");
	PQclear(res);
	if (ret)
		return ret;
	snprintf(wal_link, sizeof(wal_link), "%s/pg_wal", pgw->data_dir);
	if (!realpath(wal_link, pgw->wal_dir))
		return fail(pgw, -errno, "%s: %s", wal_link, strerror(errno));

	res = query(pgw,
		    "SELECT pg_tablespace_location(oid) FROM pg_tablespace "
		    "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid",
		    0, NULL, "cannot list the tablespaces");
	if (!res)
		return -EIO;
	if (PQntuples(res) > PGW_MAX_TABLESPACES) {
		PQclear(res);
		return fail(pgw, -E2BIG, "more than %d tablespaces",
			    PGW_MAX_TABLESPACES);
	}
	pgw->nr_tablespaces = 0;
	for (i = 0; i < PQntuples(res); i++) {
		char *dst = pgw->tablespace[pgw->nr_tablespaces];

		ret = copy_field(pgw, dst, PATH_MAX, res, i, 0, "tablespace");
		if (ret)
			break;
		/* An in-place tablespace lies in the data directory itself. */
		if (dst[0] == '/')
			pgw->nr_tablespaces++;
	}
	PQclear(res);
	return ret;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Asks for an immediate checkpoint from a second session: the checkpointer
 * then stops pacing the one in progress. Waits for it (seconds at most:
 * nothing is paced any more).
 */
static int hurry_checkpoint(struct pgw *pgw)
{
	PGconn *conn = open_session(pgw, pgw->conninfo, pgw->as_uid);
	PGresult *res;
	int ret = 0;

	if (!conn)
		return -EPERM;
	if (PQstatus(conn) != CONNECTION_OK) {
		ret = fail(pgw, -EIO, "cannot connect to the server: %s",
			   PQerrorMessage(conn));
	} else {
		res = PQexec(conn, "CHECKPOINT");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			ret = fail(pgw, -EIO, "CHECKPOINT: %s", PQresultErrorMessage(res));
		PQclear(res);
	}
	one_line(pgw->error);
	PQfinish(conn);
	return ret;
}

/*
 * pg_backup_start() sent, its answer awaited; with @hurry_ms, the checkpoint
 * it waits for is hurried after that long. The result, or NULL with the
 * reason in @pgw->error.
 */
static PGresult *await_backup_start(struct pgw *pgw, unsigned int hurry_ms)
{
	struct pollfd pfd = { .fd = PQsocket(pgw->conn), .events = POLLIN };
	PGresult *res, *last = NULL;
	struct timespec t0;
	bool hurried = !hurry_ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (PQisBusy(pgw->conn)) {
		long left = hurried ? -1 : (long)hurry_ms - ms_since(&t0);
		int n;

		if (!hurried && left <= 0) {
			hurried = true;
			fprintf(stderr, "vss-writer-postgresql: the spread checkpoint is not done after %u ms "
				"(2/3 of the step's limit): asking for an immediate one\n", hurry_ms);
			if (hurry_checkpoint(pgw))
				fprintf(stderr, "vss-writer-postgresql: cannot hurry the checkpoint: %s\n",
					pgw->error);
			pgw->error[0] = 0;
			continue;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR) {
			fail(pgw, -errno, "pg_backup_start() failed: poll: %s", strerror(errno));
			return NULL;
		}
		if (n > 0 && !PQconsumeInput(pgw->conn)) {
			fail_pq(pgw, "pg_backup_start() failed");
			return NULL;
		}
	}
	/* One statement, one result; the NULL after it ends the command. */
	while ((res = PQgetResult(pgw->conn))) {
		PQclear(last);
		last = res;
	}
	if (!last) {
		fail_pq(pgw, "pg_backup_start() failed");
		return NULL;
	}
	if (PQresultStatus(last) != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorMessage(last);

		fail(pgw, -EIO, "pg_backup_start() failed: %s",
		     *msg ? msg : PQerrorMessage(pgw->conn));
		one_line(pgw->error);
		PQclear(last);
		return NULL;
	}
	return last;
}

int pgw_backup_start(struct pgw *pgw, const char *label,
		     enum pgw_checkpoint checkpoint, unsigned int hurry_ms)
{
	const char *params[2];
	PGresult *res;
	int ret;

	if (pgw->in_backup)
		return fail(pgw, -EALREADY, "a backup is already running in this session");
	free(pgw->label);
	free(pgw->tablespace_map);
	pgw->label = pgw->tablespace_map = NULL;
	/*
	 * A checkpoint between start and stop could remove WAL the restored
	 * image needs; the slot keeps it, and goes with the session.
	 */
	snprintf(pgw->slot, sizeof(pgw->slot), "vss_writer_%ld", (long)getpid());
	params[0] = pgw->slot;
	res = query(pgw, "SELECT pg_create_physical_replication_slot($1, true, true)",
		    1, params, "cannot reserve the WAL of the backup");
	if (!res)
		return -EIO;
	PQclear(res);

	params[0] = label;
	params[1] = checkpoint == PGW_CHECKPOINT_FAST ? "true" : "false";
	if (!PQsendQueryParams(pgw->conn,
			       "SELECT lsn, pg_walfile_name(lsn) FROM pg_backup_start($1, $2::boolean) AS lsn",
			       2, NULL, params, NULL, NULL, 0))
		return fail_pq(pgw, "pg_backup_start() failed");
	res = await_backup_start(pgw, checkpoint == PGW_CHECKPOINT_FAST ? 0 : hurry_ms);
	if (!res)
		return -EIO;
	ret = copy_field(pgw, pgw->start_lsn, sizeof(pgw->start_lsn), res, 0, 0,
			 "pg_backup_start");
	if (!ret)
		ret = copy_field(pgw, pgw->start_wal, sizeof(pgw->start_wal), res,
				 0, 1, "pg_backup_start");
	PQclear(res);
	if (!ret)
		pgw->in_backup = true;
	return ret;
}

static char *dup_field(PGresult *res, int col)
{
	return strdup(PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

int pgw_backup_stop(struct pgw *pgw)
{
	const char *params[1] = { pgw->slot };
	PGresult *res;
	int ret;

	if (!pgw->in_backup)
		return fail(pgw, -EINVAL, "no backup is running in this session");
	/* The segment switch it asks for makes the stop segment complete. */
	res = query(pgw,
		    "SELECT lsn, pg_walfile_name(lsn), labelfile, spcmapfile "
		    "FROM pg_backup_stop(false)",
		    0, NULL, "pg_backup_stop() failed");
	if (!res)
		return -EIO;
	pgw->in_backup = false;
	ret = copy_field(pgw, pgw->stop_lsn, sizeof(pgw->stop_lsn), res, 0, 0,
			 "pg_backup_stop");
	if (!ret)
		ret = copy_field(pgw, pgw->stop_wal, sizeof(pgw->stop_wal), res, 0,
				 1, "pg_backup_stop");
	if (!ret) {
		pgw->label = dup_field(res, 2);
		pgw->tablespace_map = dup_field(res, 3);
		if (!pgw->label || !pgw->tablespace_map)
			ret = fail(pgw, -ENOMEM, "out of memory");
	}
	PQclear(res);
	res = query(pgw, "SELECT pg_drop_replication_slot($1)", 1, params,
		    "cannot drop the backup's replication slot");
	PQclear(res);	/* a temporary slot goes with the session anyway */
	return ret;
}

void pgw_backup_abort(struct pgw *pgw)
{
	if (pgw->in_backup && pgw->conn &&
	    PQstatus(pgw->conn) == CONNECTION_OK) {
		PGresult *res = query(pgw, "SELECT pg_backup_stop(false)", 0,
				      NULL, "pg_backup_stop() at abort");

		PQclear(res);
	}
	pgw->in_backup = false;
	free(pgw->label);
	free(pgw->tablespace_map);
	pgw->label = pgw->tablespace_map = NULL;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

/* Writes @len bytes of @data to @path as @owner's, mode 0600, fsync'ed. */
static int write_whole(const char *path, const void *data, size_t len,
		       const struct stat *owner)
{
	const char *p = data;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	while (len && !ret) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno != EINTR)
			ret = -errno;
		if (n > 0) {
			p += n;
			len -= n;
		}
	}
	if (!ret && fchown(fd, owner->st_uid, owner->st_gid))
		ret = -errno;
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

static int copy_file(const char *from, const char *to, const struct stat *owner)
{
	char buf[1 << 16];
	int in, out, ret = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		ret = -errno;
		close(in);
		return ret;
	}
	while (!ret && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno != EINTR)
				ret = -errno;
			continue;
		}
		for (ssize_t done = 0; !ret && done < n;) {
			ssize_t w = write(out, buf + done, n - done);

			if (w < 0 && errno != EINTR)
				ret = -errno;
			if (w > 0)
				done += w;
		}
	}
	if (!ret && fchown(out, owner->st_uid, owner->st_gid))
		ret = -errno;
	if (!ret && fsync(out))
		ret = -errno;
	if (close(out) && !ret)
		ret = -errno;
	close(in);
	return ret;
}

/* A WAL segment's name: 24 hex digits. */
static bool is_segment(const char *name)
{
	if (strlen(name) != 24)
		return false;
	for (int i = 0; i < 24; i++)
		if (!strchr("0123456789ABCDEF", name[i]))
			return false;
	return true;
}

int pgw_fix_image(struct pgw *pgw, const char *image_data_dir,
		  const char *image_wal_dir)
{
	char from[PATH_MAX], to[PATH_MAX];
	unsigned int copied = 0;
	struct stat owner;
	struct dirent *d;
	DIR *dir;
	int ret;

	if (!pgw->label)
		return fail(pgw, -EINVAL, "no finished backup to put into the image");
	if (stat(image_data_dir, &owner))
		return fail(pgw, -errno, "%s: %s", image_data_dir, strerror(errno));
	snprintf(to, sizeof(to), "%s/backup_label", image_data_dir);
	ret = write_whole(to, pgw->label, strlen(pgw->label), &owner);
	if (ret)
		return fail(pgw, ret, "%s: %s", to, strerror(-ret));
	if (pgw->tablespace_map[0]) {
		snprintf(to, sizeof(to), "%s/tablespace_map", image_data_dir);
		ret = write_whole(to, pgw->tablespace_map,
				  strlen(pgw->tablespace_map), &owner);
		if (ret)
			return fail(pgw, ret, "%s: %s", to, strerror(-ret));
	}
	ret = fsync_dir(image_data_dir);
	if (ret)
		return fail(pgw, ret, "%s: %s", image_data_dir, strerror(-ret));

	/*
	 * The image's WAL ends at the instant, before the backup's end
	 * record; recovery from backup_label needs it. Segments of the same
	 * timeline sort by name, so start..stop is a range of names.
	 */
	dir = opendir(pgw->wal_dir);
	if (!dir)
		return fail(pgw, -errno, "%s: %s", pgw->wal_dir, strerror(errno));
	while ((d = readdir(dir))) {
		if (!is_segment(d->d_name) ||
		    strncmp(d->d_name, pgw->start_wal, 8) ||
		    strcmp(d->d_name, pgw->start_wal) < 0 ||
		    strcmp(d->d_name, pgw->stop_wal) > 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", pgw->wal_dir, d->d_name);
		snprintf(to, sizeof(to), "%s/%s", image_wal_dir, d->d_name);
		ret = copy_file(from, to, &owner);
		if (ret)
			break;
		copied++;
	}
	closedir(dir);
	if (ret)
		return fail(pgw, ret, "copying the backup's WAL to %s: %s",
			    to, strerror(-ret));
	if (!copied)
		return fail(pgw, -ENOENT, "no WAL segment %s..%s in %s",
			    pgw->start_wal, pgw->stop_wal, pgw->wal_dir);
	ret = fsync_dir(image_wal_dir);
	if (ret)
		return fail(pgw, ret, "%s: %s", image_wal_dir, strerror(-ret));
	return 0;
}
