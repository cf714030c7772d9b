#ifndef SUNDIAL_NOTIFY_SPAWN_H
#define SUNDIAL_NOTIFY_SPAWN_H
#include <sys/types.h>

/// Runs a notification command (`notify: - command:`) under a watcher, as
/// `sundial_spawn_isolated` runs the config loader, but with `stdin_fd` as the child's standard
/// input (the notification's JSON) and no resource limits: the watcher forks the child, waits
/// for it and writes one `sundial_isolate_status` record to `status_fd`. Why a watcher: the
/// agent's job runner reaps every child (`waitpid(-1)`), so the command's status could be lost;
/// the watcher's record cannot. Killing the watcher (its pid is safe while `status_fd` is
/// open) kills the child. `stdout_fd` serves as the child's fds 1 and 2. Returns the watcher's
/// pid, or -errno.
pid_t sundial_spawn_notify(const char *path, char *const argv[], char *const envp[], int stdin_fd, int stdout_fd,
                           int status_fd);

#endif
