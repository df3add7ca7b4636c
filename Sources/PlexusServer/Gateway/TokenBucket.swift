/// A token bucket with time passed in, so it is tested without a clock.
struct TokenBucket: Sendable, Equatable {
    let capacity: Double
    let refillPerSecond: Double
    private(set) var tokens: Double
    private var last: Duration?

    init(capacity: Double, refillPerSecond: Double) {
        self.capacity = capacity
        self.refillPerSecond = refillPerSecond
        tokens = capacity
    }

    /// Takes one token at time `now` (any monotonic offset); false when empty.
    mutating func take(at now: Duration, cost: Double = 1) -> Bool {
        if let last {
            let elapsed = Double((now - last).components.seconds) + Double((now - last).components.attoseconds) / 1e18
            tokens = min(capacity, tokens + max(0, elapsed) * refillPerSecond)
        }
        last = now
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }

    /// Seconds until one token is available.
    var secondsUntilNext: Double { tokens >= 1 ? 0 : (1 - tokens) / refillPerSecond }
}
