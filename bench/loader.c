// SPDX-License-Identifier: GPL-2.0
/* The benchmark's baseline: a minimal libbpf loader, plus the two timing
 * loops the guest needs measured without a JS runtime in the way.
 *
 *   loader attach HOOK OBJ [KEY=VALUE...] [--hold]
 *       open OBJ, set its const volatile globals, set_attach_target(HOOK) on
 *       every SEC("lsm") program, load, attach; print the open->attach span as
 *       JSON on stdout; with --hold print it and wait for stdin to close; then
 *       detach and close. This is what `echo OBJ KEY=VALUE > file` asks krsifs
 *       to do, without the filesystem, the daemon and JS.
 *   loader verify HOOK OBJ
 *       open and load (no attach) with the kernel's stats log (level 4): the
 *       verifier's own "verification time" and "processed N insns".
 *   loader fill HOOK OBJ...
 *       attach the objects one after another, keeping each attached, until one
 *       is refused; print how many programs were attached and the errno.
 *   loader run [-k] N PROG [ARG...]
 *       fork+execv PROG N times (stdout and stderr to /dev/null unless -k),
 *       waiting for each; print each iteration's ns.
 *   loader deny N PROG [ARG...]
 *       execv PROG N times in this process, as fast as it can, each expected
 *       to be refused with EPERM (a refused exec returns and the process goes
 *       on); print {"ns": whole loop, "eperm": refusals}. A burst of denials
 *       for the events benchmark, without fork's cost between them. An exec
 *       that is not refused replaces the loader with PROG: give a PROG that
 *       says so and fails.
 *   loader read N FILE
 *       open+read to EOF+close FILE N times; print each iteration's ns.
 *   loader handover HOOK OBJ FILE [KEY=VALUE...]
 *       load OBJ as attach does, without attaching, then write
 *       "/proc/self/fd/N" (N: its first program's fd) to FILE, a krsifs
 *       behaviour file: the RFC's hand-over of a loaded program. Prints
 *       "prog_id=ID fd=N" and exits (closing everything it holds).
 *
 * Build: cc -O2 bench/loader.c -lbpf -lelf -lz (static when the .a files are
 * there; scripts/bench.sh does it). Errors go to stderr, exit status 1. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define MAX_LINKS 4096

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

/* Set the const volatile global NAME (a char array or an integer) in .rodata. */
static int set_global(struct bpf_object *obj, const char *kv)
{
	const char *eq = strchr(kv, '=');
	const struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map;
	int id;

	if (!eq || !btf)
		return -EINVAL;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	map = bpf_object__find_map_by_name(obj, ".rodata");
	if (id < 0 || !map) {
		/* libbpf names it <obj>.rodata */
		bpf_object__for_each_map(map, obj)
			if (bpf_map__is_internal(map) && strstr(bpf_map__name(map), ".rodata"))
				break;
	}
	if (id < 0 || !map)
		return -ENOENT;
	const struct btf_type *sec = btf__type_by_id(btf, id);
	const struct btf_var_secinfo *vi = btf_var_secinfos(sec);
	size_t sz;
	/* libbpf 1.1 returns it const; before load it is the writable initial image */
	char *data = (char *)bpf_map__initial_value(map, &sz);

	for (int i = 0; i < btf_vlen(sec); i++, vi++) {
		const struct btf_type *v = btf__type_by_id(btf, vi->type);
		const char *name = btf__name_by_offset(btf, v->name_off);

		if (strlen(name) != (size_t)(eq - kv) || strncmp(name, kv, eq - kv))
			continue;
		const struct btf_type *t = btf__type_by_id(btf, btf__resolve_type(btf, v->type));
		if (btf_is_array(t)) {
			size_t n = strlen(eq + 1);
			if (n >= vi->size)
				return -E2BIG;
			memset(data + vi->offset, 0, vi->size);
			memcpy(data + vi->offset, eq + 1, n);
		} else {
			long long x = strtoll(eq + 1, NULL, 0);
			memcpy(data + vi->offset, &x, vi->size < 8 ? vi->size : 8);
		}
		return 0;
	}
	return -ENOENT;
}

struct loaded {
	struct bpf_object *obj;
	struct bpf_link *links[64];
	int nlinks;
	long long open_ns, load_ns, attach_ns;
};

