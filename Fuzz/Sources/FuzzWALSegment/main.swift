// libFuzzer target: one write-ahead-log segment's bytes, read the way replay reads them
// (WriteAheadLog.scanSegment), then each record: version 2 (WALPointsRecord, WALPoints:
// the points obey the ingest rules and survive being encoded again) or version 1's header
// (WALRecord.decode) and body
// (IngestDecoder.decode with the record's options), as SQLiteStore.replay does.
//  * every record returned lies wholly inside the bytes, has a matching CRC-32C, and
//    framing the returned payloads again gives back exactly the bytes scanned: replay
//    never returns a record that was not written whole;
//  * "complete" means exactly that the bytes (up to the bound) are whole records;
//  * CRC32C (slicing-by-8) equals a bit-at-a-time reference, also when chained;
//  * a header that decodes encodes back to the same bytes (when its strings are UTF-8);
//  * points that the replayed body decodes to obey the ingest rules.
import FuzzSupport
import PlexusModel
import PlexusWAL

/// CRC-32C one bit at a time: the reference.
func referenceCRC32C(_ data: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
    var crc = ~seed
    for byte in data {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

func checkScan(_ raw: UnsafeRawBufferPointer, bound: Int?) {
    var payloads: [[UInt8]] = []
    var ends: [Int] = []
    let (end, complete) = WriteAheadLog.scanSegment(raw, bound: bound) { payload, after in
        payloads.append(Array(payload))
        ends.append(after)
        // The payload is the bytes just before `after`, behind its own header.
        let start = after - payload.count
        require(start >= 8 && after <= raw.count, "record outside the segment")
        require(payload.baseAddress == raw.baseAddress.map { $0 + start }, "payload is not where its record says")
        let len = raw.loadUnaligned(fromByteOffset: start - 8, as: UInt32.self).littleEndian
        let crc = raw.loadUnaligned(fromByteOffset: start - 4, as: UInt32.self).littleEndian
        require(Int(len) == payload.count && len > 0, "length header \(len) for a payload of \(payload.count)")
        require(crc == referenceCRC32C(payload), "a record with a wrong CRC was returned")
    }
    let limit = bound ?? raw.count
    require(end <= min(limit, raw.count), "scan ended at \(end), past \(limit)")
    require(complete == (end == limit), "complete is \(complete) with end \(end) and limit \(limit)")
    if let last = ends.last { require(last <= end, "a record ends after the scan's end") }
    // A link at the start is skipped; everything else from there to `end` is the records returned.
    var linkLength = 0
    if raw.count >= 8 + 17, WriteAheadLog.link(in: UnsafeRawBufferPointer(rebasing: raw[8..<(8 + 17)])) != nil,
        raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian == 17,
        raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
            == referenceCRC32C(UnsafeRawBufferPointer(rebasing: raw[8..<(8 + 17)])),
        8 + 17 <= limit
    {
        linkLength = 8 + 17
    }
    if end > 0 {
        require(Array(raw[linkLength..<end]) == WriteAheadLog.frame(payloads), "framing the replayed records again differs from the bytes")
    } else {
        require(payloads.isEmpty, "records returned from an empty prefix")
    }
}

func checkCRC(_ raw: UnsafeRawBufferPointer) {
    require(CRC32C.checksum(raw) == referenceCRC32C(raw), "CRC32C differs from the reference")
    let cut = raw.count / 3
    let a = UnsafeRawBufferPointer(rebasing: raw[..<cut])
    let b = UnsafeRawBufferPointer(rebasing: raw[cut...])
    require(CRC32C.checksum(b, seed: CRC32C.checksum(a)) == CRC32C.checksum(raw), "chained CRC32C differs")
}

/// A version-2 record: its points obey every ingest rule, and encoding them again gives
/// points that decode to the same.
func checkPointsRecord(_ payload: [UInt8]) {
    payload.withUnsafeBytes { raw in
        guard let (record, body) = try? WALPointsRecord.decode(raw) else { return }
        let points: [Point]
        do throws(WALPoints.Invalid) {
            points = try WALPoints.decode(body, receivedAt: record.receivedAt)
        } catch {
            if let refused = error.points { require(!refused.isEmpty, "a refusal with no points") }
            return
        }
        for p in points { PointRules.check(p, forced: nil, recording: nil) }
        let again = record.encode(points)
        again.withUnsafeBytes { raw in
            guard let (r, b) = try? WALPointsRecord.decode(raw), let back = try? WALPoints.decode(b, receivedAt: r.receivedAt) else {
                require(false, "re-encoded points are refused")
                return
            }
            require(r.orgID == record.orgID && r.receivedAt == record.receivedAt, "the header changed")
            requireSamePoints(back, points, "encoding a record's points again")
        }
    }
}

func checkRecord(_ payload: [UInt8]) {
    if payload.first == WALPointsRecord.version {
        checkPointsRecord(payload)
        return
    }
    payload.withUnsafeBytes { raw in
        guard let decoded = try? WALRecord.decode(raw) else { return }
        let (record, json) = decoded
        let body = Array(json)
        let again = record.encode(json: body)
        let stable = again.withUnsafeBytes { raw -> (WALRecord, [UInt8])? in
            guard let decoded = try? WALRecord.decode(raw) else { return nil }
            return (decoded.0, Array(decoded.1))
        }
        require(stable?.0 == record && stable?.1 == body, "a decoded header does not survive encode/decode")
        // Header strings that are UTF-8 come back byte for byte.
        var off = 17
        var utf8 = true
        for _ in 0..<2 {
            let n = Int(raw.loadUnaligned(fromByteOffset: off, as: UInt16.self).littleEndian)
            if String(validating: raw[(off + 2)..<(off + 2 + n)], as: UTF8.self) == nil { utf8 = false }
            off += 2 + n
        }
        if utf8 { require(again == payload, "encode(decode(header)) changed the bytes") }
        // What replay does with the body.
        let options = record.ingestOptions
        if let batch = try? IngestDecoder.decode(json, options: options) {
            for p in batch.points {
                PointRules.check(p, forced: options.forcedSourceID, recording: options.recordingSessionID)
            }
        }
    }
}

func fuzzWALSegment(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    checkCRC(raw)
    checkScan(raw, bound: nil)
    checkScan(raw, bound: size / 2)
    checkScan(raw, bound: size + 1)  // a link naming more bytes than there are
    var payloads: [[UInt8]] = []
    _ = WriteAheadLog.scanSegment(raw) { payload, _ in payloads.append(Array(payload)) }
    for p in payloads { checkRecord(p) }
    // A bare record payload (no framing) too, so header decoding is reached without CRCs.
    checkRecord(Array(raw))
    return 0
}

runFuzzer(fuzzWALSegment)
