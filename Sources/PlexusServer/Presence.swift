import Synchronization

/// Which sources have a live device connection, per organisation. The WebSocket device
/// gateway registers connections here; the read API reports `online` from it.
public final class Presence: Sendable {
    private let online = Mutex([Int64: [String: Int]]())

    public init() {}

    public func connected(orgID: Int64, sourceID: String) {
        online.withLock { $0[orgID, default: [:]][sourceID, default: 0] += 1 }
    }

    public func disconnected(orgID: Int64, sourceID: String) {
        online.withLock { m in
            guard let n = m[orgID]?[sourceID] else { return }
            m[orgID]![sourceID] = n > 1 ? n - 1 : nil
        }
    }

    public func isOnline(orgID: Int64, sourceID: String) -> Bool {
        online.withLock { $0[orgID]?[sourceID] != nil }
    }

    public func onlineSources(orgID: Int64) -> Set<String> {
        online.withLock { Set(($0[orgID] ?? [:]).keys) }
    }

    public var connectionCount: Int { online.withLock { $0.values.reduce(0) { $0 + $1.values.reduce(0, +) } } }
}
