// SPDX-License-Identifier: GPL-2.0
/*
 * vss_test_requester: a requester on the libvss session API, for the VM
 * tests and the benchmark. It runs the sequence step by step and prints
 * one JSON object at the end (set id, timing, the writers' results, the
 * error), so that a test can check every outcome; it can also stop and
 * wait, or die, after any of its own steps.
 *
 *   vss_test_requester [--socket S] [--volume DEV]... [--writer-volumes]
 *       --storage PATH [--limit SIZE] [--step-timeout MS] [--queue-timeout MS]
 *       [--end complete|failed|detach|abort|close] [--die-after STEP]
 *       [--pause-after STEP] [--pidfile F] [--no-freeze] [--direct]
 *
 * --direct takes the set with vss_create_set(), without vsswriterd: the
 * baseline of the benchmark.
 *
 * STEP is gather, prepare or create. --pause-after waits for SIGUSR1 (or
 * a SIGKILL).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../vssctl/libvss.h"

static volatile sig_atomic_t resumed;

static void on_usr1(int sig)
{
	(void)sig;
	resumed = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_results(struct vss_session *s)
{
	const struct vss_writer_result *r;
	size_t n, i;

	vss_session_results(s, &r, &n);
	printf("\"writers\":[");
	for (i = 0; i < n; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_string(r[i].name);
		printf(",\"state\":%u,\"state_name\":\"%s\",\"failure\":\"%s\",\"failed_step\":\"%s\","
		       "\"excluded\":%s,\"frozen_us\":%llu,\"message\":", r[i].state,
		       vss_writer_state_name(r[i].state), vss_writer_failure_name(r[i].failure),
		       vss_writer_step_name(r[i].failed_step), r[i].excluded ? "true" : "false",
		       (unsigned long long)r[i].frozen_us);
		json_string(r[i].message);
		putchar('}');
	}
	putchar(']');
}

static void checkpoint(const char *step, const char *die_after, const char *pause_after)
{
	if (die_after && !strcmp(die_after, step)) {
		fflush(stdout);
		raise(SIGKILL);
	}
	if (pause_after && !strcmp(pause_after, step)) {
		fprintf(stderr, "vss_test_requester: paused after %s\n", step);
		while (!resumed)
			pause();
	}
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "volume", required_argument, NULL, 'v' },
		{ "writer-volumes", no_argument, NULL, 'W' },
		{ "storage", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'L' },
		{ "step-timeout", required_argument, NULL, 't' },
		{ "queue-timeout", required_argument, NULL, 'q' },
		{ "end", required_argument, NULL, 'e' },
		{ "die-after", required_argument, NULL, 'd' },
		{ "pause-after", required_argument, NULL, 'p' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "no-freeze", no_argument, NULL, 'n' },
		{ "direct", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	struct vss_session_params sp = { 0 };
	struct vss_create_params cp = { 0 };
	struct vss_create_result set = { 0 };
	struct vss_session_timing timing = { 0 };
	const char *volumes[64], *end = "complete", *die_after = NULL, *pause_after = NULL;
	const char *failed_step = NULL, *pidfile = NULL;
	size_t volume_count = 0, i;
	bool writer_volumes = false, direct = false;
	uint64_t t_request = 0, t_reply = 0;
	struct vss_session *s;
	char set_id[VSS_ID_STRLEN] = "";
	int opt, err = 0;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			sp.socket_path = optarg;
			break;
		case 'v':
			if (volume_count < 64)
				volumes[volume_count++] = optarg;
			break;
		case 'W':
			writer_volumes = true;
			break;
		case 'S':
			cp.storage_path = optarg;
			break;
		case 'L':
			if (vss_parse_size(optarg, &cp.storage_limit))
				return 2;
			break;
		case 't':
			sp.step_timeout_ms = (uint32_t)atoi(optarg);
			break;
		case 'q':
			sp.queue_timeout_ms = atoi(optarg) ? (uint32_t)atoi(optarg) : VSS_SESSION_NO_WAIT;
			break;
		case 'e':
			end = optarg;
			break;
		case 'd':
			die_after = optarg;
			break;
		case 'p':
			pause_after = optarg;
			break;
		case 'P':
			pidfile = optarg;
			break;
		case 'n':
			cp.flags |= VSS_CREATE_NO_FREEZE;
			break;
		case 'D':
			direct = true;
			break;
		default:
			fprintf(stderr, "vss_test_requester: see the comment at the top of the source\n");
			return 2;
		}
	}
	signal(SIGUSR1, on_usr1);
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");

		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	if (direct) {
		struct vss_handle *h;

		cp.devices = volumes;
		cp.device_count = volume_count;
		err = vss_open(&h);
		if (!err) {
			t_request = now_ns();
			err = vss_create_set(h, &cp, &set);
			t_reply = now_ns();
		}
		if (!err)
			vss_id_format(&set.set_id, set_id);
		printf("{\"ok\":%s,\"errno\":%d,\"set_id\":\"%s\",\"request_ns\":%llu,"
		       "\"reply_ns\":%llu,\"created_ns\":%llu,\"hold_us\":%llu,\"writers\":[]}\n",
		       err ? "false" : "true", -err, set_id, (unsigned long long)t_request,
		       (unsigned long long)t_reply,
		       (unsigned long long)(set.snapshot_count ? set.snapshots[0].created_ns : 0),
		       (unsigned long long)set.hold_us);
		vss_create_result_free(&set);
		if (!err)
			vss_close(h);
		return err ? 1 : 0;
	}
	err = vss_session_open(&sp, &s);
	if (err) {
		printf("{\"ok\":false,\"errno\":%d,\"error\":\"%s\",\"step\":\"open\"}\n", -err,
		       vss_strerror(err));
		return 1;
	}
	err = vss_session_gather(s, NULL, NULL);
	if (err) {
		failed_step = "gather";
		goto done;
	}
	checkpoint("gather", die_after, pause_after);
	for (i = 0; i < volume_count && !err; i++)
		err = vss_session_add_volume(s, volumes[i]);
	if (!err && writer_volumes)
		err = vss_session_add_writer_volumes(s);
	if (!err)
		err = vss_session_prepare(s);
	if (err) {
		failed_step = "prepare";
		goto done;
	}
	checkpoint("prepare", die_after, pause_after);
	t_request = now_ns();
	err = vss_session_create(s, &cp, &set);
	t_reply = now_ns();
	if (err) {
		failed_step = "create";
		goto done;
	}
	vss_id_format(&set.set_id, set_id);
	vss_session_timing(s, &timing);
	checkpoint("create", die_after, pause_after);
	if (!strcmp(end, "complete") || !strcmp(end, "failed"))
		err = vss_session_backup_complete(s, !strcmp(end, "complete"));
	else if (!strcmp(end, "detach"))
		err = vss_session_detach(s);
	else if (!strcmp(end, "abort"))
		err = vss_session_abort(s);
	if (err)
		failed_step = end;
done:
	printf("{\"ok\":%s,\"errno\":%d,\"error\":", err ? "false" : "true", -err);
	json_string(err ? vss_session_error_message(s) ? vss_session_error_message(s) :
		    vss_strerror(err) : "");
	printf(",\"failed_step\":");
	json_string(failed_step ? failed_step : "");
	printf(",\"writer\":");
	json_string(vss_session_error_writer(s) ? vss_session_error_writer(s) : "");
	printf(",\"set_id\":");
	json_string(set_id);
	printf(",\"snapshots\":%zu,\"request_ns\":%llu,\"reply_ns\":%llu,\"created_ns\":%llu,"
	       "\"hold_us\":%llu,\"timing\":{\"request_to_commit_us\":%llu,\"frozen_us\":%llu,"
	       "\"commit_us\":%llu,\"freeze_us\":%llu,\"thaw_us\":%llu,\"total_us\":%llu},",
	       set.snapshot_count, (unsigned long long)t_request, (unsigned long long)t_reply,
	       (unsigned long long)(set.snapshot_count ? set.snapshots[0].created_ns : 0),
	       (unsigned long long)set.hold_us, (unsigned long long)timing.request_to_commit_us,
	       (unsigned long long)timing.frozen_us, (unsigned long long)timing.commit_us,
	       (unsigned long long)timing.freeze_us, (unsigned long long)timing.thaw_us,
	       (unsigned long long)timing.total_us);
	if (set.snapshot_count) {
		printf("\"images\":[");
		for (i = 0; i < set.snapshot_count; i++)
			printf("%s\"/dev/%s\"", i ? "," : "", set.snapshots[i].image.name);
		printf("],");
	}
	print_results(s);
	printf("}\n");
	fflush(stdout);
	vss_create_result_free(&set);
	vss_session_close(s);
	return err ? 1 : 0;
}
