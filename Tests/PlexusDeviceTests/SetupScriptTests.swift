import Foundation
import NIOHTTP1
import PlexusServerTesting
import Testing

@testable import PlexusServer

@Suite("GET /setup: one-line device setup in a temporary root", .serialized, .timeLimit(.minutes(3)))
struct SetupScriptTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Runs `bash -c command` in `dir` with `environment` added; returns the status and the output.
    func shell(_ command: String, environment: [String: String], in dir: String) async throws -> (Int32, String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-shell-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        for k in ["PLEXUS_API_KEY", "PLEXUS_GATEWAY_URL", "PLEXUS_GATEWAY_WS_URL", "PLEXUS_BIN", "PLEXUS_SERVER"] {
            env.removeValue(forKey: k)
        }
        p.environment = env.merging(environment) { $1 }
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = p.standardOutput
        try p.run()
        await TestServer.exited(p, timeout: .seconds(120))
        return (p.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    func write(_ text: String, to path: String, executable: Bool = false) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
    }

    @Test(
        "installs the checksummed binary, writes the config and the unit, starts it via systemctl; the device comes online; a second run is harmless"
    )
    func install() async throws {
        let work = try DeviceProcess.tempHome()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let releases = work + "/releases"
        let root = work + "/root"
        let home = work + "/home"
        let stubs = work + "/stubs"
        for d in [root, home, stubs] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }

        // scripts/package puts the built binary and its checksum where the server serves them.
        var (status, out) = try await shell(
            "scripts/package --binary '\(DeviceProcess.binary)' --out '\(releases)'", environment: [:], in: Self.repository)
        #expect(status == 0, "\(out)")
        let arch = try await shell("uname -m", environment: [:], in: work).1.trimmingCharacters(in: .whitespacesAndNewlines)
        let sum = try String(contentsOfFile: releases + "/plexus-linux-\(arch).sha256", encoding: .utf8)
        #expect(sum.hasSuffix("  plexus-linux-\(arch)\n"))

        // A systemctl that only records what it was asked.
        try write("#!/bin/sh\necho \"$*\" >> '\(work)/systemctl.log'\n", to: stubs + "/systemctl", executable: true)

        try await withServer(.set(\.releasesDirectory, releases)) { s in
            let env = [
                "PLEXUS_ROOT": root, "HOME": home, "PATH": stubs + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
            ]
            let oneLine = "curl -sL \(s.url)/setup | bash -s -- --key \(s.key) --name setup-dev"
            (status, out) = try await shell(oneLine, environment: env, in: work)
            #expect(status == 0, "\(out)")
            #expect(out.contains("Checksum verified"), "\(out)")

            let installed = root + "/usr/local/bin/plexus"
            #expect(FileManager.default.isExecutableFile(atPath: installed))
            let sha = try await shell("sha256sum '\(installed)' | cut -d' ' -f1", environment: [:], in: work).1
            #expect(sum.hasPrefix(sha.trimmingCharacters(in: .whitespacesAndNewlines) + "  "))
            let config = DeviceProcess(home: home).config
            #expect(config["api_key"] as? String == s.key && config["source_id"] as? String == "setup-dev")
            #expect(config["gateway_url"] as? String == s.url)
            let calls = try String(contentsOfFile: work + "/systemctl.log", encoding: .utf8)
            #expect(calls == "daemon-reload\nenable plexus.service\nrestart plexus.service\n")
            let unit = try String(contentsOfFile: root + "/etc/systemd/system/plexus.service", encoding: .utf8)
            let execStart = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") }).dropFirst("ExecStart=".count)
            #expect(execStart == "\(installed) start")
            #expect(unit.contains("Environment=HOME=\(home)\n") && unit.contains("Restart=always"))

            // Start it as systemd would from the unit: the device comes online.
            let (dash, _) = await s.dashboard()
            let agent = DeviceProcess(home: home)
            defer { if agent.process.isRunning { kill(agent.process.processIdentifier, SIGKILL) } }
            let words = execStart.split(separator: " ").map(String.init)
            try agent.start(Array(words.dropFirst()), executable: words[0])
            let online = await dash.next(type: "source_status", timeout: .seconds(30))
            #expect(online?["source_id"] as? String == "setup-dev" && online?["status"] as? String == "online", "\(agent.output)")
            dash.send(json: ["type": "subscribe", "source_id": "setup-dev"])
            #expect(await dash.next(type: "telemetry", timeout: .seconds(10)) != nil, "the system sensor streams")
            kill(agent.process.processIdentifier, SIGTERM)
            await TestServer.exited(agent.process, timeout: .seconds(20))
            #expect(agent.process.terminationStatus == 0, "\(agent.output)")

            // Again: nothing breaks, the binary is kept, the config keeps its install_id.
            let installID = DeviceProcess(home: home).config["install_id"] as? String
            #expect(installID != nil)
            (status, out) = try await shell(oneLine, environment: env, in: work)
            #expect(status == 0 && out.contains("already up to date"), "\(out)")
            #expect(DeviceProcess(home: home).config["install_id"] as? String == installID)
            #expect(try String(contentsOfFile: work + "/systemctl.log", encoding: .utf8).components(separatedBy: "restart").count == 3)

            // Without systemd: no systemctl call, the foreground command instead.
            var noSystemd = env
            noSystemd["PLEXUS_NO_SYSTEMD"] = "1"
            (status, out) = try await shell(oneLine, environment: noSystemd, in: work)
            #expect(status == 0 && out.contains("run the agent in the foreground with:\n    \(installed) start"), "\(out)")
            #expect(try String(contentsOfFile: work + "/systemctl.log", encoding: .utf8).components(separatedBy: "restart").count == 3)
        }
    }

    @Test("an architecture without a build is named plainly with the build-from-source path; a bad checksum installs nothing")
    func missingArchitectureAndBadChecksum() async throws {
        let work = try DeviceProcess.tempHome()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let releases = work + "/releases"
        let root = work + "/root"
        let stubs = work + "/stubs"
        for d in [releases, root, stubs] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try write("#!/bin/sh\necho \"$*\" >> '\(work)/systemctl.log'\n", to: stubs + "/systemctl", executable: true)
        try write("#!/bin/sh\necho \"$UNAME_M\"\n", to: stubs + "/uname", executable: true)
        try write("not the real binary", to: releases + "/plexus-linux-armv7l")
        try write(String(repeating: "0", count: 64) + "  plexus-linux-armv7l\n", to: releases + "/plexus-linux-armv7l.sha256")
        try await withServer(.set(\.releasesDirectory, releases)) { s in
            var env = [
                "PLEXUS_ROOT": root, "HOME": work, "PATH": stubs + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
            ]
            env["UNAME_M"] = "riscv64"
            var (status, out) = try await shell("curl -sL \(s.url)/setup | bash -s -- --key \(s.key)", environment: env, in: work)
            #expect(status == 3, "\(out)")
            #expect(out.contains("has no plexus build for linux-riscv64"), "\(out)")
            #expect(out.contains("swift build -c release --product plexus"), "\(out)")

            env["UNAME_M"] = "armv7l"
            (status, out) = try await shell("curl -sL \(s.url)/setup | bash -s -- --key \(s.key)", environment: env, in: work)
            #expect(status != 0 && out.contains("checksum mismatch"), "\(out)")
            #expect(!FileManager.default.fileExists(atPath: root + "/usr/local/bin/plexus"))
            #expect(!FileManager.default.fileExists(atPath: work + "/systemctl.log"))

            // Release names are checked: nothing outside the folder is served.
            #expect(try await s.get("/releases/..%2Fetc%2Fpasswd", key: .some(nil)).status == 404)
            #expect(try await s.get("/releases/plexus-linux-armv7l.sha256", key: .some(nil)).status == 200)

            // The Host header is written into a script run as root: only a plain host[:port] is.
            let plain = try await s.request(.GET, "/setup", key: .some(nil), headers: [("host", "pi.local:8080")])
            #expect(plain.text.contains(#"SERVER="${PLEXUS_SERVER:-http://pi.local:8080}""#), "\(plain.text.prefix(600))")
            let evil = try await s.request(.GET, "/setup", key: .some(nil), headers: [("host", "x$(touch${IFS}/tmp/pwned)")])
            #expect(evil.status == 400 && !evil.text.contains("pwned"), "\(evil.text.prefix(600))")
        }
    }

    @Test(
        "only plain host[:port] authorities go into the script",
        arguments: [
            ("pi.local:8080", true), ("10.0.0.5", true), ("[::1]:8080", true), ("plexus.example.com", true),
            ("x$(id)", false), ("a b", false), ("h`id`", false), ("h/evil", false), ("h\"", false), ("", false),
        ])
    func authority(_ value: String, _ ok: Bool) {
        #expect((SetupRoutes.safeAuthority(value) != nil) == ok)
    }
}
