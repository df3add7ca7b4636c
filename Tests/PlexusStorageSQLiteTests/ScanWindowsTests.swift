import PlexusStorage
import Testing

@testable import PlexusStorageSQLite

/// Session export walks time windows cut from chunk metadata: memory per window stays
/// near the target even when the data is bursty.
@Suite("Session scan windows")
struct ScanWindowsTests {
    typealias Span = SQLiteStore.ChunkSpan

    /// Points of `chunks` (spread evenly over each span, as a real chunk is approximately)
    /// falling in `w`.
    func expected(_ chunks: [Span], in w: TimeRange) -> Double {
        chunks.reduce(0) { sum, c in
            let lo = max(c.min, w.start)
            let hi = min(c.max + 1, w.end)
            return hi > lo ? sum + Double(c.count) * Double(hi - lo) / Double(c.max - c.min + 1) : sum
        }
    }

    func checkCover(_ windows: [TimeRange], _ chunks: [Span]) {
        #expect(windows.first?.start == chunks.map(\.min).min())
        #expect(windows.last?.end == chunks.map(\.max).max().map { $0 + 1 })
        for (a, b) in zip(windows, windows.dropFirst()) { #expect(a.end == b.start && a.start < a.end) }
    }

    @Test("a burst among sparse data gets short windows, the quiet stretch long ones")
    func bursty() {
        let hour: Int64 = 3_600_000_000
        // 10 hours of one point a minute, and 40,000 points within one second in the middle.
        let chunks = [
            Span(min: 0, max: 10 * hour, count: 600),
            Span(min: 5 * hour, max: 5 * hour + 999_999, count: 8_192),
            Span(min: 5 * hour + 1_000_000, max: 5 * hour + 1_999_999, count: 8_192),
            Span(min: 5 * hour + 2_000_000, max: 5 * hour + 2_999_999, count: 8_192),
        ]
        let windows = SQLiteStore.scanWindows(chunks, target: 400)
        checkCover(windows, chunks)
        for w in windows { #expect(expected(chunks, in: w) <= 401, "\(w)") }
        let total = chunks.reduce(0) { $0 + $1.count }
        #expect(windows.count >= Int(total / 400) && windows.count <= Int(total / 400) + 3)
        // The evenly spaced windows the scan used before would put the whole burst in one.
        let even = (total + 399) / 400
        let step = (10 * hour + 1) / even + 1
        #expect(expected(chunks, in: TimeRange(start: 5 * hour / step * step, end: 5 * hour / step * step + step)) > 20_000)
    }

    @Test("gaps, one-microsecond chunks, overlaps and a single chunk")
    func edges() {
        let gap = [Span(min: 0, max: 99, count: 100), Span(min: 1_000_000, max: 1_000_099, count: 100)]
        let w = SQLiteStore.scanWindows(gap, target: 50)
        checkCover(w, gap)
        #expect(w.count == 4)
        // Many points at one instant stay in one window of 1 µs.
        let instant = [Span(min: 42, max: 42, count: 5_000)]
        #expect(SQLiteStore.scanWindows(instant, target: 10) == [TimeRange(start: 42, end: 43)])
        let overlap = [Span(min: 0, max: 999, count: 1_000), Span(min: 500, max: 1_499, count: 1_000)]
        let o = SQLiteStore.scanWindows(overlap, target: 250)
        checkCover(o, overlap)
        for x in o { #expect(expected(overlap, in: x) <= 251) }
        #expect(SQLiteStore.scanWindows([], target: 10).isEmpty)
        #expect(SQLiteStore.scanWindows([Span(min: 7, max: 7, count: 1)], target: 10) == [TimeRange(start: 7, end: 8)])
    }
}
