/*
 * bakeplan's e2e probe: a program baked into a rumprun unikernel that reports on the
 * serial console what rumprun configured before it started the program.
 *
 * Every fact is one line, "BAKEPLAN-PROBE " followed by one JSON object, so that the
 * harness can pick the report out of the boot log's other text. Each object carries
 * "pid" (rumprun gives each program of an image its own process) and "fact":
 *
 *   begin     the report starts; "image": the name this binary was built as (the
 *             harness compiles one copy per baked name with -DPROBE_IMAGE="name"), so
 *             the report says which baked binary rumprun started
 *   argv      "value": the program's argv, argv[0] included
 *   env       "value": every NAME=VALUE of environ, as an object
 *   hostname  "value": gethostname()
 *   cwd       "value": getcwd()
 *   mounts    "value": [{"mountpoint", "fstype", "source"}] from getmntinfo()
 *   file      "mountpoint", "path", "content" (or "error"): for every mount but /
 *             and tmpfs ones, its bakeplan-probe.txt, or for kernfs its "hostname"
 *   tmpfs     "mountpoint", "writable", "size": a file written and read back, and the
 *             file system's size in bytes
 *   ifaddrs   "value": [{"name", "family", "addr", "prefixlen"}] from getifaddrs(),
 *             and {"name", "family": "link", "up"} for each interface itself
 *   routes    "value": [{"family", "dst", "prefixlen", "gateway"}]: the routing table's
 *             routes through a gateway (a default route has dst 0.0.0.0 or ::, prefix 0)
 *   resolv    "content" (or "error"): /etc/resolv.conf, which rumprun writes for DNS
 *   sysctl    "name", "value" (or "error"): for every --sysctl=NAME among the arguments
 *   end       the report is complete
 *
 * The probe reads nothing else of its arguments, so a config may give it any argv.
 * It exits 0; rumprun then halts the guest once every program has returned.
 */

#include <sys/types.h>
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/sysctl.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#ifndef PROBE_IMAGE
#define PROBE_IMAGE "probe"
#endif

#define MARK "BAKEPLAN-PROBE "
#define PROBE_FILE "bakeplan-probe.txt"
#define MAX_CONTENT 4096

/*
 * A fact is built in this buffer and leaves in one write(2), so that the lines of two
 * programs of the image never mix, whatever stdio's buffering of a stdout they share.
 */
static char line[1 << 16];
static size_t used;
/* Set when an object has just been opened: its first field takes no comma. */
static int fresh;

static void
out_c(char c)
{
	if (used < sizeof(line) - 1)
		line[used++] = c;
}

static void
out_s(const char *s)
{
	while (*s)
		out_c(*s++);
}

static void
out_f(const char *fmt, ...)
{
	char buf[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out_s(buf);
}

/* A JSON string, escaped as RFC 8259 requires; bytes >= 0x80 pass through unchanged. */
static void
put_str(const char *s)
{
	const unsigned char *p;

	out_c('"');
	for (p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			out_s("\\\"");
			break;
		case '\\':
			out_s("\\\\");
			break;
		case '\n':
			out_s("\\n");
			break;
		case '\r':
			out_s("\\r");
			break;
		case '\t':
			out_s("\\t");
			break;
		default:
			if (*p < 0x20)
				out_f("\\u%04x", *p);
			else
				out_c(*p);
		}
	}
	out_c('"');
}

/* Opens one fact's line; the caller adds its fields and calls end_fact(). */
static void
begin_fact(const char *fact)
{
	used = 0;
	fresh = 0;
	out_f(MARK "{\"pid\":%d,\"fact\":", (int)getpid());
	put_str(fact);
}

static void
end_fact(void)
{
	out_s("}\n");
	(void)write(STDOUT_FILENO, line, used);
	used = 0;
}

static void
field(const char *name)
{
	if (!fresh)
		out_c(',');
	fresh = 0;
	put_str(name);
	out_c(':');
}

static void
open_obj(void)
{
	out_c('{');
	fresh = 1;
}

static void
close_obj(void)
{
	out_c('}');
	fresh = 0;
}

/* Before each element of an array: a comma but before the first. */
static void
element(int *first)
{
	if (!*first)
		out_c(',');
	*first = 0;
}

