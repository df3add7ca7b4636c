extension String {
    /// `bytes` as a string when they are valid UTF-8, else nil: what
    /// `String(validating:as:)` returns, without its generic path (about 950 instructions
    /// a call under callgrind, seven calls a point in the JSON decoder). ASCII, what names
    /// and tags nearly always are, is checked a byte at a time and copied as it is; other
    /// text goes through the standard library's repairing decoder, and any repair (an
    /// invalid sequence became U+FFFD) means the bytes were not valid.
    package init?(utf8 bytes: UnsafeRawBufferPointer) {
        let units = bytes.assumingMemoryBound(to: UInt8.self)
        var ascii = true
        for b in units where b >= 0x80 {
            ascii = false
            break
        }
        let s = String(decoding: units, as: UTF8.self)
        guard ascii || s.utf8.elementsEqual(units) else { return nil }
        self = s
    }
}
