import AsyncHTTPClient
package import Foundation
import NIOCore
import NIOFoundationCompat
package import NIOHTTP1
import Testing

/// A server on a random loopback port with a temp data dir: the application in this
/// process (``withServer(_:body:)``), or a real `plexus-server` process (``start(dataDir:environment:)``,
/// ``withServerProcess(environment:_:)``) for what only a process has: signals, kill -9,
/// restarts, its own `/metrics` registry, the command line.
package final class TestServer: @unchecked Sendable {  // mutated only by the test that owns it
    package let dataDir: String
    /// The server process; nil for a server in this process.
    package private(set) var process: Process?
    package private(set) var port: Int
    package var url: String { "http://127.0.0.1:\(port)" }
    /// A key of the default organisation with write, read and admin scopes.
    package private(set) var key = ""

    package static var binary: String {
        if let b = ProcessInfo.processInfo.environment["PLEXUS_SERVER_BIN"] { return b }
        // swift test runs the test bundle from the build products directory.
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("plexus-server").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return ".build/debug/plexus-server"
    }

    private init(dataDir: String, process: Process?, port: Int, key: String = "") {
        self.dataDir = dataDir
        self.process = process
        self.port = port
        self.key = key
    }

    /// A server in this process (``withServer(_:body:)``).
    convenience init(inProcessAt dataDir: String, port: Int, key: String) {
        self.init(dataDir: dataDir, process: nil, port: port, key: key)
    }

    /// A fresh data directory under the temporary directory.
    static func newDataDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-it-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    package static func start(dataDir: String? = nil, environment: [String: String] = [:]) async throws -> TestServer {
        let dir = try dataDir ?? newDataDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let server = TestServer(dataDir: dir, process: nil, port: 0)
        server.key = try await server.cli(["keys", "create", "--data-dir", dir, "--name", "test", "--scopes", "write,read,admin"])
        try await server.launch(environment: environment)
        return server
    }

    /// Runs `plexus-server` with arguments and returns its trimmed stdout. Never blocks a
    /// thread of the cooperative pool (the tests' sockets need those threads).
    @discardableResult
    package func cli(_ args: [String], environment: [String: String] = [:]) async throws -> String {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-cli-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = FileHandle.nullDevice
        try p.run()
        await Self.exited(p)
        let text = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0 else { throw CLIFailure(status: p.terminationStatus, output: text) }
        return text
    }

    /// Waits for a process to end without blocking a thread.
    package static func exited(_ p: Process, timeout: Duration = .seconds(60)) async {
        let deadline = ContinuousClock.now + timeout
        while p.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
    }

    package struct CLIFailure: Error {
        package let status: Int32
        package let output: String
    }

    package func createKey(scopes: String, org: String = "default", extra: [String] = []) async throws -> String {
        try await cli(["keys", "create", "--data-dir", dataDir, "--name", "k", "--scopes", scopes, "--org", org] + extra)
    }

    package func launch(environment: [String: String] = [:]) async throws {
        let log = dataDir + "/../" + URL(fileURLWithPath: dataDir).lastPathComponent + ".stdout"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, "--log-level", "warning"]
        // The server's /metrics is off by default; test servers serve it with a token
        // (``metrics()``) unless a test sets the environment otherwise.
        p.environment = ProcessInfo.processInfo.environment
            .merging(["PLEXUS_METRICS_TOKEN": Self.metricsToken]) { $1 }
            .merging(environment) { $1 }
        p.standardOutput = FileHandle(forWritingAtPath: log)
        try p.run()
        process = p
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: "listening on http://127.0.0.1:") {
                let digits = text[r.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), text[r.upperBound...].dropFirst(digits.count).first != nil {
                    self.port = port
                    return
                }
            }
            guard p.isRunning else { throw CLIFailure(status: p.terminationStatus, output: "server exited: \(text)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CLIFailure(status: -1, output: "server did not start")
    }

    package func kill9() async {
        guard let process else { preconditionFailure("kill -9 needs a server process (TestServer.start)") }
        kill(process.processIdentifier, SIGKILL)
        await Self.exited(process)
    }

    /// Stops a server process with SIGTERM and waits for it (a server in this process
    /// stops when its ``withServer(_:body:)`` scope ends).
    package func stop() async {
        if let process, process.isRunning {
            process.terminate()
            await Self.exited(process)
        }
    }

    /// For `defer`: kills the server process without waiting and removes its data.
    package func cleanUp() {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    // MARK: HTTP

    package struct Reply {
        package let status: Int
        package let body: Data
        package let headers: HTTPHeaders
        package var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
        package var object: [String: Any] { json as? [String: Any] ?? [:] }
        package var text: String { String(decoding: body, as: UTF8.self) }
    }

    package func request(
        _ method: HTTPMethod, _ path: String, key: String?? = .none, body: Data? = nil,
        headers: [(String, String)] = [], contentType: String = "application/json"
    ) async throws -> Reply {
        var req = HTTPClientRequest(url: url + path)
        req.method = method
        let k: String? =
            switch key {
            case .none: self.key
            case .some(let v): v
            }
        if let k { req.headers.add(name: "x-api-key", value: k) }
        for (n, v) in headers { req.headers.add(name: n, value: v) }
        if let body {
            req.headers.add(name: "content-type", value: contentType)
            req.body = .bytes(ByteBuffer(data: body))
        }
        let resp = try await HTTPClient.shared.execute(req, timeout: .seconds(60))
        let data = try await resp.body.collect(upTo: 64 << 20)
        return Reply(status: Int(resp.status.code), body: Data(buffer: data), headers: resp.headers)
    }

    package func get(_ path: String, key: String?? = .none) async throws -> Reply { try await request(.GET, path, key: key) }

    package static let metricsToken = "test-metrics-token"

    /// The value of an unlabelled gauge in `/metrics` (nil when absent).
    package func gauge(_ name: String) async throws -> Int? {
        try await metrics().text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            .flatMap { Int($0.split(separator: " ").last ?? "") }
    }

    /// `GET /metrics` with the test servers' metrics token.
    package func metrics() async throws -> Reply {
        try await request(.GET, "/metrics", key: .some(nil), headers: [("authorization", "Bearer \(Self.metricsToken)")])
    }

    /// A POST without a key and with the given content type.
    package func rawPost(_ path: String, body: Data, contentType: String) async throws -> Reply {
        try await request(.POST, path, key: .some(nil), body: body, contentType: contentType)
    }

    package func post(_ path: String, _ json: String, key: String?? = .none, headers: [(String, String)] = []) async throws -> Reply {
        try await request(.POST, path, key: key, body: Data(json.utf8), headers: headers)
    }

    package func ingest(_ json: String, key: String?? = .none) async throws -> Reply { try await post("/ingest", json, key: key) }

    /// Raw points of one metric over all time.
    package func rawValues(_ source: String, _ metric: String, key: String?? = .none) async throws -> (ts: [Double], values: [Any]) {
        let r = try await get("/v1/sources/\(source)/metrics/query?metrics=\(metric)&start=0&end=99999999999999&interval=raw", key: key)
        let s = (r.object["series"] as? [String: Any])?[metric] as? [String: Any]
        return ((s?["timestamp_ms"] as? [Double]) ?? [], (s?["value"] as? [Any]) ?? [])
    }
}

/// Runs `body` against a fresh `plexus-server` process (configured by `environment`,
/// as an operator would) and always cleans up.
package func withServerProcess(environment: [String: String] = [:], _ body: (TestServer) async throws -> Void) async throws {
    let server = try await TestServer.start(environment: environment)
    defer { server.cleanUp() }
    try await body(server)
    await server.stop()
}

package func nowMillis() -> Double { Date().timeIntervalSince1970 * 1_000 }

/// Polls `condition` until it holds or `timeout` has passed; true if it held. For waiting
/// on the server without a fixed sleep: a test takes as long as the server needs, no less
/// and (within the timeout) no more.
package func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
}
