/// The inverse of ``IngestDecoder``: points as a JSON ingest body. Transports that do not
/// speak JSON (line protocol) write this into the write-ahead log, whose records are JSON
/// bodies, so that replay decodes them with ``IngestDecoder`` into the same points.
public enum IngestEncoder {
    /// `{"points":[{"metric","value","timestamp"?,"source_id","tags"?,"session_id"?},…]}`,
    /// every point with its own source and its timestamp in an exact form
    /// (``JSONWriter/exactTimestamp(_:)``).
    public static func body(_ points: [Point]) -> [UInt8] {
        var w = JSONWriter(capacity: 32 + points.count * 96)
        w.raw("{\"points\":[")
        w.list(points) { w, p in
            w.raw("{\"metric\":")
            w.string(p.metric)
            w.raw(",\"value\":")
            w.write(p.value)
            if let t = p.timestamp {
                w.raw(",\"timestamp\":")
                w.exactTimestamp(t)
            }
            w.field("source_id", p.sourceID)
            if !p.tags.isEmpty {
                w.raw(",\"tags\":{")
                w.list(p.tags) { w, t in
                    w.string(t.key)
                    w.raw(":")
                    w.string(t.value)
                }
                w.raw("}")
            }
            w.field("session_id", p.sessionID)
            w.raw("}")
        }
        w.raw("]}")
        return w.bytes
    }
}