static void
str_field(const char *name, const char *value)
{
	field(name);
	put_str(value);
}

static void
report_argv(int argc, char *argv[])
{
	int i, first = 1;

	begin_fact("argv");
	field("value");
	out_c('[');
	for (i = 0; i < argc; i++) {
		element(&first);
		put_str(argv[i]);
	}
	out_c(']');
	end_fact();
}

static void
report_env(void)
{
	char **e, *eq;

	begin_fact("env");
	field("value");
	open_obj();
	for (e = environ; e && *e; e++) {
		eq = strchr(*e, '=');
		if (eq == NULL) {
			/* Not NAME=VALUE: report it whole, with a null value. */
			field(*e);
			out_s("null");
			continue;
		}
		*eq = '\0';
		field(*e);
		*eq = '=';
		put_str(eq + 1);
	}
	close_obj();
	end_fact();
}

static void
report_hostname(void)
{
	char name[MAXHOSTNAMELEN + 1];

	begin_fact("hostname");
	if (gethostname(name, sizeof(name)) == -1) {
		str_field("error", strerror(errno));
	} else {
		name[sizeof(name) - 1] = '\0';
		str_field("value", name);
	}
	end_fact();
}

static void
report_cwd(void)
{
	char dir[MAXPATHLEN];

	begin_fact("cwd");
	if (getcwd(dir, sizeof(dir)) == NULL)
		str_field("error", strerror(errno));
	else
		str_field("value", dir);
	end_fact();
}

/* Reads up to MAX_CONTENT bytes of path; returns NULL with errno set on failure. */
static char *
read_file(const char *path)
{
	static char buf[MAX_CONTENT + 1];
	ssize_t n, total = 0;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return NULL;
	while (total < MAX_CONTENT &&
	    (n = read(fd, buf + total, MAX_CONTENT - total)) > 0)
		total += n;
	close(fd);
	buf[total] = '\0';
	return buf;
}

static void
report_file(const char *mountpoint, const char *name)
{
	char path[MAXPATHLEN + 32];
	const char *content;

	snprintf(path, sizeof(path), "%s%s%s", mountpoint,
	    strcmp(mountpoint, "/") == 0 ? "" : "/", name);
	begin_fact("file");
	str_field("mountpoint", mountpoint);
	str_field("path", path);
	if ((content = read_file(path)) == NULL)
		str_field("error", strerror(errno));
	else
		str_field("content", content);
	end_fact();
}

