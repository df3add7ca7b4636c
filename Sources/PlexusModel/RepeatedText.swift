/// What an ingest body repeats from point to point (the metric names, the source, the tag
/// set) decoded and checked once per body. A later copy is recognised by its bytes: JSON
/// text that is byte for byte the same decodes to the same value, so the `String` or `[Tag]`
/// of the first copy is shared, and nothing is validated or copied again.
///
/// Entries point into the body being decoded (`base`), so a cache lives for one decode.
/// Strings with escapes are never cached (they are rare, and their bytes differ from their
/// value). A miss costs a hash of at most 16 bytes and one comparison. The table (256
/// slots, about 12 KB) is made at the first string remembered, which the decoder does from
/// a body's second point on: a one-point frame pays nothing.
struct RepeatedText {
    enum Role: UInt8 {
        case metric, source
    }

    private struct Entry {
        var start: Int
        var count: Int
        var role: Role
        var value: String
    }

    private struct TagsEntry {
        var start: Int
        var count: Int
        var value: [Tag]
    }

    private let base: UnsafePointer<UInt8>
    /// Off for a body's first point: a one-point frame has nothing to share.
    var remembering = false
    /// Direct-mapped: a slot per hash of (role, length, first and last 8 bytes).
    private var strings: [Entry?] = []
    /// The last few distinct tag objects, newest first.
    private var tags: [TagsEntry] = []

    static let slotBits = 8
    static let slots = 1 << slotBits
    static let tagObjects = 4

    init(base: UnsafePointer<UInt8>) {
        self.base = base
    }

    /// The cached string whose content is the `count` bytes at `start`, in `role`.
    func string(at start: Int, count: Int, role: Role) -> String? {
        guard !strings.isEmpty, let e = strings[Self.slot(base + start, count, role)], e.role == role, e.count == count,
            Self.equal(base + e.start, base + start, count)
        else { return nil }
        return e.value
    }

    /// Remembers `value`, decoded from the `count` bytes at `start` (no escapes) and valid
    /// in `role`.
    mutating func remember(_ value: String, at start: Int, count: Int, role: Role) {
        guard remembering else { return }
        if strings.isEmpty { strings = Array(repeating: nil, count: Self.slots) }
        strings[Self.slot(base + start, count, role)] = Entry(start: start, count: count, role: role, value: value)
    }

    /// A cached tag object whose text starts at `start`; returns it and its byte length.
    /// `available` is how many bytes the body has from `start` on.
    func tags(at start: Int, available: Int) -> ([Tag], Int)? {
        for e in tags where e.count <= available && Self.equal(base + e.start, base + start, e.count) {
            return (e.value, e.count)
        }
        return nil
    }

    /// Remembers a valid tag object: its text is the `count` bytes at `start`.
    mutating func remember(_ value: [Tag], at start: Int, count: Int) {
        guard remembering else { return }
        if tags.count == Self.tagObjects { tags.removeLast() }
        tags.insert(TagsEntry(start: start, count: count, value: value), at: 0)
    }

    private static func slot(_ p: UnsafePointer<UInt8>, _ n: Int, _ role: Role) -> Int {
        let k = min(n, 8)
        let head = word(p, k, readable: n)
        let tail = word(p + (n - k), k, readable: k)
        let h = (head &* 0x9E37_79B9_7F4A_7C15) ^ (tail &* 0xC2B2_AE3D_27D4_EB4F) ^ (UInt64(n) << 8 | UInt64(role.rawValue))
        // The top bits of a multiplicative hash: slotBits of them.
        return Int(truncatingIfNeeded: ((h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9) >> (64 - slotBits))
    }

    /// The `k` (at most 8) bytes at `p` as an integer, first byte lowest. `readable`: how
    /// many bytes from `p` on may be read (one load when that is 8 or more).
    @inline(__always)
    static func word(_ p: UnsafePointer<UInt8>, _ k: Int, readable: Int) -> UInt64 {
        if readable >= 8 {
            let w = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
            return k >= 8 ? w : w & ((1 << UInt64(k << 3)) &- 1)
        }
        var w: UInt64 = 0
        for j in stride(from: k - 1, through: 0, by: -1) { w = w << 8 | UInt64(p[j]) }
        return w
    }

    private static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        if a == b { return true }
        var j = 0
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        while j + 8 <= n {
            if ra.loadUnaligned(fromByteOffset: j, as: UInt64.self) != rb.loadUnaligned(fromByteOffset: j, as: UInt64.self) {
                return false
            }
            j += 8
        }
        while j < n {
            if a[j] != b[j] { return false }
            j += 1
        }
        return true
    }
}
