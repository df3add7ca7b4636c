import Crypto
import Foundation
public import HTTPTypes

/// The dashboard's session cookie: `plexus_session=<43 random base64url characters>`,
/// HttpOnly, SameSite=Lax, `Secure` behind TLS. The store keeps only the token's SHA-256.
public enum LoginCookie {
    public static let name = "plexus_session"
    /// Thirty days.
    public static let lifetime: Int64 = 30 * 86_400 * 1_000_000

    /// A new random token (256 bits).
    static func newToken() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return base64url(bytes)
    }

    public static func hash(_ token: String) -> [UInt8] { Array(SHA256.hash(data: Array(token.utf8))) }

    /// The session token in a request's `Cookie` header(s), if any.
    public static func token(in headers: HTTPFields) -> String? {
        for header in headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, kv[0].trimmingCharacters(in: " ") == name else { continue }
                let value = String(kv[1].trimmingCharacters(in: " "))
                if !value.isEmpty { return value }
            }
        }
        return nil
    }

    /// `Set-Cookie` for a new session, or (token nil) one that clears it.
    static func setCookie(_ token: String?, secure: Bool) -> String {
        var c = "\(name)=\(token ?? ""); Path=/; HttpOnly; SameSite=Lax"
        c += token == nil ? "; Max-Age=0" : "; Max-Age=\(lifetime / 1_000_000)"
        if secure { c += "; Secure" }
        return c
    }

    /// Whether the request reached us over TLS (directly or through a proxy that says so).
    static func isSecure(_ head: HTTPRequest, forced: Bool) -> Bool {
        forced || head.reachedOverTLS
    }

    /// Base64url without padding (RFC 4648 §5).
    static func base64url(_ bytes: [UInt8]) -> String {
        String(
            Data(bytes).base64EncodedString().compactMap { c -> Character? in
                switch c {
                case "+": "-"
                case "/": "_"
                case "=": nil
                default: c
                }
            })
    }
}

extension Substring {
    func trimmingCharacters(in c: Character) -> Substring {
        var s = self
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return s
    }
}
