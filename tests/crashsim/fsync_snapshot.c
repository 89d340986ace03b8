/* Crash simulation by LD_PRELOAD, after SQLite's own crash tests: what a power cut would leave on disk.
 *
 * Every fsync/fdatasync of a file directly inside $CRASHSIM_WATCH first copies that file's current bytes to
 * $CRASHSIM_IMAGE/NAME (then the real sync runs). A sync of the watched directory itself records which names
 * it holds in $CRASHSIM_IMAGE/.dir. The "synced image" is then: the names in the last .dir listing, each with
 * the bytes of its last synced copy (empty if its data was never synced). Writes that were never synced are
 * lost, which is the outcome `synchronous=FULL` must survive; a kill -9 alone keeps them in the page cache.
 * Model limits: no torn or reordered sectors within a sync, and a file's data is durable only via its own sync.
 * SQLite's unix VFS (3.40, Linux) syncs files and directories with fdatasync; fsync is caught too.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write tmp then rename, so the image never holds half a copy. */
static void publish(const char *image, const char *name, const char *data, size_t len) {
    char tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s", image, name);
    snprintf(dst, sizeof dst, "%s/%s", image, name);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) return;
    int ok = write_all(out, data, len) == 0;
    close(out);
    if (ok) rename(tmp, dst);
}

static void snapshot(int fd) {
    const char *watch = getenv("CRASHSIM_WATCH"), *image = getenv("CRASHSIM_IMAGE");
    if (!watch || !image) return;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    size_t wl = strlen(watch);
    pthread_mutex_lock(&lock);
    if (S_ISDIR(st.st_mode) && strcmp(path, watch) == 0) {
        /* the directory's entries are now durable: record the names it holds */
        DIR *dir = opendir(watch);
        if (dir) {
            char *list = NULL;
            size_t size = 0;
            FILE *mem = open_memstream(&list, &size);
            struct dirent *entry;
            while ((entry = readdir(dir)) != NULL)
                if (entry->d_name[0] != '.') fprintf(mem, "%s\n", entry->d_name);
            fclose(mem);
            closedir(dir);
            publish(image, ".dir", list, size);
            free(list);
        }
    } else if (S_ISREG(st.st_mode) && strncmp(path, watch, wl) == 0 && path[wl] == '/' &&
               strchr(path + wl + 1, '/') == NULL) {
        char *data = malloc(st.st_size ? (size_t)st.st_size : 1);
        size_t got = 0;
        while (data && got < (size_t)st.st_size) {
            ssize_t r = pread(fd, data + got, (size_t)st.st_size - got, (off_t)got);
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (data) publish(image, path + wl + 1, data, got);
        free(data);
    }
    pthread_mutex_unlock(&lock);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    snapshot(fd);
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    snapshot(fd);
    return real(fd);
}
