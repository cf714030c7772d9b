#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sundial_process.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int sundial_pidfd_open(int pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sundial_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, (void *)0, 0);
}

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/// waitid's siginfo as a waitpid-style status word, so `sundial_decode_status` reads both.
static int status_word(const siginfo_t *info) {
    switch (info->si_code) {
    case CLD_EXITED: return (info->si_status & 0xff) << 8;
    case CLD_DUMPED: return (info->si_status & 0x7f) | 0x80;
    default: return info->si_status & 0x7f;  // CLD_KILLED
    }
}

int sundial_pidfd_reap(int pidfd, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    do { rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG); } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    if (info.si_pid == 0) return 0;
    *status = status_word(&info);
    return info.si_pid;
}

int sundial_pid_reap(int pid, int *status) {
    int rc;
    do { rc = waitpid(pid, status, WNOHANG); } while (rc < 0 && errno == EINTR);
    return rc;
}

int sundial_peek_exited_child(void) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    do { rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT); } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    return info.si_pid;
}
