// Bring Your Own Protocol: a CAN bus on Linux (SocketCAN) into Plexus.
//
//   sudo ip link set can0 up type can bitrate 500000   (or: ip link add dev vcan0 type vcan)
//   PLEXUS_API_KEY=plx_… swift run plexus-can --interface can0 --name rover-01
//
// Every frame becomes a point `can.<id in hex>` whose value is the data bytes, tagged
// with the interface. Decode your own signals in `points(for:)` (a DBC decoder goes there).
import ArgumentParser
import Foundation
import Logging
import NIOPosix
import Plexus
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc

    /// One raw CAN socket bound to an interface (`AF_CAN`, `CAN_RAW`).
    final class CANSocket: Sendable {
        struct Frame: Sendable {
            var id: UInt32
            var extended: Bool
            var data: [UInt8]
        }

        static let afCAN: Int32 = 29, canRaw: Int32 = 1
        let fd: Int32

        init(interface: String) throws(ExampleError) {
            let index = if_nametoindex(interface)
            guard index != 0 else { throw ExampleError("no network interface \(interface)") }
            let fd = socket(Self.afCAN, Int32(SOCK_RAW.rawValue), Self.canRaw)
            guard fd >= 0 else { throw ExampleError("socket(AF_CAN): errno \(errno)") }
            // struct sockaddr_can: family (u16), 2 bytes padding, ifindex (i32), 16 bytes of address.
            var address = [UInt8](repeating: 0, count: 24)
            withUnsafeBytes(of: UInt16(Self.afCAN)) { address.replaceSubrange(0..<2, with: $0) }
            withUnsafeBytes(of: Int32(index)) { address.replaceSubrange(4..<8, with: $0) }
            let bound = address.withUnsafeBytes { raw in
                bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
            guard bound == 0 else {
                Glibc.close(fd)
                throw ExampleError("bind to \(interface): errno \(errno)")
            }
            // Reads give up after 200 ms, so the reader notices shutdown.
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            self.fd = fd
        }

        /// The next frame, or nil after 200 ms without one. Blocking: call it on a thread pool.
        func read() throws(ExampleError) -> Frame? {
            // struct can_frame: can_id (u32), len (u8), 3 bytes, data[8].
            var raw = [UInt8](repeating: 0, count: 16)
            let n = raw.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 16) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return nil }
                throw ExampleError("read: errno \(errno)")
            }
            guard n == 16 else { return nil }
            let word = raw[0..<4].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            let extended = word & 0x8000_0000 != 0
            let length = min(Int(raw[4]), 8)
            return Frame(id: word & (extended ? 0x1FFF_FFFF : 0x7FF), extended: extended, data: Array(raw[8..<(8 + length)]))
        }

        func close() { Glibc.close(fd) }
    }

    /// Reads frames and sends them until the service group shuts down.
    struct CANBridge: Service {
        let px: Plexus
        let socket: CANSocket
        let interface: String

        /// Your decoding goes here. The default: the raw bytes under `can.<id>`.
        func points(for frame: CANSocket.Frame) -> [PlexusPoint] {
            [
                PlexusPoint(
                    "can.0x" + String(frame.id, radix: 16), .array(frame.data.map { .number(Double($0)) }), tags: ["interface": interface])
            ]
        }

        func run() async throws {
            defer { socket.close() }
            do {
                try await cancelWhenGracefulShutdown {
                    while !Task.isCancelled {
                        let socket = socket
                        guard let frame = try await NIOThreadPool.singleton.runIfActive({ try socket.read() }) else { continue }
                        try px.sendBatch(points(for: frame))
                    }
                }
            } catch is CancellationError {
                // Shutting down.
            }
        }
    }

    @main
    struct PlexusCAN: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "plexus-can", abstract: "Stream a SocketCAN interface to Plexus.")

        @Option(help: "The CAN interface.") var interface = "can0"
        @Option(help: "The device's name (source_id).") var name: String?

        func run() async throws {
            let px = try Plexus(sourceID: name)
            let bridge = CANBridge(px: px, socket: try CANSocket(interface: interface), interface: interface)
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: px), .init(service: bridge)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "plexus-can")))
            try await group.run()
        }
    }
#else
    @main
    struct PlexusCAN {
        static func main() { print("plexus-can needs Linux (SocketCAN)") }
    }
#endif

struct ExampleError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
