#ifndef SUNDIAL_PROCESS_H
#define SUNDIAL_PROCESS_H

/// pidfd_open(2): a descriptor (close-on-exec) that refers to process `pid` itself, not to
/// whatever later gets its number; it polls readable once the process has exited. Used to
/// watch runs adopted after an agent restart (they are no longer the agent's children).
/// Returns the descriptor, or -1 with errno (ENOSYS before Linux 5.3, ESRCH: no such process).
int sundial_pidfd_open(int pid);

/// pidfd_send_signal(2): signals exactly the process the descriptor refers to (never a process
/// that reused its pid). Returns 0, or -1 with errno (ESRCH once it has exited).
int sundial_pidfd_send_signal(int pidfd, int sig);

/// Reaps the child `pidfd` refers to if it has exited (waitid(P_PIDFD, WEXITED|WNOHANG), Linux
/// 5.4+): only that child, never another, so several runners and the code around them (a test
/// harness's own posix_spawn + waitpid) each keep their children's exit statuses. Returns its
/// pid with `*status` in waitpid's format, 0 if it is still running, or -1 with errno.
int sundial_pidfd_reap(int pidfd, int *status);

/// waitpid(pid, status, WNOHANG), retrying EINTR: the reaper for a child without a pidfd (a
/// kernel without pidfd_open) and for an orphan ``sundial_peek_exited_child`` found.
int sundial_pid_reap(int pid, int *status);

/// The pid of some exited, not yet reaped child of this process, left unreaped
/// (waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT)); 0 if none, -1 with errno (ECHILD: no children).
/// How the orphan reaper sees a re-parented orphan without stealing a runner's child.
int sundial_peek_exited_child(void);

#endif
