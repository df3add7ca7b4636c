import Metrics
import Synchronization

/// The server's own Prometheus metrics (besides Hummingbird's `hb_*` request metrics),
/// shared by the domain (ingest) and the transports (rejects by code).
///
/// Handles are made once per label set and kept: making one asks the metrics backend to
/// validate and look up the name under its lock, which on the live path (a few per device
/// frame) cost more than the increment itself.
public enum ServerMetrics {
    public static func pointsIngested(_ n: Int, transport: String) {
        counter("plexus_points_ingested_total", [("transport", transport)]).increment(by: n)
    }
    /// An error reply (HTTP) or error frame (WebSocket), by its code.
    public static func rejected(reason: String, transport: String) {
        counter("plexus_rejects_total", [("reason", reason), ("transport", transport)]).increment()
    }
    public static func storeLatency(_ op: String, _ d: Duration) {
        timer("plexus_store_seconds", [("op", op)]).recordNanoseconds(
            d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }

    private struct Key: Hashable {
        var label: String
        var dimensions: [String]
        init(_ label: String, _ dimensions: [(String, String)]) {
            self.label = label
            self.dimensions = dimensions.flatMap { [$0.0, $0.1] }
        }
    }

    /// Label sets are few and fixed by the code (transports, error codes, store operations),
    /// so the caches stay small.
    private static let counters = Mutex<[Key: Counter]>([:])
    private static let timers = Mutex<[Key: Timer]>([:])

    private static func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = Key(label, dimensions)
        if let c = counters.withLock({ $0[key] }) { return c }
        let c = Counter(label: label, dimensions: dimensions)
        counters.withLock { $0[key] = c }
        return c
    }

    private static func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        let key = Key(label, dimensions)
        if let t = timers.withLock({ $0[key] }) { return t }
        let t = Timer(label: label, dimensions: dimensions)
        timers.withLock { $0[key] = t }
        return t
    }
}