/* open, globals, targets, load; with attach, attach every program. */
static int load_object(struct loaded *l, const char *hook, const char *path, char **kv, int nkv,
		       int attach, char *logbuf, size_t logsz)
{
	struct bpf_program *prog;
	long long t0 = now_ns(), t1, t2;
	int err;

	memset(l, 0, sizeof(*l));
	l->obj = bpf_object__open_file(path, NULL);
	err = libbpf_get_error(l->obj);
	if (err) {
		l->obj = NULL;
		fprintf(stderr, "open %s: %s\n", path, strerror(-err));
		return err;
	}
	for (int i = 0; i < nkv; i++) {
		err = set_global(l->obj, kv[i]);
		if (err) {
			fprintf(stderr, "set global %s: %s\n", kv[i], strerror(-err));
			return err;
		}
	}
	bpf_object__for_each_program(prog, l->obj) {
		/* SEC("lsm"): the caller picks the hook, as a krsifs file does */
		if (strcmp(bpf_program__section_name(prog), "lsm") == 0) {
			err = bpf_program__set_attach_target(prog, 0, hook);
			if (err) {
				fprintf(stderr, "set attach target %s: %s\n", hook, strerror(-err));
				return err;
			}
		}
		if (logbuf) {
			bpf_program__set_log_buf(prog, logbuf, logsz);
			bpf_program__set_log_level(prog, 4); /* BPF_LOG_STATS */
		}
	}
	t1 = now_ns();
	err = bpf_object__load(l->obj);
	if (err) {
		fprintf(stderr, "load %s: %s\n", path, strerror(-err));
		return err;
	}
	t2 = now_ns();
	l->open_ns = t1 - t0;
	l->load_ns = t2 - t1;
	if (!attach)
		return 0;
	bpf_object__for_each_program(prog, l->obj) {
		struct bpf_link *link = bpf_program__attach_lsm(prog);

		err = libbpf_get_error(link);
		if (err) {
			fprintf(stderr, "attach %s: %s\n", bpf_program__name(prog), strerror(-err));
			return err;
		}
		if (l->nlinks < 64)
			l->links[l->nlinks++] = link;
	}
	l->attach_ns = now_ns() - t2;
	return 0;
}

static void unload(struct loaded *l)
{
	for (int i = 0; i < l->nlinks; i++)
		bpf_link__destroy(l->links[i]);
	bpf_object__close(l->obj);
	l->nlinks = 0;
	l->obj = NULL;
}

static int cmd_attach(int argc, char **argv)
{
	struct loaded l;
	int hold = argc > 0 && strcmp(argv[argc - 1], "--hold") == 0;
	int err;

	if (argc - hold < 2)
		return -EINVAL;
	err = load_object(&l, argv[0], argv[1], argv + 2, argc - 2 - hold, 1, NULL, 0);
	if (err) {
		unload(&l);
		return err;
	}
	printf("{\"open_ns\":%lld,\"load_ns\":%lld,\"attach_ns\":%lld,\"total_ns\":%lld,\"programs\":%d}\n",
	       l.open_ns, l.load_ns, l.attach_ns, l.open_ns + l.load_ns + l.attach_ns, l.nlinks);
	fflush(stdout);
	if (hold) {
		char c;

		while (read(0, &c, 1) > 0)
			;
	}
	unload(&l);
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	static char log[1 << 20];
	struct loaded l;
	const char *p;
	long long usec = -1, insns = -1;
	int err;

	if (argc != 2)
		return -EINVAL;
	err = load_object(&l, argv[0], argv[1], NULL, 0, 0, log, sizeof(log));
	if (!err) {
		p = strstr(log, "verification time ");
		if (p)
			usec = atoll(p + strlen("verification time "));
		p = strstr(log, "processed ");
		if (p)
			insns = atoll(p + strlen("processed "));
		printf("{\"open_ns\":%lld,\"load_ns\":%lld,\"verify_us\":%lld,\"processed_insns\":%lld}\n",
		       l.open_ns, l.load_ns, usec, insns);
	}
	unload(&l);
	return err;
}

static int cmd_fill(int argc, char **argv)
{
	static struct loaded l[MAX_LINKS];
	int n = 0, progs = 0, err = 0;
	const char *failed = "";

	if (argc < 2)
		return -EINVAL;
	for (int i = 1; i < argc && n < MAX_LINKS; i++) {
		err = load_object(&l[n], argv[0], argv[i], NULL, 0, 1, NULL, 0);
		if (err) {
			unload(&l[n]);
			failed = argv[i];
			break;
		}
		progs += l[n++].nlinks;
	}
	printf("{\"programs\":%d,\"errno\":%d,\"failed\":\"%s\"}\n", progs, -err, failed);
	while (n > 0)
		unload(&l[--n]);
	return 0;
}

