import Logging
import Metrics
import PlexusStorage
import ServiceLifecycle

/// Applies retention (``ServerConfiguration/retention``, each organisation's own over it)
/// once at start and then every ``interval``, until shutdown. The store decides what to
/// remove from the time given; this only keeps the schedule and reports.
struct RetentionService: Service {
    let store: any PlexusStore
    let policy: RetentionPolicy
    /// Unix µs.
    let now: @Sendable () -> Int64
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try await everyInterval(interval) { await sweep() }
    }

    /// One run. A failure is logged and the next run tries again; nothing is half-removed
    /// (each batch is one transaction).
    func sweep() async {
        do {
            let removed = try await store.applyRetention(policy, at: now())
            Counter(label: "plexus_retention_points_removed_total").increment(by: Int(removed.points))
            Counter(label: "plexus_retention_rollup_buckets_removed_total").increment(by: Int(removed.rollupBuckets))
            if removed.points > 0 || removed.rollupBuckets > 0 {
                logger.info(
                    "retention removed old data",
                    metadata: [
                        "points": "\(removed.points)", "chunks": "\(removed.blocks)", "rollup_buckets": "\(removed.rollupBuckets)",
                    ])
            }
        } catch {
            logger.error("retention run failed; retried at the next run", metadata: ["error": "\(error)"])
        }
    }
}
