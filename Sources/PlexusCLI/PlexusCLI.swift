import ArgumentParser
import Foundation
import Plexus

/// `plexus`: the device agent. Its configuration is `~/.plexus/config.json` (the Python
/// SDK's file; `HOME` decides where that is).
@main
struct PlexusCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexus",
        abstract: "Stream this device's sensors to a Plexus server and obey its dashboard.",
        version: DeviceInfo.version,
        subcommands: [Start.self, Send.self, Scan.self, Status.self, Login.self, Logout.self, Reset.self]
    )
}

enum DeviceInfo {
    static let version = "0.1.0"
    static let platform = "plexus-swift"
}

/// A failure to show the person: the message alone, exit status 1.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Where the configuration lives and what it says.
struct DeviceHome {
    let path: String
    let environment: [String: String]

    static var current: DeviceHome {
        let env = ProcessInfo.processInfo.environment
        let home = ConfigFile.defaultHome
        return DeviceHome(path: home, environment: env)
    }

    var file: ConfigFile { ConfigFile(home: path) }

    /// The key: `--key` > `PLEXUS_API_KEY` > the file (as the SDK resolves it).
    func apiKey(_ explicit: String?) -> String? {
        PlexusConfiguration.apiKey(explicit, environment: environment, stored: file.load())
    }

    /// The server: `--server` > `PLEXUS_GATEWAY_URL` > the file's `gateway_url` > `endpoint` > default.
    func server(_ explicit: String?) -> String {
        PlexusConfiguration.gatewayURL(explicit, environment: environment, stored: file.load())
    }

    /// Saves the server under every key the SDKs read (`endpoint` for sign-in, `gateway_url`
    /// for ingest, `gateway_ws_url` for the socket), so the Python SDK agrees.
    func saveServer(_ url: String, in object: inout [String: Any]) {
        object["endpoint"] = url
        object["gateway_url"] = url
        object["gateway_ws_url"] = PlexusConfiguration.webSocketURL(for: url)
    }
}

/// The terminal: whether a person is there, prompts, and the key shown masked.
enum Terminal {
    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }
    static var stdoutIsTTY: Bool { isatty(STDOUT_FILENO) == 1 }

    static func prompt(_ question: String, default value: String? = nil) -> String? {
        print(value.map { "\(question) [\($0)]: " } ?? "\(question): ", terminator: "")
        fflush(nil)
        guard let line = readLine() else { return nil }
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? value : trimmed
    }

    /// Reads a line with echo off.
    static func secret(_ question: String) -> String? {
        // Echo off before the prompt shows, as getpass(3) does: whatever is typed once the
        // prompt is visible is never echoed.
        var saved = termios()
        let canHide = tcgetattr(STDIN_FILENO, &saved) == 0
        if canHide {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        }
        print("\(question): ", terminator: "")
        fflush(nil)
        defer {
            if canHide { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
            print("")
        }
        return readLine()
    }

    /// `plx_abcd…wxyz`: the first 8 and the last 4 characters, as the Python SDK shows it.
    static func mask(_ key: String) -> String {
        key.count <= 12 ? String(repeating: "•", count: key.count) : "\(key.prefix(8))…\(key.suffix(4))"
    }
}

/// A device name from the host name, as `plexus start` 0.1.0 makes one: lowercase, and
/// anything outside `[a-z0-9._-]` becomes `-`.
func defaultDeviceName() -> String {
    let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "device"
    let cleaned = String(
        host.lowercased().map { $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII || $0 == "-" || $0 == "_" ? $0 : "-" })
    let trimmed = cleaned.drop { $0 == "-" || $0 == "_" }
    return trimmed.isEmpty ? "device" : String(trimmed.prefix(63))
}
