import Foundation
import Logging
import Plexus
import PlexusSensors
import ServiceLifecycle
import Synchronization

/// What is streamed: on or off, which metrics, at what rate cap. `start_session` streams
/// with its own filter and rate; `stop_session` puts back what was there before.
struct StreamControl: Sendable, Equatable {
    var streaming: Bool
    /// Empty: every metric.
    var metrics: Set<String> = []
    var intervalMs: Double?
    private var beforeSession: Saved?

    private struct Saved: Sendable, Equatable {
        var streaming: Bool
        var metrics: Set<String>
        var intervalMs: Double?
    }

    init(streaming: Bool) { self.streaming = streaming }

    /// The hub's global rate cap in Hz.
    var maximumRate: Double? { intervalMs.map { 1_000 / $0 } }

    func passes(_ metric: String) -> Bool { streaming && (metrics.isEmpty || metrics.contains(metric)) }

    mutating func start(_ r: PlexusCommand.StreamRequest) {
        streaming = true
        metrics = Set(r.metrics)
        intervalMs = r.intervalMs
    }

    mutating func stop() {
        streaming = false
        metrics = []
        intervalMs = nil
    }

    mutating func startSession(_ r: PlexusCommand.StreamRequest) {
        if beforeSession == nil { beforeSession = Saved(streaming: streaming, metrics: metrics, intervalMs: intervalMs) }
        start(r)
    }

    mutating func stopSession() {
        guard let saved = beforeSession else { return }
        streaming = saved.streaming
        metrics = saved.metrics
        intervalMs = saved.intervalMs
        beforeSession = nil
    }
}

/// `plexus start` at work: reads the sensors when they are due, sends what the dashboard
/// asked for, and obeys its commands. A `Service`: it stops on graceful shutdown, and the
/// client (the next service down) then flushes.
final class DeviceAgent: Service, Sendable {
    let px: Plexus
    let hub: SensorHub
    let console: Console
    private let control: Mutex<StreamControl>
    private let counters = Mutex((points: 0, lastError: String?.none))

    init(px: Plexus, hub: SensorHub, console: Console, streamAtStart: Bool) {
        self.px = px
        self.hub = hub
        self.console = console
        control = Mutex(StreamControl(streaming: streamAtStart))
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.obey() }
            group.addTask { await self.sample() }
            if console.isTTY { group.addTask { await self.showStatus() } }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        console.log("stopping: sending what is buffered (\(px.bufferedPoints) points)")
        hub.cleanup()
    }

    // MARK: Sampling

    private func sample() async {
        do {
            try await hub.run { poll in await self.publish(poll) }
        } catch {
            // Cancelled: shutting down.
        }
    }

    private func publish(_ poll: SensorPoll) async {
        for issue in poll.issues {
            console.log("\(issue)")
            counters.withLock { $0.lastError = issue.severity == .error ? issue.description : nil }
            if issue.severity == .error || issue.kind == .recovered {
                await px.reportError(
                    source: issue.sensor, issue.message, severity: issue.kind == .recovered ? "info" : issue.severity.rawValue)
            }
        }
        let filter = control.withLock { $0 }
        guard filter.streaming else { return }
        let offset = px.clockOffset
        let shift = Double(offset.components.seconds) + Double(offset.components.attoseconds) / 1e18
        var points: [PlexusPoint] = []
        for r in poll.readings where filter.passes(r.metric) {
            points.append(PlexusPoint(r.metric, r.value, timestamp: Date(timeIntervalSince1970: r.timestamp + shift), tags: r.tags))
        }
        guard !points.isEmpty else { return }
        do {
            try px.sendBatch(points)
            counters.withLock { $0.points += points.count }
        } catch {
            console.log("dropped \(points.count) readings: \(error)")
        }
    }

    // MARK: Commands

    private func obey() async {
        for await command in px.commands {
            await handle(command)
        }
    }

    func handle(_ command: PlexusCommand) async {
        switch command.action {
        case .ping:
            console.log("ping from the dashboard: pong sent")
        case .startStream(let r):
            apply { $0.start(r) }
            console.log(
                "start_stream: \(r.metrics.isEmpty ? "all metrics" : r.metrics.joined(separator: ", "))"
                    + (r.intervalMs.map { " every \(Int($0)) ms" } ?? ""))
            await reply(command, .ok)
        case .stopStream:
            apply { $0.stop() }
            console.log("stop_stream: streaming stopped")
            await reply(command, .ok)
        case .startSession(let id, let name, let stream):
            apply { $0.startSession(stream) }
            console.log("session \(id)\(name.map { " (\($0))" } ?? "") started: points are tagged session_id=\(id)")
        case .stopSession(let id):
            apply { $0.stopSession() }
            console.log("session \(id ?? "") stopped")
        case .configure(let sensor, let options):
            do {
                let name =
                    hub.sensors.first { $0.name == sensor }?.name
                    ?? hub.sensors.first { $0.name.lowercased() == sensor.lowercased() }?.name ?? sensor
                try hub.configure(sensor: name, options)
                console.log("configure \(name): \(options.keys.sorted().joined(separator: ", "))")
                await reply(command, .ok)
            } catch {
                console.log("configure \(sensor) refused: \(error)")
                await reply(command, .error("\(error)"))
            }
        case .other:
            console.log("\(command.type): not supported by this agent")
            await reply(command, .error("\(command.type) is not supported by plexus (Swift)"))
        }
    }

    private func apply(_ change: (inout StreamControl) -> Void) {
        let rate = control.withLock { c -> Double? in
            change(&c)
            return c.maximumRate
        }
        hub.maximumRate = rate
    }

    private func reply(_ command: PlexusCommand, _ result: PlexusCommandResult) async {
        do {
            try await px.reply(to: command, result)
        } catch {
            console.log("could not answer \(command.type): \(error)")
        }
    }

    // MARK: Status line

    private func showStatus() async {
        while !Task.isCancelled {
            let (points, lastError) = counters.withLock { ($0.points, $0.lastError) }
            let c = control.withLock { $0 }
            var parts = [px.isConnected ? "● connected as \(px.sourceID)" : "○ connecting…"]
            parts.append(c.streaming ? "streaming \(c.metrics.isEmpty ? "all metrics" : "\(c.metrics.count) metrics")" : "idle")
            if let session = px.sessionID { parts.append("session \(session)") }
            parts.append("\(points) points sent")
            if px.bufferedPoints > 0 { parts.append("\(px.bufferedPoints) waiting") }
            if let lastError { parts.append("⚠ \(lastError)") }
            console.status(parts.joined(separator: " · "))
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// Output: plain timestamped lines when not on a terminal; on a terminal, the same lines
/// above a status line that is redrawn in place.
final class Console: Sendable {
    let isTTY: Bool
    private let lastStatus = Mutex("")

    init(isTTY: Bool = Terminal.stdoutIsTTY) { self.isTTY = isTTY }

    func log(_ line: String) {
        lastStatus.withLock { status in
            if isTTY {
                print("\r\u{1B}[2K\(line)")
                if !status.isEmpty { print(status, terminator: "") }
            } else {
                let stamp = ISO8601DateFormatter().string(from: Date())
                print("\(stamp) \(line)")
            }
            fflush(nil)
        }
    }

    func status(_ line: String) {
        guard isTTY else { return }
        lastStatus.withLock { status in
            status = line
            print("\r\u{1B}[2K\(line)", terminator: "")
            fflush(nil)
        }
    }
}
