// SPDX-License-Identifier: GPL-2.0
/*
 * The real binaries on the host: vsswriterd (in the foreground, on its
 * own socket and state directory, memory not locked) with a hook, and
 * vssctl's writer commands against it. There is no vss module here, so
 * nothing is committed; what is checked is what does not need one.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "harness.h"

static char sock[600], env_sock[700], conf[600], hooks[600];

static int vssctl(char **out, char **err, const char *a1, const char *a2, const char *a3)
{
	const char *bin = getenv("VSSCTL_BIN");
	const char *argv[] = { bin, a1, a2, a3, NULL };
	const char *env[] = { env_sock, NULL };

	return t_run(argv, env, out, err);
}

int main(void)
{
	const char *daemon = getenv("VSSWRITERD_BIN");
	char state[600], hook[700], *out, *err;
	struct json_object *arr;
	pid_t pid;
	FILE *f;
	int rc, i;

	if (!daemon || !getenv("VSSCTL_BIN")) {
		t_skip("VSSWRITERD_BIN and VSSCTL_BIN are not set", "the binaries");
		return t_done();
	}
	snprintf(sock, sizeof(sock), "%s/cli.sock", t_tmpdir());
	snprintf(env_sock, sizeof(env_sock), "VSS_WRITERD_SOCKET=%s", sock);
	snprintf(state, sizeof(state), "%s/cli-state", t_tmpdir());
	snprintf(conf, sizeof(conf), "%s/cli.conf", t_tmpdir());
	snprintf(hooks, sizeof(hooks), "%s/cli-hooks", t_tmpdir());
	mkdir(hooks, 0755);
	snprintf(hook, sizeof(hook), "%s/10-test", hooks);
	f = fopen(hook, "w");
	fputs("#!/bin/sh\nexit 0\n", f);
	fclose(f);
	chmod(hook, 0755);
	f = fopen(conf, "w");
	fprintf(f, "[vsswriterd]\nhook-dir = %s\n[hook 10-test]\nclass = system\npaths = /\n", hooks);
	fclose(f);

	rc = vssctl(&out, &err, "writers", NULL, NULL);
	t_ok(rc == 12 && strstr(err, "vsswriterd is not running"),
	     "vssctl writers without vsswriterd: exit 12 and says so");
	free(out);
	free(err);

	pid = fork();
	if (pid == 0) {
		execl(daemon, daemon, "--foreground", "--no-mlock", "--socket", sock, "--config", conf,
		      "--state-dir", state, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && access(sock, F_OK); i++)
		usleep(50000);
	t_ok(access(sock, F_OK) == 0, "vsswriterd listens on its socket");

	rc = vssctl(&out, &err, "writers", NULL, NULL);
	t_ok(rc == 0 && strstr(out, "Writer: 10-test") && strstr(out, "State:       [1] stable") &&
	     strstr(out, "Last error:  none") && strstr(out, "hook, system"),
	     "vssctl writers shows the hook, its class and state");
	free(out);
	free(err);

	rc = vssctl(&out, &err, "--json", "writers", NULL);
	arr = json_tokener_parse(out);
	t_ok(rc == 0 && arr && json_object_is_type(arr, json_type_array) &&
	     json_object_array_length(arr) == 1, "vssctl --json writers is an array of the writers");
	if (arr) {
		struct json_object *w = json_object_array_get_idx(arr, 0), *v, *c;

		t_ok(json_object_object_get_ex(w, "kind", &v) && !strcmp(json_object_get_string(v), "hook") &&
		     json_object_object_get_ex(w, "state", &v) && json_object_get_int(v) == 1 &&
		     json_object_object_get_ex(w, "components", &c) &&
		     json_object_array_length(c) == 1,
		     "with kind, state and the component of its configuration");
		json_object_put(arr);
	}
	free(out);
	free(err);

	rc = vssctl(&out, &err, "backup-complete", "3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8", NULL);
	t_ok(rc == 5 && strstr(err, "set 3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8") &&
	     strstr(err, "no set"), "backup-complete of a set vsswriterd does not hold: exit 5, named");
	free(out);
	free(err);
	rc = vssctl(&out, &err, "abort", "3f2a1b2c-4d5e-4f60-8172-8394a5b6c7d8", NULL);
	t_ok(rc == 5, "abort of such a set: exit 5");
	free(out);
	free(err);
	rc = vssctl(&out, &err, "backup-complete", NULL, NULL);
	t_ok(rc == 2 && strstr(err, "no set given"), "backup-complete without a set: usage");
	free(out);
	free(err);

	kill(pid, SIGTERM);
	waitpid(pid, &rc, 0);
	t_ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "vsswriterd stops cleanly on SIGTERM");
	t_ok(access(sock, F_OK) != 0, "and removes its socket");
	return t_done();
}
