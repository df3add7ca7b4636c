import Foundation

/// The web dashboard's static files (`Public/`: `index.html` and `assets/`), copied
/// into the build as this module's resources. `plexus-server` serves them.
public enum DashboardFiles {
    /// The folder holding `index.html` and `assets/`.
    public static var directory: String {
        Bundle.module.bundleURL.appendingPathComponent("Public").path
    }
}