/* A tmpfs must take a file: write one, read it back, and give the size rumprun set. */
static void
report_tmpfs(const struct statvfs *fs)
{
	static const char text[] = "written by bakeplan's probe\n";
	char path[MAXPATHLEN + 32];
	const char *back;
	int fd, writable = 0;

	snprintf(path, sizeof(path), "%s/.bakeplan-probe-%d", fs->f_mntonname,
	    (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd != -1) {
		writable = write(fd, text, sizeof(text) - 1) == sizeof(text) - 1;
		close(fd);
		back = read_file(path);
		writable = writable && back && strcmp(back, text) == 0;
		unlink(path);
	}
	begin_fact("tmpfs");
	str_field("mountpoint", fs->f_mntonname);
	field("writable");
	out_s(writable ? "true" : "false");
	field("size");
	out_f("%llu", (unsigned long long)fs->f_blocks * fs->f_frsize);
	end_fact();
}

static void
report_mounts(void)
{
	struct statvfs *fs;
	int i, n, first = 1;

	n = getmntinfo(&fs, MNT_NOWAIT);
	begin_fact("mounts");
	if (n <= 0) {
		str_field("error", strerror(errno));
		end_fact();
		return;
	}
	field("value");
	out_c('[');
	for (i = 0; i < n; i++) {
		element(&first);
		open_obj();
		str_field("mountpoint", fs[i].f_mntonname);
		str_field("fstype", fs[i].f_fstypename);
		str_field("source", fs[i].f_mntfromname);
		close_obj();
	}
	out_c(']');
	end_fact();

	for (i = 0; i < n; i++) {
		if (strcmp(fs[i].f_fstypename, "kernfs") == 0)
			report_file(fs[i].f_mntonname, "hostname");
		else if (strcmp(fs[i].f_fstypename, "tmpfs") == 0)
			report_tmpfs(&fs[i]);
		else if (strcmp(fs[i].f_mntonname, "/") != 0)
			report_file(fs[i].f_mntonname, PROBE_FILE);
	}
}

/* The number of leading one bits of a netmask. */
static int
prefixlen(const unsigned char *mask, size_t len)
{
	int bits = 0;
	size_t i;
	unsigned char b;

	for (i = 0; i < len; i++)
		for (b = mask[i]; b & 0x80; b <<= 1)
			bits++;
	return bits;
}

static void
report_ifaddrs(void)
{
	struct ifaddrs *ifa, *all;
	char addr[INET6_ADDRSTRLEN];
	const void *a, *m;
	size_t mlen;
	int family, first = 1;

	begin_fact("ifaddrs");
	if (getifaddrs(&all) == -1) {
		str_field("error", strerror(errno));
		end_fact();
		return;
	}
	field("value");
	out_c('[');
	for (ifa = all; ifa; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL)
			continue;
		family = ifa->ifa_addr->sa_family;
		element(&first);
		open_obj();
		str_field("name", ifa->ifa_name);
		if (family == AF_INET) {
			a = &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
			m = ifa->ifa_netmask ?
			    &((struct sockaddr_in *)ifa->ifa_netmask)->sin_addr : NULL;
			mlen = sizeof(struct in_addr);
		} else if (family == AF_INET6) {
			a = &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
			m = ifa->ifa_netmask ?
			    &((struct sockaddr_in6 *)ifa->ifa_netmask)->sin6_addr : NULL;
			mlen = sizeof(struct in6_addr);
		} else {
			/* Link-level entries name the interface; report it, no address. */
			str_field("family", "link");
			field("up");
			out_s(ifa->ifa_flags & IFF_UP ? "true" : "false");
			close_obj();
			continue;
		}
		if (inet_ntop(family, a, addr, sizeof(addr)) == NULL)
			snprintf(addr, sizeof(addr), "?");
		str_field("family", family == AF_INET ? "inet" : "inet6");
		str_field("addr", addr);
		field("prefixlen");
		out_f("%d", m ? prefixlen(m, mlen) : -1);
		close_obj();
	}
	out_c(']');
	end_fact();
	freeifaddrs(all);
}

/* The text form of a routing message's address, or "" when it is absent or of
 * another family (a gateway may be a link-level address). */
static void
sa_text(const struct sockaddr *sa, int family, char *out, size_t len)
{
	const void *a;

	out[0] = '\0';
	if (sa == NULL || sa->sa_family != family)
		return;
	if (family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (inet_ntop(family, a, out, len) == NULL)
		out[0] = '\0';
}

/* A routing message's netmask has no family of its own and may be cut short. */
static int
mask_prefixlen(const struct sockaddr *sa, int family)
{
	unsigned char mask[sizeof(struct in6_addr)] = { 0 };
	size_t off, alen, have;

	if (sa == NULL)
		return family == AF_INET ? 32 : 128;
	off = family == AF_INET ? offsetof(struct sockaddr_in, sin_addr) :
	    offsetof(struct sockaddr_in6, sin6_addr);
	alen = family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);
	have = sa->sa_len > off ? sa->sa_len - off : 0;
	memcpy(mask, (const char *)sa + off, have < alen ? have : alen);
	return prefixlen(mask, alen);
}

