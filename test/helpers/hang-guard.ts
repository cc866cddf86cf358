/**
 * Time limits of the tests that run worker threads. None is a success criterion: each only
 * turns a hang (a deadlock, a worker that never reports) into a failure, and is long enough
 * that a shared CI machine under heavy load (load average 40 on 2 cores) never reaches it.
 * What those tests wait for is a condition (a message, an 'exit' event, a shared flag), never
 * an amount of time.
 */

/** The `timeout` of a test that starts worker threads. */
export const WORKER_TEST_TIMEOUT_MS = 600_000;

/**
 * lockTimeoutMs of an allocator shared by test workers: a waiter gives up (ETIMEDOUT) only
 * after this long, not after the default 10 s that a descheduled lock holder on an overloaded
 * machine could approach. A thread blocked on a lock cannot run the test runner's timer, so
 * this is the bound of such a hang.
 */
export const WORKER_LOCK_TIMEOUT_MS = 120_000;
