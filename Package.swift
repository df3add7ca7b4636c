// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// An example program in `Examples/<name>`: the SDK, a command line, a service group with
/// signal handling, and SwiftNIO for its socket.
func example(_ name: String) -> Target {
    .executableTarget(
        name: name,
        dependencies: [
            "Plexus",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ],
        path: "Examples/" + name,
        swiftSettings: swiftSettings
    )
}

let package = Package(
    name: "plexus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "plexus-server", targets: ["PlexusServerCLI"]),
        .executable(name: "plexus", targets: ["PlexusCLI"]),
        .library(name: "Plexus", targets: ["Plexus"]),
        .library(name: "PlexusSensors", targets: ["PlexusSensors"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // Everything devices and the server must agree on: values, points, limits,
        // the ingest JSON codec. No I/O, no dependencies.
        .target(name: "PlexusModel", swiftSettings: swiftSettings),
        // The storage contract the server sees. No engine types leak through it.
        .target(
            name: "PlexusStorage",
            dependencies: ["PlexusModel"],
            swiftSettings: swiftSettings
        ),
        // The write-ahead log's format and file handling: segments, record framing, CRC-32C,
        // the record header. Its own target so the fuzzers (Fuzz/) build it without GRDB or NIO.
        .target(
            name: "PlexusWAL",
            dependencies: ["PlexusModel", "PlexusStorage"],
            swiftSettings: swiftSettings
        ),
        // The chunk codec: how a run of one series' points is encoded (decimal or XOR
        // numbers, constant or delta-of-delta times). No I/O; fuzzed in Fuzz/. Every engine's.
        .target(
            name: "PlexusChunks",
            dependencies: ["PlexusModel"],
            swiftSettings: swiftSettings
        ),
        // The embedded store: write-ahead log + SQLite (GRDB) chunk storage and rollups.
        .target(
            name: "PlexusStorageSQLite",
            dependencies: [
                "PlexusModel", "PlexusStorage", "PlexusWAL", "PlexusChunks",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // One conformance suite every store must pass.
        .target(
            name: "PlexusStorageTesting",
            dependencies: ["PlexusModel", "PlexusStorage"],
            swiftSettings: swiftSettings
        ),
        // The web dashboard: static HTML, CSS and ES modules (no build step), served by the server.
        .target(
            name: "PlexusDashboard",
            resources: [.copy("Public")],
            swiftSettings: swiftSettings
        ),
        // The domain between the transports and the store: the Ingestor, limits and quotas,
        // the live fan-out protocol, domain errors. No HTTP, no SQL.
        .target(
            name: "PlexusCore",
            dependencies: [
                "PlexusModel", "PlexusStorage",
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // PromQL, the part the query API answers: parser and evaluator over series points
        // handed in by the caller. No I/O (fuzzed in Fuzz/ through a symlink).
        .target(
            name: "PlexusPromQL",
            dependencies: ["PlexusModel", "PlexusStorage"],
            swiftSettings: swiftSettings
        ),
        // The HTTP application (Hummingbird 2): ingest, sessions, read API, health, metrics.
        .target(
            name: "PlexusServer",
            dependencies: [
                "PlexusModel", "PlexusStorage", "PlexusCore", "PlexusPromQL", "PlexusDashboard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // `plexus-server`: configuration, store choice, key/org administration.
        .executableTarget(
            name: "PlexusServerCLI",
            dependencies: [
                "PlexusServer", "PlexusCore", "PlexusStorage", "PlexusStorageSQLite", "PlexusModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The system SQLite for the SDK's on-disk buffer: a measured hot path on the
        // device, and the SDK stays free of the server's storage library (GRDB).
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The SDK a user's program imports: `import Plexus`.
        .target(
            name: "Plexus",
            dependencies: [
                "PlexusModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
                "CSQLite",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Sensors on a device: the Sensor protocol, the hub, I2C buses (Linux i2c-dev and a
        // simulated bus), the MPU6050/MPU9250/BME280 drivers, detection, the system sensor.
        .target(
            name: "PlexusSensors",
            dependencies: ["PlexusModel"],
            swiftSettings: swiftSettings
        ),
        // `plexus`, the device agent: sign in, scan sensors, stream, obey the dashboard.
        .executableTarget(
            name: "PlexusCLI",
            dependencies: [
                "Plexus", "PlexusSensors", "PlexusModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The live-path benchmark client (scripts/bench-live): devices and dashboards over WebSocket.
        .executableTarget(
            name: "PlexusLiveBench",
            dependencies: [
                "PlexusModel",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The ingest codecs per point, without a server (scripts/bench-codecs).
        .executableTarget(
            name: "PlexusCodecBench",
            dependencies: ["PlexusModel", "PlexusChunks", "PlexusWAL"],
            swiftSettings: swiftSettings,
            // PlexusModel rounds with libm; nothing else here brings it in.
            linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]
        ),
        // The SDK throughput benchmark (scripts/bench-sdk): one client over HTTP and WebSocket.
        .executableTarget(
            name: "PlexusSDKBench",
            dependencies: [
                "Plexus",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The spec's "Bring Your Own Protocol" patterns (docs/device.md): they compile with
        // every build; run them with `swift run plexus-can` and so on.
        example("plexus-can"),
        example("plexus-mavlink"),
        example("plexus-mqtt-bridge"),
        .testTarget(
            name: "PlexusModelTests",
            dependencies: ["PlexusModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexusSensorsTests",
            dependencies: ["PlexusModel", "PlexusSensors"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexusWALTests",
            dependencies: ["PlexusModel", "PlexusStorage", "PlexusWAL"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexusChunksTests",
            dependencies: ["PlexusModel", "PlexusChunks"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexusStorageSQLiteTests",
            dependencies: [
                "PlexusModel", "PlexusStorage", "PlexusStorageSQLite", "PlexusStorageTesting", "PlexusWAL",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexusCoreTests",
            dependencies: ["PlexusModel", "PlexusStorage", "PlexusCore", "PlexusStorageSQLite"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexusPromQLTests",
            dependencies: ["PlexusModel", "PlexusStorage", "PlexusPromQL"],
            swiftSettings: swiftSettings
        ),
        // Test support shared by the test targets that drive a server: `TestServer` (the
        // application in process on a loopback port, or the real binary; HTTP helpers)
        // and `TestSocket`.
        .target(
            name: "PlexusServerTesting",
            dependencies: [
                "PlexusServer", "PlexusStorage", "PlexusStorageSQLite",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Tests/PlexusServerTesting",
            swiftSettings: swiftSettings
        ),
        // The Swift SDK against a real server.
        .testTarget(
            name: "PlexusSDKTests",
            dependencies: [
                "Plexus", "PlexusModel", "PlexusServerTesting", "PlexusServerCLI",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The device side: the `plexus` agent and CLI, and the one-line setup script.
        .testTarget(
            name: "PlexusDeviceTests",
            dependencies: [
                // PlexusCLI and PlexusServerCLI: the tests run the `plexus` and `plexus-server` binaries.
                "Plexus", "PlexusCLI", "PlexusSensors", "PlexusServer", "PlexusModel", "PlexusServerTesting", "PlexusServerCLI",
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlexusServerTests",
            dependencies: [
                // PlexusServerCLI: the tests run the `plexus-server` binary it builds.
                "PlexusModel", "PlexusCore", "PlexusStorage", "PlexusServer", "PlexusServerCLI", "PlexusServerTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
