import Foundation

/// The web dashboard's static files (`Public/`: `index.html` and `assets/`), copied
/// into the build as this module's resources. `plexus-server` serves them.
public enum DashboardFiles {
    /// The resource bundle's folder name, which must sit next to the executable.
    public static let bundleName = "plexus_PlexusDashboard.resources"

    /// The folder holding `index.html` and `assets/`, or nil if the resource bundle is not
    /// next to the executable (a binary copied without it). Unlike `Bundle.module`, this
    /// never stops the process: the server runs and says what is missing.
    public static var directory: String? {
        let candidates = [
            Bundle.main.bundleURL,
            Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent(),
        ]
        for base in candidates.compactMap({ $0 }) {
            let dir = base.appendingPathComponent(bundleName).appendingPathComponent("Public")
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("index.html").path) { return dir.path }
        }
        return nil
    }
}
