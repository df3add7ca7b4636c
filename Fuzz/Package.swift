// swift-tools-version:6.2
import PackageDescription

// The libFuzzer targets (docs/fuzzing.md). Built only by `scripts/fuzz`, always with
// `-sanitize=fuzzer`, never by the root package's build. Each target's `main` hands its
// test function to libFuzzer's driver (CFuzzerDriver).
//
// Sources/PlexusModel, PlexusStorage, PlexusWAL, PlexusPromQL and PlexusChunks are symlinks to the root package's own
// source directories: the fuzzers compile (and instrument) exactly that code, without
// resolving the root package's dependencies (Hummingbird, GRDB, NIO, ...) and without the
// root package having to publish these modules as products.

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

func fuzzer(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: dependencies + ["FuzzSupport"], swiftSettings: swiftSettings)
}

let package = Package(
    name: "plexus-fuzz",
    platforms: [.macOS(.v15)],
    targets: [
        .target(name: "PlexusModel", swiftSettings: swiftSettings),
        .target(name: "PlexusStorage", dependencies: ["PlexusModel"], swiftSettings: swiftSettings),
        .target(name: "PlexusWAL", dependencies: ["PlexusModel", "PlexusStorage"], swiftSettings: swiftSettings),
        .target(name: "PlexusPromQL", dependencies: ["PlexusModel", "PlexusStorage"], swiftSettings: swiftSettings),
        .target(name: "PlexusChunks", dependencies: ["PlexusModel"], swiftSettings: swiftSettings),
        .target(name: "CFuzzerDriver"),
        .target(name: "FuzzSupport", dependencies: ["PlexusModel", "PlexusWAL", "CFuzzerDriver"], swiftSettings: swiftSettings),
        // IngestDecoder.decode: HTTP bodies and telemetry frames.
        fuzzer("FuzzIngest", ["PlexusModel"]),
        // Frames: every decoder, and decode(encode(x)) for every encoder.
        fuzzer("FuzzFrames", ["PlexusModel"]),
        // LineProtocol.decode (/write, /api/v2/write bodies), and the WAL record (and the
        // JSON of a set-aside batch) decoding back to the same points.
        fuzzer("FuzzLineProtocol", ["PlexusModel"]),
        // Snappy.decompress and RemoteWrite.decode (/api/v1/write bodies), and the WAL record
        // (and the JSON of a set-aside batch) decoding back to the same points.
        fuzzer("FuzzRemoteWrite", ["PlexusModel"]),
        // PromQL.parse (the query API's `query`), then the evaluator on fixed series.
        fuzzer("FuzzPromQL", ["PlexusModel", "PlexusStorage", "PlexusPromQL"]),
        // The chunk codec: any bytes decoded, and encode/decode round trips bit for bit.
        fuzzer("FuzzChunks", ["PlexusModel", "PlexusChunks"]),
        // One WAL segment's bytes: framing, CRC-32C, links, then each record as replay
        // reads it (version 2: WALPoints; version 1: WALRecord and the ingest decoder).
        fuzzer("FuzzWALSegment", ["PlexusModel", "PlexusWAL"]),
        // The real WriteAheadLog on disk: appends, failed writes (RLIMIT_FSIZE), recovery,
        // restarts and torn tails; replay must return exactly the acknowledged records.
        fuzzer("FuzzWALCrash", ["PlexusModel", "PlexusStorage", "PlexusWAL"]),
    ]
)
