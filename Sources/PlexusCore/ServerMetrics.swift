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
    public static func rejected(reason: String, transport: String, count: Int = 1) {
        counter("plexus_rejects_total", [("reason", reason), ("transport", transport)]).increment(by: Int64(count))
    }
    /// PromQL selectors read for a query, from the rollups or as raw samples.
    public static func promqlSelectorReads(from: String, count: Int) {
        counter("plexus_promql_selector_reads_total", [("from", from)]).increment(by: Int64(count))
    }
    public static func storeLatency(_ op: String, _ d: Duration) {
        timer("plexus_store_seconds", [("op", op)]).recordNanoseconds(
            d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }

    private struct Key: Hashable {
        var kind: ObjectIdentifier
        var label: String
        var dimensions: [String]
    }

    /// Label sets are few and fixed by the code (transports, error codes, store operations),
    /// so the cache stays small.
    private static let handles = Mutex<[Key: any Sendable]>([:])

    private static func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        handle(label, dimensions) { Counter(label: $0, dimensions: $1) }
    }

    private static func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        handle(label, dimensions) { Timer(label: $0, dimensions: $1) }
    }

    private static func handle<H: Sendable>(
        _ label: String, _ dimensions: [(String, String)],
        make: (String, [(String, String)]) -> H
    ) -> H {
        let key = Key(kind: ObjectIdentifier(H.self), label: label, dimensions: dimensions.flatMap { [$0.0, $0.1] })
        if let h = handles.withLock({ $0[key] }) as? H { return h }
        let h = make(label, dimensions)
        handles.withLock { $0[key] = h }
        return h
    }
}
