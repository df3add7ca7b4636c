/// A token bucket with time passed in, so it is tested without a clock.
public struct TokenBucket: Sendable, Equatable {
    public let capacity: Double
    public let refillPerSecond: Double
    public private(set) var tokens: Double
    private var last: Duration?

    public init(capacity: Double, refillPerSecond: Double) {
        self.capacity = capacity
        self.refillPerSecond = refillPerSecond
        tokens = capacity
    }

    private mutating func refill(to now: Duration) {
        if let last, now > last {
            let d = now - last
            let elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            tokens = min(capacity, tokens + elapsed * refillPerSecond)
        }
        if last == nil || now > last! { last = now }
    }

    /// Takes one token at time `now` (any monotonic offset); false when empty.
    public mutating func take(at now: Duration, cost: Double = 1) -> Bool {
        refill(to: now)
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }

    /// Reserves the next token and says how long to wait for it (zero if there is one now).
    /// Successive reservations queue up behind each other.
    public mutating func reserve(at now: Duration) -> Duration {
        refill(to: now)
        let base = max(now, last ?? now)
        if tokens >= 1 {
            tokens -= 1
            return base - now
        }
        let wait = Duration.seconds((1 - tokens) / refillPerSecond)
        tokens = 0
        last = base + wait
        return base + wait - now
    }

    /// Seconds until one token is available.
    public var secondsUntilNext: Double { tokens >= 1 ? 0 : (1 - tokens) / refillPerSecond }
}

extension TokenBucket {
    /// Whether the bucket would be full at `now`: then it is the same as a new one, and
    /// forgetting it changes nothing for its sender.
    public func isFull(at now: Duration) -> Bool {
        guard let last, now > last else { return tokens >= capacity }
        let d = now - last
        let elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return tokens + elapsed * refillPerSecond >= capacity
    }
}
