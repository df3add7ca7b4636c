#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The two clocks sensors need, without Foundation.
public enum WallClock {
    /// Unix time in seconds (CLOCK_REALTIME), for reading timestamps.
    public static func now() -> Double { read(CLOCK_REALTIME) }

    /// Seconds since an arbitrary point (CLOCK_MONOTONIC), for intervals. Never jumps.
    public static func monotonic() -> Double { read(CLOCK_MONOTONIC) }

    private static func read(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Blocks the calling thread (used for the few microsecond-to-millisecond waits a chip
    /// needs between two register writes).
    static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
    }
}