static int
report_routes_of(int family, int first)
{
	int mib[6] = { CTL_NET, PF_ROUTE, 0, family, NET_RT_DUMP, 0 };
	const struct sockaddr *sas[RTAX_MAX];
	struct rt_msghdr *rtm;
	char dst[INET6_ADDRSTRLEN], gw[INET6_ADDRSTRLEN];
	char *buf, *p, *end, *sp;
	size_t len;
	int i;

	if (sysctl(mib, 6, NULL, &len, NULL, 0) == -1 || (buf = malloc(len)) == NULL)
		return first;
	if (sysctl(mib, 6, buf, &len, NULL, 0) == -1) {
		free(buf);
		return first;
	}
	end = buf + len;
	for (p = buf; p < end; p += rtm->rtm_msglen) {
		rtm = (struct rt_msghdr *)p;
		if (rtm->rtm_msglen == 0)
			break;
		if (rtm->rtm_version != RTM_VERSION || !(rtm->rtm_flags & RTF_GATEWAY))
			continue;
		sp = (char *)(rtm + 1);
		for (i = 0; i < RTAX_MAX; i++) {
			sas[i] = NULL;
			if (rtm->rtm_addrs & (1 << i)) {
				sas[i] = (const struct sockaddr *)sp;
				sp += RT_ROUNDUP(sas[i]->sa_len);
			}
		}
		sa_text(sas[RTAX_DST], family, dst, sizeof(dst));
		sa_text(sas[RTAX_GATEWAY], family, gw, sizeof(gw));
		element(&first);
		open_obj();
		str_field("family", family == AF_INET ? "inet" : "inet6");
		str_field("dst", dst);
		field("prefixlen");
		out_f("%d", mask_prefixlen(sas[RTAX_NETMASK], family));
		str_field("gateway", gw);
		close_obj();
	}
	free(buf);
	return first;
}

static void
report_routes(void)
{
	begin_fact("routes");
	field("value");
	out_c('[');
	report_routes_of(AF_INET6, report_routes_of(AF_INET, 1));
	out_c(']');
	end_fact();
}

static void
report_resolv(void)
{
	const char *content;

	begin_fact("resolv");
	if ((content = read_file("/etc/resolv.conf")) == NULL)
		str_field("error", strerror(errno));
	else
		str_field("content", content);
	end_fact();
}

/* One sysctl node, formatted by its type as rumprun's config would have written it. */
static void
report_sysctl(const char *name)
{
	struct sysctlnode *node = NULL;
	int mib[CTL_MAXNAME];
	u_int miblen = CTL_MAXNAME;
	char sbuf[1024];
	u_quad_t q;
	u_int i;
	bool b;
	size_t len;

	begin_fact("sysctl");
	str_field("name", name);
	if (sysctlgetmibinfo(name, mib, &miblen, NULL, NULL, &node,
	    SYSCTL_VERSION) == -1) {
		str_field("error", strerror(errno));
		end_fact();
		return;
	}
	switch (SYSCTL_TYPE(node->sysctl_flags)) {
	case CTLTYPE_INT:
		len = sizeof(i);
		if (sysctl(mib, miblen, &i, &len, NULL, 0) == -1)
			goto fail;
		field("value");
		out_f("%u", i);
		break;
	case CTLTYPE_QUAD:
		len = sizeof(q);
		if (sysctl(mib, miblen, &q, &len, NULL, 0) == -1)
			goto fail;
		field("value");
		out_f("%llu", (unsigned long long)q);
		break;
	case CTLTYPE_BOOL:
		len = sizeof(b);
		if (sysctl(mib, miblen, &b, &len, NULL, 0) == -1)
			goto fail;
		field("value");
		out_s(b ? "true" : "false");
		break;
	case CTLTYPE_STRING:
		len = sizeof(sbuf) - 1;
		if (sysctl(mib, miblen, sbuf, &len, NULL, 0) == -1)
			goto fail;
		sbuf[len < sizeof(sbuf) ? len : sizeof(sbuf) - 1] = '\0';
		str_field("value", sbuf);
		break;
	default:
		str_field("error", "node type not reported by the probe");
	}
	free(node);
	end_fact();
	return;
fail:
	str_field("error", strerror(errno));
	free(node);
	end_fact();
}

int
main(int argc, char *argv[])
{
	static const char opt[] = "--sysctl=";
	int i;

	begin_fact("begin");
	str_field("image", PROBE_IMAGE);
	end_fact();
	report_argv(argc, argv);
	report_env();
	report_hostname();
	report_cwd();
	report_mounts();
	report_ifaddrs();
	report_routes();
	report_resolv();
	for (i = 1; i < argc; i++)
		if (strncmp(argv[i], opt, sizeof(opt) - 1) == 0)
			report_sysctl(argv[i] + sizeof(opt) - 1);
	begin_fact("end");
	end_fact();
	return 0;
}
