// `--hold-until-synced` (design §2): Swift's Glibc module does not expose <sys/timex.h>.
// adjtimex with modes = 0 only reads the kernel's clock discipline state. The kernel sets
// STA_UNSYNC until a time daemon (chrony, systemd-timesyncd, ntpd) disciplines the clock, and
// returns TIME_ERROR while the clock is unsynchronised; systemd's
// `ntp_synced()` uses the same test.
#define _GNU_SOURCE
#include "sundial_clock.h"
#include <string.h>
#include <sys/timex.h>

int sundial_clock_synchronised(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int state = adjtimex(&tx);
    if (state < 0) return -1;
    if (state == TIME_ERROR || (tx.status & STA_UNSYNC)) return 0;
    return 1;
}
