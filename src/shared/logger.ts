/**
 * Kernel-style warnings: the messages vmalloc prints (pr_warn, WARN), delivered to a logger
 * the user can replace, capture or silence, with printk_ratelimit()'s default limit.
 *
 * Holds: the logger type and a rate limiter (10 messages per 5 seconds, then a "callbacks
 * suppressed" line when messages flow again).
 * Invariant: a warning never throws into the operation that emits it (a logger's exception
 * is dropped), so every operation finishes or undoes what it began.
 * Callers: the vmalloc layer.
 */

export interface VmallocLogger {
  /**
   * Receives one warning. It is called in the middle of operations (an allocation that
   * failed is being undone), so it must not throw: an exception it throws is dropped, as a
   * throw there would leave the allocator half-changed.
   */
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
      if (this.suppressed > 0) this.emit(`${fn}: ${this.suppressed} callbacks suppressed`);
      this.windowStart = now;
      this.printed = 0;
      this.suppressed = 0;
    }
    if (this.printed < BURST) {
      this.printed++;
      this.emit(message);
    } else {
      this.suppressed++;
    }
  }

  /** Unlimited (WARN / WARN_ONCE style messages that the caller already limits). */
  always(message: string): void {
    if (this.logger) this.emit(message);
  }

  /** Hands a message to the logger; what the logger throws is dropped (see VmallocLogger). */
  private emit(message: string): void {
    try {
      this.logger?.warn(message);
    } catch {
      // The operation that warned is half-way through: it must finish.
    }
  }
}
