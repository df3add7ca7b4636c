public import PlexusModel

/// Where live data goes and what is being recorded: the in-process hub of a single server
/// (`PlexusServer.Hub`), and in a cluster an implementation shared across instances. The
/// ``Ingestor`` sees only this.
public protocol LiveFanout: Sendable {
    /// Shows a stored-or-being-stored batch to the dashboards that watch its sources.
    /// Never waits: a slow dashboard loses live data, it never slows ingest.
    func publish(orgID: Int64, batch: IngestBatch, receivedAt: Int64)
    /// The session the server is recording for a source (`start_session`), if any.
    func recording(orgID: Int64, sourceID: String) -> String?
    /// Mirrors a recording change the ``Recorder`` made in the store (nil: none).
    func setRecording(orgID: Int64, sourceID: String, sessionID: String?)
}
