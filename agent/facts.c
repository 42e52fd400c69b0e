/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "facts.h"
#include "fileio.h"

/* Facts are read under facts-root ("" on a real host), so tests can give a fake tree. */
static char *under(const AgentConfig *c, const char *path) {
        return strjoin(strempty(c->facts_root), path);
}

static char *read_line(const char *path) {
        _cleanup_free_ char *s = NULL;
        if (read_file_bounded(path, 4096, &s, NULL) < 0)
                return NULL;
        s[strcspn(s, "\n")] = 0;
        /* trim */
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
                s[--n] = 0;
        return n ? TAKE_PTR(s) : NULL;
}

static int set_from_file(const AgentConfig *c, Obj *o, const char *key, const char *path) {
        _cleanup_free_ char *full = under(c, path);
        if (!full)
                return -ENOMEM;
        _cleanup_free_ char *v = read_line(full);
        if (!v)
                return 0;
        return obj_map_set_str(o, key, v);
}

static int cpu_facts(const AgentConfig *c, Obj *facts) {
        _cleanup_free_ char *text = NULL, *path = under(c, "/proc/cpuinfo");
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        Obj *cpu = obj_map_ensure_map(facts, "cpu");
        if (!cpu)
                return -ENOMEM;
        int r = obj_map_set_int(cpu, "count", n > 0 ? n : 1);
        if (r < 0)
                return r;
        if (!path || read_file_bounded(path, 1 << 20, &text, NULL) < 0)
                return 0;
        char *line = strstr(text, "model name");
        if (!line)
                return 0;
        char *colon = strchr(line, ':');
        if (!colon)
                return 0;
        colon++;
        while (*colon == ' ' || *colon == '\t')
                colon++;
        colon[strcspn(colon, "\n")] = 0;
        return obj_map_set_str(cpu, "model", colon);
}

static int mem_facts(const AgentConfig *c, Obj *facts) {
        _cleanup_free_ char *text = NULL, *path = under(c, "/proc/meminfo");
        if (!path || read_file_bounded(path, 1 << 16, &text, NULL) < 0)
                return 0;
        unsigned long long kb;
        char *p = strstr(text, "MemTotal:");
        if (p && sscanf(p, "MemTotal: %llu kB", &kb) == 1)
                return obj_map_set_int(facts, "memoryBytes", (int64_t)(kb * 1024));
        return 0;
}