static void print_ns(const long long *ns, int n)
{
	printf("{\"ns\":[");
	for (int i = 0; i < n; i++)
		printf("%s%lld", i ? "," : "", ns[i]);
	printf("]}\n");
}

static int cmd_run(int argc, char **argv)
{
	/* -k: the children keep stdout and stderr (a loader child prints its span) */
	int keep = argc > 0 && strcmp(argv[0], "-k") == 0;
	int n;
	long long *ns;

	argc -= keep;
	argv += keep;
	n = argc > 1 ? atoi(argv[0]) : 0;
	ns = calloc(n > 0 ? n : 1, sizeof(*ns));

	if (n <= 0 || !ns)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		long long t0 = now_ns();
		int status;
		pid_t pid = fork();

		if (pid < 0)
			return -errno;
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);

			if (!keep) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execv(argv[1], argv + 1);
			_exit(127);
		}
		if (waitpid(pid, &status, 0) < 0)
			return -errno;
		ns[i] = now_ns() - t0;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "run %s: iteration %d: status %d\n", argv[1], i, status);
			return -ECHILD;
		}
	}
	print_ns(ns, n);
	return 0;
}

static int cmd_deny(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[0]) : 0;
	int eperm = 0;
	long long t0;

	if (n <= 0)
		return -EINVAL;
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		execv(argv[1], argv + 1);
		if (errno != EPERM) {
			/* not refused (or refused otherwise): the burst is not what it claims */
			fprintf(stderr, "deny %s: iteration %d: %s\n", argv[1], i, strerror(errno));
			return -ECHILD;
		}
		eperm++;
	}
	printf("{\"ns\":%lld,\"eperm\":%d}\n", now_ns() - t0, eperm);
	return 0;
}

static int cmd_read(int argc, char **argv)
{
	static char buf[1 << 16];
	int n = argc == 2 ? atoi(argv[0]) : 0;
	long long *ns = calloc(n > 0 ? n : 1, sizeof(*ns));

	if (n <= 0 || !ns)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		long long t0 = now_ns();
		int fd = open(argv[1], O_RDONLY);
		ssize_t r;

		if (fd < 0)
			return -errno;
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			;
		close(fd);
		if (r < 0)
			return -errno;
		ns[i] = now_ns() - t0;
	}
	print_ns(ns, n);
	return 0;
}

static int cmd_handover(int argc, char **argv)
{
	struct loaded l;
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	char line[64];
	int err, fd, out;

	if (argc < 3)
		return -EINVAL;
	err = load_object(&l, argv[0], argv[1], argv + 3, argc - 3, 0, NULL, 0);
	if (err)
		return err;
	fd = bpf_program__fd(bpf_object__next_program(l.obj, NULL));
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		unload(&l);
		return err;
	}
	out = open(argv[2], O_WRONLY);
	if (out < 0) {
		err = -errno;
		unload(&l);
		return err;
	}
	snprintf(line, sizeof(line), "/proc/self/fd/%d\n", fd);
	if (write(out, line, strlen(line)) < 0) {
		err = -errno;
		fprintf(stderr, "write %s: %s\n", argv[2], strerror(errno));
		close(out);
		unload(&l);
		return err;
	}
	close(out);
	printf("prog_id=%u fd=%d\n", info.id, fd);
	unload(&l);
	return 0;
}

int main(int argc, char **argv)
{
	int err;

	libbpf_set_print(quiet_print);
	if (argc < 2) {
		fprintf(stderr, "usage: loader attach|verify|fill|run|deny|read|handover ...\n");
		return 2;
	}
	if (strcmp(argv[1], "attach") == 0)
		err = cmd_attach(argc - 2, argv + 2);
	else if (strcmp(argv[1], "verify") == 0)
		err = cmd_verify(argc - 2, argv + 2);
	else if (strcmp(argv[1], "fill") == 0)
		err = cmd_fill(argc - 2, argv + 2);
	else if (strcmp(argv[1], "run") == 0)
		err = cmd_run(argc - 2, argv + 2);
	else if (strcmp(argv[1], "read") == 0)
		err = cmd_read(argc - 2, argv + 2);
	else if (strcmp(argv[1], "deny") == 0)
		err = cmd_deny(argc - 2, argv + 2);
	else if (strcmp(argv[1], "handover") == 0)
		err = cmd_handover(argc - 2, argv + 2);
	else
		err = -EINVAL;
	if (err)
		fprintf(stderr, "loader %s: %s\n", argv[1], strerror(-err));
	return err ? 1 : 0;
}
