/// A double's decimal form, the one rule the chunk codec, rollup blocks and the JSON
/// writer share: `v` is the integer `m` over `10^e` when `Double(m) / 10^e` gives `v` back
/// bit for bit, `|m|` below 2^53 (exact in a double) and `e` at most 15 (`10^e` exact too,
/// so the division is correctly rounded and every reader computes the same double).
public enum DecimalForm {
    public static let maxExponent = 15
    public static let powersOfTen: [Double] = (0...maxExponent).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

    /// The integer of `v` at exponent `e` (0 ... ``maxExponent``), if it has one.
    @inlinable
    public static func mantissa(_ v: Double, _ e: Int) -> Int64? {
        let scaled = (v * powersOfTen[e]).rounded()
        guard Swift.abs(scaled) < 9_007_199_254_740_992 else { return nil }  // 2^53; NaN and ±inf fail too
        let m = Int64(scaled)
        return (Double(m) / powersOfTen[e]).bitPattern == v.bitPattern ? m : nil
    }
}