static int disk_facts(const AgentConfig *c, Obj *facts) {
        _cleanup_free_ char *dir = under(c, "/sys/block");
        if (!dir)
                return -ENOMEM;
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        Obj *disks = obj_map_ensure_list(facts, "disks");
        if (!disks) {
                closedir(d);
                return -ENOMEM;
        }
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d)) && r >= 0 && obj_len(disks) < 64) {
                if (de->d_name[0] == '.' || startswith(de->d_name, "loop") ||
                    startswith(de->d_name, "ram") || startswith(de->d_name, "zram") ||
                    startswith(de->d_name, "dm-") || startswith(de->d_name, "sr"))
                        continue;
                char path[4608];
                snprintf(path, sizeof(path), "%s/%s/size", dir, de->d_name);
                _cleanup_free_ char *size = read_line(path);
                snprintf(path, sizeof(path), "%s/%s/queue/rotational", dir, de->d_name);
                _cleanup_free_ char *rot = read_line(path);
                _cleanup_(obj_freep) Obj *disk = obj_new_map();
                if (!disk || obj_map_set_str(disk, "name", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (size)
                        r = obj_map_set_int(disk, "sizeBytes", strtoll(size, NULL, 10) * 512);
                if (r >= 0 && rot)
                        r = obj_map_set_bool(disk, "rotational", streq(rot, "1"));
                if (r >= 0)
                        r = obj_list_append(disks, TAKE_PTR(disk));
        }
        closedir(d);
        return r;
}

static Obj *find_iface(Obj *list, const char *name) {
        OBJ_LIST_FOREACH(it, list, i)
        if (streq_ptr(obj_get_str(it, "name"), name))
                return it;
        return NULL;
}

static int net_facts(const AgentConfig *c, Obj *facts) {
        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) < 0)
                return 0;
        Obj *list = obj_map_ensure_list(facts, "interfaces");
        int r = list ? 0 : -ENOMEM;
        for (struct ifaddrs *i = ifa; i && r >= 0; i = i->ifa_next) {
                if (!i->ifa_name || (i->ifa_flags & IFF_LOOPBACK) || obj_len(list) >= 64)
                        continue;
                Obj *iface = find_iface(list, i->ifa_name);
                if (!iface) {
                        _cleanup_(obj_freep) Obj *n = obj_new_map();
                        if (!n || obj_map_set_str(n, "name", i->ifa_name) < 0 ||
                            obj_map_set(n, "addresses", obj_new_list()) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        char path[300];
                        snprintf(path, sizeof(path), "/sys/class/net/%s/address", i->ifa_name);
                        r = set_from_file(c, n, "mac", path);
                        if (r >= 0)
                                r = obj_list_append(list, TAKE_PTR(n));
                        if (r < 0)
                                break;
                        iface = find_iface(list, i->ifa_name);
                }
                if (!i->ifa_addr ||
                    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
                        continue;
                char host[NI_MAXHOST];
                socklen_t len = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                                  : sizeof(struct sockaddr_in6);
                if (getnameinfo(i->ifa_addr, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
                        continue;
                char *pct = strchr(host, '%');
                if (pct)
                        *pct = 0;
                Obj *addrs = obj_map_get(iface, "addresses");
                if (obj_len(addrs) < 32)
                        r = obj_list_append(addrs, obj_new_str(host));
        }
        freeifaddrs(ifa);
        return r;
}

static int os_facts(const AgentConfig *c, Obj *facts) {
        struct utsname u;
        int r = 0;
        /* The running kernel's release (/proc/sys/kernel/osrelease is uname's, and can be
         * given in a fake tree). */
        _cleanup_free_ char *rel = under(c, "/proc/sys/kernel/osrelease");
        _cleanup_free_ char *kernel = rel ? read_line(rel) : NULL;
        if (kernel)
                r = obj_map_set_str(facts, "kernel", kernel);
        else if (uname(&u) == 0)
                r = obj_map_set_str(facts, "kernel", u.release);
        _cleanup_free_ char *text = NULL, *path = under(c, "/etc/os-release");
        if (r >= 0 && path && read_file_bounded(path, 1 << 16, &text, NULL) >= 0) {
                char *p = strstr(text, "PRETTY_NAME=");
                if (p) {
                        p += strlen("PRETTY_NAME=");
                        p[strcspn(p, "\n")] = 0;
                        size_t n = strlen(p);
                        if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
                                p[n - 1] = 0;
                                p++;
                        }
                        r = obj_map_set_str(facts, "os", p);
                }
        }
        return r;
}

int facts_collect(const AgentConfig *c, Obj **ret) {
        _cleanup_(obj_freep) Obj *facts = obj_new_map();
        if (!facts)
                return -ENOMEM;
        int r;
        _cleanup_free_ char *dmi = under(c, "/sys/class/dmi/id/product_uuid");
        _cleanup_free_ char *uuid = c->product_uuid ? strdup(c->product_uuid)
                                    : dmi           ? read_line(dmi)
                                                    : NULL;
        if (!uuid)
                return -ENODATA; /* the caller explains: needs root or --product-uuid */
        for (char *p = uuid; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        if ((r = obj_map_set_str(facts, "productUUID", uuid)) < 0)
                return r;
        char hn[256];
        if (c->hostname)
                snprintf(hn, sizeof(hn), "%s", c->hostname);
        else if (gethostname(hn, sizeof(hn)) < 0)
                snprintf(hn, sizeof(hn), "localhost");
        hn[sizeof(hn) - 1] = 0;
        for (char *p = hn; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        if ((r = obj_map_set_str(facts, "hostname", hn)) < 0 ||
            (r = set_from_file(c, facts, "serial", "/sys/class/dmi/id/product_serial")) < 0 ||
            (r = set_from_file(c, facts, "vendor", "/sys/class/dmi/id/sys_vendor")) < 0 ||
            (r = set_from_file(c, facts, "model", "/sys/class/dmi/id/product_name")) < 0 ||
            (r = cpu_facts(c, facts)) < 0 || (r = mem_facts(c, facts)) < 0 ||
            (r = net_facts(c, facts)) < 0 || (r = disk_facts(c, facts)) < 0 ||
            (r = os_facts(c, facts)) < 0 ||
            (r = obj_map_set_str(facts, "agentVersion", ANVIL_VERSION)) < 0)
                return r;
        *ret = TAKE_PTR(facts);
        return 0;
}
