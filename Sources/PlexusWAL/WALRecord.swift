package import PlexusModel
import PlexusStorage

/// What one WAL record carries: a validated ingest batch.
///
/// Version 2, what the store writes: the batch's points as they are stored.
/// ```
/// payload := version:u8(=2) orgID:i64le receivedAt:i64le body   (body: WALPoints)
/// ```
/// Version 1, what releases before it wrote (still replayed): the batch as received.
/// ```
/// payload := version:u8(=1) orgID:i64le receivedAt:i64le
///            sourceLen:u16le source   (forced source: WebSocket connection, else empty)
///            sessionLen:u16le session (recording session for untagged points, else empty)
///            json                     (the request body / frame, decompressed)
/// ```
package struct WALRecord: Sendable, Equatable {
    package var orgID: Int64
    package var receivedAt: Int64
    package var forcedSource: String?
    package var recordingSession: String?

    package init(orgID: Int64, receivedAt: Int64, forcedSource: String?, recordingSession: String?) {
        self.orgID = orgID
        self.receivedAt = receivedAt
        self.forcedSource = forcedSource
        self.recordingSession = recordingSession
    }

    /// The decoder options the batch was first decoded with, so replay rebuilds the same points.
    package var ingestOptions: IngestDecoder.Options {
        IngestDecoder.Options(forcedSourceID: forcedSource, recordingSessionID: recordingSession)
    }

    package func encode(json: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(json.count + 32)
        out.append(1)
        withUnsafeBytes(of: orgID.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: receivedAt.littleEndian) { out.append(contentsOf: $0) }
        for s in [forcedSource ?? "", recordingSession ?? ""] {
            let u = Array(s.utf8)
            withUnsafeBytes(of: UInt16(u.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: u)
        }
        out.append(contentsOf: json)
        return out
    }

    /// Decodes the header; returns it and the JSON part.
    package static func decode(_ p: UnsafeRawBufferPointer) throws -> (WALRecord, UnsafeRawBufferPointer) {
        guard p.count >= 21, p[0] == 1 else { throw StoreError(.corrupted, "unknown WAL record version") }
        let org = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 1, as: Int64.self))
        let at = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 9, as: Int64.self))
        var off = 17
        var strings: [String] = []
        for _ in 0..<2 {
            guard off + 2 <= p.count else { throw StoreError(.corrupted, "short WAL record") }
            let n = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self)))
            off += 2
            guard off + n <= p.count else { throw StoreError(.corrupted, "short WAL record") }
            strings.append(String(decoding: UnsafeRawBufferPointer(rebasing: p[off..<(off + n)]), as: UTF8.self))
            off += n
        }
        let rec = WALRecord(
            orgID: org, receivedAt: at,
            forcedSource: strings[0].isEmpty ? nil : strings[0],
            recordingSession: strings[1].isEmpty ? nil : strings[1])
        return (rec, UnsafeRawBufferPointer(rebasing: p[off...]))
    }
}

/// A version-2 record: an organisation's batch, its points as stored (``WALPoints``).
package struct WALPointsRecord: Sendable {
    package var orgID: Int64
    package var receivedAt: Int64

    package init(orgID: Int64, receivedAt: Int64) {
        self.orgID = orgID
        self.receivedAt = receivedAt
    }

    package static let version: UInt8 = 2

    package func encode(_ points: [Point]) -> [UInt8] {
        var out: [UInt8] = [Self.version]
        out.reserveCapacity(64 + points.count * 16)
        withUnsafeBytes(of: orgID.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: receivedAt.littleEndian) { out.append(contentsOf: $0) }
        WALPoints.encode(points, receivedAt: receivedAt, into: &out)
        return out
    }

    /// The header and the body of a version-2 payload.
    package static func decode(_ p: UnsafeRawBufferPointer) throws -> (WALPointsRecord, UnsafeRawBufferPointer) {
        guard p.count >= 17, p[0] == version else { throw StoreError(.corrupted, "not a version-2 WAL record") }
        let org = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 1, as: Int64.self))
        let at = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 9, as: Int64.self))
        return (WALPointsRecord(orgID: org, receivedAt: at), UnsafeRawBufferPointer(rebasing: p[17...]))
    }
}
