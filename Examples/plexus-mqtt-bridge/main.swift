// Bring Your Own Protocol: an MQTT-to-Plexus bridge.
//
//   PLEXUS_API_KEY=plx_… swift run plexus-mqtt-bridge --broker 127.0.0.1 --topic 'sensors/#' --name greenhouse
//
// Subscribes to a topic filter on an MQTT 3.1.1 broker (QoS 0) and sends every message as a
// point: the topic becomes the metric (`sensors/greenhouse/temp` → `sensors.greenhouse.temp`),
// a JSON payload its value (number, boolean, object, array), anything else (also `NaN`,
// which JSON does not have) a string. A message Plexus would refuse is skipped with a
// warning. The few MQTT packets a subscriber needs are written out below, so the example
// has no dependency beyond SwiftNIO.
import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Plexus
import ServiceLifecycle
import UnixSignals

/// MQTT 3.1.1 packets (OASIS standard, section 3): just what a QoS 0 subscriber sends and reads.
enum MQTT {
    static func connect(clientID: String, keepAlive: UInt16, username: String?, password: String?) -> [UInt8] {
        var body: [UInt8] = string("MQTT") + [4]  // protocol name, level 4 (3.1.1)
        var flags: UInt8 = 0x02  // clean session
        if username != nil { flags |= 0x80 }
        if password != nil { flags |= 0x40 }
        body += [flags, UInt8(keepAlive >> 8), UInt8(keepAlive & 0xFF)] + string(clientID)
        if let username { body += string(username) }
        if let password { body += string(password) }
        return packet(0x10, body)
    }

    static func subscribe(_ filter: String, packetID: UInt16) -> [UInt8] {
        packet(0x82, [UInt8(packetID >> 8), UInt8(packetID & 0xFF)] + string(filter) + [0])  // QoS 0
    }

    static let pingRequest: [UInt8] = [0xC0, 0]
    static let disconnect: [UInt8] = [0xE0, 0]

    static func string(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        return [UInt8(b.count >> 8), UInt8(b.count & 0xFF)] + b
    }

    static func packet(_ header: UInt8, _ body: [UInt8]) -> [UInt8] {
        var out = [header]
        var n = body.count
        repeat {  // remaining length: 7 bits per byte, high bit = more
            var byte = UInt8(n % 128)
            n /= 128
            if n > 0 { byte |= 0x80 }
            out.append(byte)
        } while n > 0
        return out + body
    }

    /// One packet from the front of `buffer` (removed), or nil if it is not complete yet.
    static func next(_ buffer: inout [UInt8]) -> (type: UInt8, flags: UInt8, body: [UInt8])? {
        var length = 0
        var multiplier = 1
        var i = 1
        while true {
            guard i < buffer.count, i <= 4 else { return nil }
            length += Int(buffer[i] & 0x7F) * multiplier
            multiplier *= 128
            i += 1
            if buffer[i - 1] & 0x80 == 0 { break }
        }
        guard buffer.count >= i + length else { return nil }
        let packet = (buffer[0] >> 4, buffer[0] & 0x0F, Array(buffer[i..<(i + length)]))
        buffer.removeFirst(i + length)
        return packet
    }

    /// Topic and payload of a PUBLISH body.
    static func publish(flags: UInt8, body: [UInt8]) -> (topic: String, payload: [UInt8])? {
        guard body.count >= 2 else { return nil }
        let n = Int(body[0]) << 8 | Int(body[1])
        var start = 2 + n
        if (flags >> 1) & 0x03 > 0 { start += 2 }  // QoS 1/2 carry a packet id
        guard body.count >= start else { return nil }
        return (String(decoding: body[2..<(2 + n)], as: UTF8.self), Array(body[start...]))
    }
}

/// Topic → metric, payload → value.
func point(topic: String, payload: [UInt8]) -> PlexusPoint? {
    let metric = topic.split(separator: "/").joined(separator: ".")
    guard !metric.isEmpty else { return nil }
    let text = String(decoding: payload, as: UTF8.self)
    return PlexusPoint(metric, PlexusValue(jsonText: text) ?? .string(text), tags: ["mqtt_topic": topic])
}

struct ExampleError: Error, CustomStringConvertible {
    let description: String
}

/// Connects, subscribes, forwards; keeps the session alive with PINGREQ.
struct MQTTBridge: Service {
    let px: Plexus
    let broker: String
    let port: Int
    let filter: String
    let username: String?
    let password: String?
    let logger = Logger(label: "plexus-mqtt-bridge")

    func run() async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: broker, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let keepAlive: UInt16 = 30
        try await channel.executeThenClose { inbound, outbound in
            let clientID = "plexus-bridge-\(UUID().uuidString.prefix(8))"
            try await outbound.write(
                ByteBuffer(bytes: MQTT.connect(clientID: clientID, keepAlive: keepAlive, username: username, password: password)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while true {
                        try await Task.sleep(for: .seconds(Int(keepAlive) / 2))
                        try await outbound.write(ByteBuffer(bytes: MQTT.pingRequest))
                    }
                }
                group.addTask {
                    do {
                        try await cancelWhenGracefulShutdown { try await forward(inbound, outbound) }
                    } catch is CancellationError {
                        // Shutting down.
                    }
                    try? await outbound.write(ByteBuffer(bytes: MQTT.disconnect))
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }
    }

    /// Reads packets: subscribes after CONNACK, sends each PUBLISH as a point.
    private func forward(
        _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
        _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        var pending: [UInt8] = []
        for try await chunk in inbound {
            pending += chunk.readableBytesView
            while let p = MQTT.next(&pending) {
                switch p.type {
                case 2:  // CONNACK
                    guard p.body.count >= 2, p.body[1] == 0 else {
                        throw ExampleError(description: "broker refused: code \(p.body.last ?? 0)")
                    }
                    try await outbound.write(ByteBuffer(bytes: MQTT.subscribe(filter, packetID: 1)))
                case 3:  // PUBLISH
                    if let m = MQTT.publish(flags: p.flags, body: p.body), let point = point(topic: m.topic, payload: m.payload) {
                        // A message Plexus would refuse (a name over 256 bytes, a string
                        // over 64 KiB…) is skipped with a warning; the bridge goes on.
                        do {
                            try px.sendBatch([point])
                        } catch {
                            logger.warning("skipped a message on \(m.topic.prefix(80).debugDescription): \(error)")
                        }
                    }
                default:  // SUBACK, PINGRESP
                    break
                }
            }
        }
    }
}

@main
struct PlexusMQTTBridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plexus-mqtt-bridge", abstract: "Forward MQTT messages to Plexus.")

    @Option(help: "The broker's host.") var broker = "127.0.0.1"
    @Option(help: "The broker's port.") var port = 1883
    @Option(help: "The topic filter to subscribe to.") var topic = "sensors/#"
    @Option(help: "MQTT user name.") var username: String?
    @Option(help: "MQTT password.") var password: String?
    @Option(help: "The device's name (source_id).") var name: String?

    func run() async throws {
        let px = try Plexus(sourceID: name)
        let bridge = MQTTBridge(px: px, broker: broker, port: port, filter: topic, username: username, password: password)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: px), .init(service: bridge)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "plexus-mqtt-bridge")))
        try await group.run()
    }
}
