import Metrics

/// The server's own Prometheus metrics (besides Hummingbird's `hb_*` request metrics).
enum ServerMetrics {
    static func pointsIngested(_ n: Int, transport: String) {
        Counter(label: "plexus_points_ingested_total", dimensions: [("transport", transport)]).increment(by: n)
    }
    /// An error reply (HTTP) or error frame (WebSocket), by its code.
    static func rejected(reason: String, transport: String) {
        Counter(label: "plexus_rejects_total", dimensions: [("reason", reason), ("transport", transport)]).increment()
    }
    static func storeLatency(_ op: String, _ d: Duration) {
        Timer(label: "plexus_store_seconds", dimensions: [("op", op)]).recordNanoseconds(
            d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}
