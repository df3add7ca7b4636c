// Bring Your Own Protocol: MAVLink telemetry over UDP into Plexus.
//
//   PLEXUS_API_KEY=plx_… swift run plexus-mavlink --port 14550 --name drone-01
//
// Point the autopilot's (or SITL's) telemetry stream at this port. MAVLink v1 and v2
// frames are parsed; HEARTBEAT, SYS_STATUS, ATTITUDE and GLOBAL_POSITION_INT become
// points (armed, battery, roll/pitch/yaw in degrees, position as an object). Add messages
// in `points(for:)`. (A production reader also checks each frame's CRC with its CRC_EXTRA.)
import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Plexus
import ServiceLifecycle
import UnixSignals

/// One MAVLink message: ids and the payload (zero-padded, as v2 trims trailing zeros).
struct MAVLinkMessage: Sendable {
    var systemID: UInt8
    var componentID: UInt8
    var messageID: UInt32
    var payload: [UInt8]

    /// Splits a datagram into messages; bytes that are not a frame are skipped.
    static func parse(_ bytes: [UInt8]) -> [MAVLinkMessage] {
        var out: [MAVLinkMessage] = []
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case 0xFE where i + 8 <= bytes.count:  // v1: magic len seq sys comp msg payload crc(2)
                let len = Int(bytes[i + 1])
                guard i + 8 + len <= bytes.count else { return out }
                out.append(
                    MAVLinkMessage(
                        systemID: bytes[i + 3], componentID: bytes[i + 4], messageID: UInt32(bytes[i + 5]),
                        payload: Array(bytes[(i + 6)..<(i + 6 + len)])))
                i += 8 + len
            case 0xFD where i + 12 <= bytes.count:  // v2: magic len incompat compat seq sys comp msgid(3) payload crc(2) [sig(13)]
                let len = Int(bytes[i + 1])
                let signed = bytes[i + 2] & 0x01 != 0
                let total = 12 + len + (signed ? 13 : 0)
                guard i + total <= bytes.count else { return out }
                let id = UInt32(bytes[i + 7]) | UInt32(bytes[i + 8]) << 8 | UInt32(bytes[i + 9]) << 16
                out.append(
                    MAVLinkMessage(
                        systemID: bytes[i + 5], componentID: bytes[i + 6], messageID: id,
                        payload: Array(bytes[(i + 10)..<(i + 10 + len)])))
                i += total
            default:
                i += 1
            }
        }
        return out
    }

    /// Little-endian fields at byte offsets (reading past the end gives zeros, as v2 needs).
    func u8(_ o: Int) -> UInt8 { o < payload.count ? payload[o] : 0 }
    func u16(_ o: Int) -> UInt16 { UInt16(u8(o)) | UInt16(u8(o + 1)) << 8 }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
    func i16(_ o: Int) -> Int16 { Int16(bitPattern: u16(o)) }
    func i32(_ o: Int) -> Int32 { Int32(bitPattern: u32(o)) }
    func f32(_ o: Int) -> Float { Float(bitPattern: u32(o)) }
}

/// The messages we turn into points.
func points(for m: MAVLinkMessage) -> [PlexusPoint] {
    let tags = ["sysid": String(m.systemID)]
    switch m.messageID {
    case 0:  // HEARTBEAT: custom_mode u32, type, autopilot, base_mode, system_status
        return [
            PlexusPoint("mav.armed", .bool(m.u8(6) & 0x80 != 0), tags: tags),
            PlexusPoint("mav.system_status", .number(Double(m.u8(7))), tags: tags),
        ]
    case 1:  // SYS_STATUS: voltage_battery (mV) at 14, current_battery (cA) at 16, battery_remaining (%) at 30
        return [
            PlexusPoint("battery.voltage", .number(Double(m.u16(14)) / 1_000), tags: tags),
            PlexusPoint("battery.current", .number(Double(m.i16(16)) / 100), tags: tags),
            PlexusPoint("battery.remaining", .number(Double(Int8(bitPattern: m.u8(30)))), tags: tags),
        ]
    case 30:  // ATTITUDE: time_boot_ms, roll, pitch, yaw (rad)
        let deg = { (r: Float) in PlexusValue.number((Double(r) * 180 / .pi * 100).rounded() / 100) }
        return [
            PlexusPoint("attitude.roll", deg(m.f32(4)), tags: tags),
            PlexusPoint("attitude.pitch", deg(m.f32(8)), tags: tags),
            PlexusPoint("attitude.yaw", deg(m.f32(12)), tags: tags),
        ]
    case 33:  // GLOBAL_POSITION_INT: time_boot_ms, lat, lon (1e-7 deg), alt, relative_alt (mm)
        return [
            PlexusPoint(
                "position",
                [
                    "lat": .number(Double(m.i32(4)) / 1e7), "lon": .number(Double(m.i32(8)) / 1e7),
                    "alt": .number(Double(m.i32(12)) / 1_000), "relative_alt": .number(Double(m.i32(16)) / 1_000),
                ], tags: tags)
        ]
    default:
        return []
    }
}

/// Receives datagrams until the service group shuts down.
struct MAVLinkReader: Service {
    let px: Plexus
    let host: String
    let port: Int

    func run() async throws {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, _ in
            do {
                try await cancelWhenGracefulShutdown {
                    for try await datagram in inbound {
                        let batch = MAVLinkMessage.parse(Array(datagram.data.readableBytesView)).flatMap(points(for:))
                        if !batch.isEmpty { try px.sendBatch(batch) }
                    }
                }
            } catch is CancellationError {
                // Shutting down.
            }
        }
    }
}

@main
struct PlexusMAVLink: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plexus-mavlink", abstract: "Stream MAVLink telemetry from UDP to Plexus.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "UDP port.") var port = 14550
    @Option(help: "The device's name (source_id).") var name: String?

    func run() async throws {
        let px = try Plexus(sourceID: name)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: px), .init(service: MAVLinkReader(px: px, host: host, port: port))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "plexus-mavlink")))
        try await group.run()
    }
}
