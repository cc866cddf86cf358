/**
 * Kernel-style warnings: the messages vmalloc prints (pr_warn, WARN), delivered to a logger
 * the user can replace, capture or silence, with printk_ratelimit()'s default limit.
 *
 * Holds: the logger type and a rate limiter (10 messages per 5 seconds, then a "callbacks
 * suppressed" line when messages flow again).
 * Callers: the vmalloc layer.
 */

export interface VmallocLogger {
  warn(message: string): void;
}

/** The default: console.warn with the kernel's text. */
export const consoleLogger: VmallocLogger = {
  warn(message: string): void {
    console.warn(message);
  },
};

const BURST = 10;
const INTERVAL_MS = 5000;

export class RateLimitedLog {
  private windowStart = 0;
  private printed = 0;
  private suppressed = 0;

  constructor(private readonly logger: VmallocLogger | null) {}

  /** Kernel: if (printk_ratelimit()) pr_warn(...). `fn` names the caller for the suppressed line. */
  warn(fn: string, message: string): void {
    if (!this.logger) return;
    const now = Date.now();
    if (now - this.windowStart >= INTERVAL_MS) {
      if (this.suppressed > 0) this.logger.warn(`${fn}: ${this.suppressed} callbacks suppressed`);
      this.windowStart = now;
      this.printed = 0;
      this.suppressed = 0;
    }
    if (this.printed < BURST) {
      this.printed++;
      this.logger.warn(message);
    } else {
      this.suppressed++;
    }
  }

  /** Unlimited (WARN / WARN_ONCE style messages that the caller already limits). */
  always(message: string): void {
    this.logger?.warn(message);
  }
}
