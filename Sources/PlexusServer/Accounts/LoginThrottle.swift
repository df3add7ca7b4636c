import Synchronization

/// Limits failed sign-ins so that guessing is slow and nobody can lock another person out.
///
/// Failures count per (email, client address) and per client address: after
/// `perEmailAndClient` failures for one email from one address, or `perClient` failures
/// of any emails from one address, within `window`, that pair or that address is refused
/// (429) until the window that began with its first failure has passed. A stranger
/// guessing at an email from their own address therefore blocks only themselves; the
/// owner signing in from elsewhere is not affected. A success clears its pair.
final class LoginThrottle: Sendable {
    let perEmailAndClient: Int
    let perClient: Int
    /// Microseconds.
    let window: Int64
    /// Entries kept at most; past it, expired ones are dropped, then the oldest half.
    let capacity: Int
    private struct Entry {
        var count: Int
        var since: Int64
    }
    private let failures = Mutex([String: Entry]())

    init(perEmailAndClient: Int = 10, perClient: Int = 50, window: Int64 = 15 * 60 * 1_000_000, capacity: Int = 100_000) {
        self.perEmailAndClient = perEmailAndClient
        self.perClient = perClient
        self.window = window
        self.capacity = capacity
    }

    private static func pairKey(_ email: String, _ client: String) -> String { "e:" + client + "\u{1}" + email }
    private static func clientKey(_ client: String) -> String { "c:" + client }

    /// nil when an attempt is allowed now, else the seconds until it is.
    func retryAfter(_ email: String, client: String, now: Int64) -> Int? {
        failures.withLock { f in
            var wait: Int64 = 0
            for (key, limit) in [(Self.pairKey(email, client), perEmailAndClient), (Self.clientKey(client), perClient)] {
                guard let e = f[key], now - e.since < window, e.count >= limit else { continue }
                wait = max(wait, e.since + window - now)
            }
            return wait > 0 ? Int(wait / 1_000_000) + 1 : nil
        }
    }

    func failed(_ email: String, client: String, now: Int64) {
        failures.withLock { f in
            if f.count >= capacity {
                f = f.filter { now - $0.value.since < window }
                if f.count >= capacity {
                    let keep = f.sorted { $0.value.since > $1.value.since }.prefix(capacity / 2)
                    f = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            for key in [Self.pairKey(email, client), Self.clientKey(client)] {
                if let e = f[key], now - e.since < window {
                    f[key] = Entry(count: e.count + 1, since: e.since)
                } else {
                    f[key] = Entry(count: 1, since: now)
                }
            }
        }
    }

    func succeeded(_ email: String, client: String) {
        _ = failures.withLock { $0.removeValue(forKey: Self.pairKey(email, client)) }
    }
}
