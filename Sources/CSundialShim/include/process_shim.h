#ifndef SUNDIAL_PROCESS_SHIM_H
#define SUNDIAL_PROCESS_SHIM_H

/// pidfd_open(2): a descriptor (close-on-exec) that refers to process `pid` itself, not to
/// whatever later gets its number; it polls readable once the process has exited. Used to
/// watch runs adopted after an agent restart (they are no longer the agent's children).
/// Returns the descriptor, or -1 with errno (ENOSYS before Linux 5.3, ESRCH: no such process).
int sundial_pidfd_open(int pid);

/// pidfd_send_signal(2): signals exactly the process the descriptor refers to (never a process
/// that reused its pid). Returns 0, or -1 with errno (ESRCH once it has exited).
int sundial_pidfd_send_signal(int pidfd, int sig);

#endif
