import Synchronization

/// Limits failed sign-ins per email address: after `maxFailures` failures within
/// `window`, further attempts for that address are refused (429) until the window
/// that began with the first failure has passed. A success clears the address.
final class LoginThrottle: Sendable {
    let maxFailures: Int
    /// Microseconds.
    let window: Int64
    private let failures = Mutex([String: (count: Int, since: Int64)]())

    init(maxFailures: Int = 10, window: Int64 = 15 * 60 * 1_000_000) {
        self.maxFailures = maxFailures
        self.window = window
    }

    /// nil when an attempt is allowed now, else the seconds until it is.
    func retryAfter(_ email: String, now: Int64) -> Int? {
        failures.withLock { f in
            guard let e = f[email], now - e.since < window, e.count >= maxFailures else { return nil }
            return Int((e.since + window - now) / 1_000_000) + 1
        }
    }

    func failed(_ email: String, now: Int64) {
        failures.withLock { f in
            if f.count > 100_000 { f = f.filter { now - $0.value.since < window } }
            if let e = f[email], now - e.since < window {
                f[email] = (e.count + 1, e.since)
            } else {
                f[email] = (1, now)
            }
        }
    }

    func succeeded(_ email: String) {
        _ = failures.withLock { $0.removeValue(forKey: email) }
    }
}
