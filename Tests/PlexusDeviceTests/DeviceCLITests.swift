import Foundation
import PlexusServerTesting
import Testing

/// The built `plexus` binary, run as a subprocess with its own temporary HOME.
final class DeviceProcess: @unchecked Sendable {  // mutated only by the test that owns it
    let home: String
    let log: String
    let process = Process()

    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["PLEXUS_BIN"] { return b }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("plexus").path
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
            dir = dir.deletingLastPathComponent()
        }
        return ".build/debug/plexus"
    }

    static func tempHome() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-device-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    init(home: String) {
        self.home = home
        log = home + "/plexus.log"
    }

    /// Starts `plexus ARGS` with HOME set, stdin from /dev/null, output to `log`.
    func start(_ args: [String], executable: String? = nil, environment: [String: String] = [:]) throws {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable ?? Self.binary)
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        for k in ["PLEXUS_API_KEY", "PLEXUS_GATEWAY_URL", "PLEXUS_GATEWAY_WS_URL", "PLEXUS_INSTALL_ID"] { env.removeValue(forKey: k) }
        env["HOME"] = home
        process.environment = env.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = process.standardOutput
        try process.run()
    }

    /// Runs `plexus ARGS` to the end; returns the exit status and the output.
    static func run(_ args: [String], home: String, environment: [String: String] = [:]) async throws -> (Int32, String) {
        let p = DeviceProcess(home: home)
        try p.start(args, environment: environment)
        await TestServer.exited(p.process)
        return (p.process.terminationStatus, p.output)
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    var config: [String: Any] {
        guard let data = FileManager.default.contents(atPath: home + "/.plexus/config.json") else { return [:] }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    func cleanUp() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: home)
    }
}

