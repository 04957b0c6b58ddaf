/**
 * The wall clock port: milliseconds since the Unix epoch. Core never reads the time itself.
 * Pass `Date.now` in production and a fake clock in tests.
 */
export type WallClock = () => number;
