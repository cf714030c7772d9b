#ifndef SUNDIAL_CLOCK_H
#define SUNDIAL_CLOCK_H

/// Whether the kernel considers the system clock synchronised (NTP discipline running and
/// STA_UNSYNC clear), read with adjtimex(2) in read-only mode (modes = 0, no privilege needed).
/// Returns 1 when synchronised, 0 when not, -1 with errno when adjtimex fails.
int sundial_clock_synchronised(void);

#endif
