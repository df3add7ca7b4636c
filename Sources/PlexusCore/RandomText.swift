/// Random text from the system's cryptographically secure generator (`getrandom(2)`).
public enum RandomText {
    public static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    public static func base62(_ n: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        var out = [UInt8]()
        out.reserveCapacity(n)
        while out.count < n {
            let b = UInt8.random(in: 0...255, using: &rng)
            if b < 248 { out.append(alphabet[Int(b % 62)]) }  // reject to avoid modulo bias
        }
        return String(decoding: out, as: UTF8.self)
    }
}