@Suite("plexus (device CLI) end to end", .serialized, .timeLimit(.minutes(3)))
struct DeviceCLITests {
    @Test("plexus start --simulate: reports its sensors, streams, and obeys every control message; the session's points are stored")
    func startDrivenByDashboard() async throws {
        try await withServer { s in
            let device = DeviceProcess(home: try DeviceProcess.tempHome())
            defer { device.cleanUp() }
            let (dash, _) = await s.dashboard()
            try device.start(["start", "--simulate", "--key", s.key, "--name", "bench-sim", "--server", s.url])

            // Online, with the simulated chips and the system sensor reported.
            let online = try #require(await dash.next(type: "source_status", timeout: .seconds(30)), "\(device.output)")
            #expect(online["source_id"] as? String == "bench-sim" && online["status"] as? String == "online")
            let sensors = (online["sensors"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(sensors == ["MPU6050", "BME280", "system"], "\(online)")
            #expect(online["platform"] as? String == "plexus-swift")

            // ping → pong
            dash.send(json: ["type": "ping", "source_id": "bench-sim"])
            #expect(await dash.next(type: "pong") != nil)

            // It streams every metric by default; start_stream narrows it to one.
            #expect(await dash.next(type: "telemetry") != nil)
            dash.send(json: [
                "type": "start_stream", "source_id": "bench-sim", "metrics": ["bench-sim:temperature"], "interval_ms": 200, "id": "t",
            ])
            let started = await dash.next(type: "command_result")
            #expect(started?["command"] as? String == "start_stream" && started?["status"] as? String == "ok", "\(started ?? [:])")
            // Points read before the device applied the command may still arrive; every point
            // read after its answer (the device shares this machine's clock) is narrowed.
            let narrowedAt = nowMillis()
            let later = Self.points(in: await frames(dash, for: .milliseconds(2_500))).filter { $0.timestamp > narrowedAt }
            #expect(!later.isEmpty)
            #expect(Set(later.map(\.metric)) == ["temperature"])

            // configure: a known sensor is configured, an unknown one refused.
            dash.send(json: ["type": "configure", "source_id": "bench-sim", "sensor": "MPU6050", "config": ["sample_rate": 20]])
            let ok = await dash.next(type: "command_result")
            #expect(ok?["command"] as? String == "configure" && ok?["status"] as? String == "ok", "\(ok ?? [:])")
            dash.send(json: ["type": "configure", "source_id": "bench-sim", "sensor": "INA219", "config": ["sample_rate": 5]])
            let refused = await dash.next(type: "command_result")
            #expect(refused?["status"] as? String == "error" && (refused?["message"] as? String)?.contains("INA219") == true)

            // A session: all metrics every 100 ms, tagged, stored in the session.
            dash.send(json: [
                "type": "start_session", "source_id": "bench-sim", "session_name": "Motor Test", "metrics": [], "interval_ms": 100,
            ])
            let session = try #require(await dash.next(type: "session_started"))
            let id = try #require(session["session_id"] as? String)
            #expect(session["session_name"] as? String == "Motor Test")
            // Recording until every sensor has points in the session.
            #expect(
                try await eventually(timeout: .seconds(20)) {
                    let data = try await s.get("/api/sessions/\(id)/data?interval=raw").object["series"] as? [String: Any] ?? [:]
                    return ["accel_x", "temperature", "pressure"].allSatisfy { data[$0] != nil }
                })
            dash.send(json: ["type": "stop_session", "source_id": "bench-sim"])
            #expect(await dash.next(type: "session_stopped")?["session_id"] as? String == id)

            // stop_stream: nothing more arrives.
            dash.send(json: ["type": "stop_stream", "source_id": "bench-sim", "id": "*"])
            #expect(await dash.next(type: "command_result")?["command"] as? String == "stop_stream")
            // Points read before the answer may still be on their way; none read after it.
            let stoppedAt = nowMillis()
            #expect(Self.points(in: await frames(dash, for: .milliseconds(1_200))).filter { $0.timestamp > stoppedAt }.isEmpty)

            // SIGTERM: a clean exit after the flush.
            kill(device.process.processIdentifier, SIGTERM)
            await TestServer.exited(device.process, timeout: .seconds(20))
            #expect(!device.process.isRunning)
            #expect(device.process.terminationStatus == 0, "\(device.output)")
            #expect(await dash.next(type: "source_status", timeout: .seconds(5))?["status"] as? String == "offline")

            // The session's points are stored: tagged with it, and counted in its summary.
            let summary = try await s.get("/api/sessions/\(id)")
            #expect(summary.object["status"] as? String == "completed")
            let count = (summary.object["summary"] as? [String: Any])?["point_count"] as? Int ?? 0
            #expect(count > 0, "\(summary.text)")
            for metric in ["accel_x", "temperature", "pressure"] {
                let tagged = try await s.get(
                    "/v1/sources/bench-sim/metrics/query?metrics=\(metric)&start=0&end=99999999999999&interval=raw&session_id=\(id)")
                let values = ((tagged.object["series"] as? [String: Any])?[metric] as? [String: Any])?["value"] as? [Double] ?? []
                #expect(!values.isEmpty, "\(metric): \(tagged.text)")
            }
            let config = device.config
            #expect(config["api_key"] as? String == s.key && config["source_id"] as? String == "bench-sim")
            #expect(config["gateway_url"] as? String == s.url)
        }
    }

    @Test("send, status (key masked), login/logout with a key and with email and password, reset")
    func otherCommands() async throws {
        try await withServer { s in
            let home = try DeviceProcess.tempHome()
            defer { try? FileManager.default.removeItem(atPath: home) }
            var (status, out) = try await DeviceProcess.run(["start"], home: home)
            #expect(status != 0 && out.contains("no API key"), "\(out)")

            (status, out) = try await DeviceProcess.run(["login", "--key", s.key, "--server", s.url], home: home)
            #expect(status == 0, "\(out)")
            (status, out) = try await DeviceProcess.run(["status"], home: home)
            #expect(status == 0 && out.contains(String(s.key.prefix(8)) + "…") && !out.contains(s.key), "\(out)")
            #expect(out.contains(s.url))

            (status, out) = try await DeviceProcess.run(["send", "temperature", "72.5", "--tag", "room=lab"], home: home)
            #expect(status == 0, "\(out)")
            let source = try #require(DeviceProcess(home: home).config["source_id"] as? String)
            #expect(try await s.rawValues(source, "temperature").values.first as? Double == 72.5)
            (status, out) = try await DeviceProcess.run(["send", "pos", #"{"x":1.5}"#], home: home)
            #expect(status == 0, "\(out)")
            #expect(try await s.rawValues(source, "pos.x").values.first as? Double == 1.5)

            (status, out) = try await DeviceProcess.run(["logout"], home: home)
            #expect(status == 0 && DeviceProcess(home: home).config["api_key"] is NSNull)

            // Sign up, then sign in, without prompts: each gives a working key.
            (status, out) = try await DeviceProcess.run(
                ["login", "--signup", "--email", "dev@example.com", "--password", "correct horse battery", "--server", s.url], home: home)
            #expect(status == 0, "\(out)")
            let signedUp = try #require(DeviceProcess(home: home).config["api_key"] as? String)
            #expect(signedUp.hasPrefix("plx_") && signedUp != s.key)
            (status, out) = try await DeviceProcess.run(
                ["login", "--email", "dev@example.com", "--password", "wrong password!!"], home: home)
            #expect(status != 0 && out.contains("sign-in failed"), "\(out)")
            (status, out) = try await DeviceProcess.run(
                ["login", "--email", "dev@example.com", "--password", "correct horse battery"], home: home)
            #expect(status == 0, "\(out)")
            (status, out) = try await DeviceProcess.run(["send", "m", "1"], home: home)
            #expect(status == 0, "\(out)")

            (status, out) = try await DeviceProcess.run(["reset"], home: home)
            #expect(status != 0, "reset without --yes and without a terminal must refuse")
            (status, out) = try await DeviceProcess.run(["reset", "--yes"], home: home)
            #expect(status == 0 && !FileManager.default.fileExists(atPath: home + "/.plexus/config.json"))

            (status, out) = try await DeviceProcess.run(["scan", "--simulate"], home: home)
            #expect(status == 0 && out.contains("MPU6050") && out.contains("BME280") && out.contains("0x68"), "\(out)")
        }
    }

    @Test("on a terminal without a key, plexus start offers sign-up, saves the new key, and shows a live status line")
    func terminalSignUp() async throws {
        try await withServer { s in
            let home = try DeviceProcess.tempHome()
            defer { try? FileManager.default.removeItem(atPath: home) }
            let log = home + "/tty.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            // script(1) gives the agent a pseudo-terminal; the answers go in through it.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            p.arguments = ["-qfec", "exec '\(DeviceProcess.binary)' start --simulate --server \(s.url) --name tty-dev", "/dev/null"]
            var env = ProcessInfo.processInfo.environment
            env.removeValue(forKey: "PLEXUS_API_KEY")
            env["HOME"] = home
            p.environment = env
            let input = Pipe()
            p.standardInput = input
            p.standardOutput = FileHandle(forWritingAtPath: log)
            p.standardError = p.standardOutput
            try p.run()
            defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
            let output = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
            input.fileHandleForWriting.write(Data("1\ntty@example.com\nTess\n".utf8))
            // The password once echo is off (typed earlier, the terminal would echo it).
            #expect(await eventually(timeout: .seconds(5)) { output().contains("Password:") })
            input.fileHandleForWriting.write(Data("correct horse battery\n".utf8))

            let (dash, _) = await s.dashboard()
            let online = await dash.next(type: "source_status", timeout: .seconds(30))
            #expect(online?["source_id"] as? String == "tty-dev", "\(output())")
            let key = try #require(DeviceProcess(home: home).config["api_key"] as? String, "\(output())")
            #expect(key.hasPrefix("plx_") && key != s.key)
            #expect(output().contains("Sign up") && output().contains("Password:"))
            #expect(!output().contains("correct horse battery"), "the password is not echoed")
            #expect(await eventually(timeout: .seconds(5)) { output().contains("● connected as tty-dev") }, "\(output())")
            #expect(output().contains("points sent"))

            // The agent is script's child: stop it the way systemd or Ctrl-C would.
            let children =
                (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/task/\(p.processIdentifier)/children", encoding: .utf8)) ?? ""
            let agent = try #require(children.split(separator: " ").first.flatMap { Int32($0) })
            kill(agent, SIGINT)
            await TestServer.exited(p, timeout: .seconds(20))
            #expect(p.terminationStatus == 0, "\(output())")
        }
    }

    /// Frames that arrive within `duration`.
    func frames(_ socket: TestSocket, for duration: Duration) async -> [[String: Any]] {
        let deadline = ContinuousClock.now + duration
        var out: [[String: Any]] = []
        while ContinuousClock.now < deadline {
            if let f = await socket.next(timeout: deadline - ContinuousClock.now) { out.append(f) }
        }
        return out
    }

    /// The points of the telemetry frames among `frames`, with their timestamps (ms).
    static func points(in frames: [[String: Any]]) -> [(metric: String, timestamp: Double)] {
        frames.filter { $0["type"] as? String == "telemetry" }.flatMap { f in
            (f["points"] as? [[String: Any]] ?? []).map { ($0["metric"] as? String ?? "", $0["timestamp"] as? Double ?? 0) }
        }
    }
}
