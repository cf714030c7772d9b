/* stamp ID FILE: appends "ID SECONDS.NANOSECONDS\n" to FILE, the time being CLOCK_REALTIME read as
 * the first thing main does. It is the job every scheduler under test launches in bench/run's
 * lateness measurement, so lateness is measured up to the child's own first instruction, not to
 * the scheduler's idea of when it launched. Built static (-static -O2): no dynamic loader, so its
 * own start-up cost is as small as an exec can be, and bench/run measures that cost too. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (argc < 3) return 2;
    char line[128];
    int n = snprintf(line, sizeof line, "%s %lld.%09ld\n", argv[1], (long long)ts.tv_sec, ts.tv_nsec);
    int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return 1;
    /* One write(2) on an O_APPEND descriptor: lines from concurrent stamps never interleave. */
    ssize_t w = write(fd, line, (size_t)n);
    close(fd);
    return w == n ? 0 : 1;
}
