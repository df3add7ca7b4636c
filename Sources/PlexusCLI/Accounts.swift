import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Plexus
import PlexusModel

/// Signing up and in from a terminal: `POST /api/auth/cli/signup` and `/signin` answer
/// `{api_key, org_id}` (a new device key of the person's organisation).
enum Accounts {
    struct Credentials {
        var apiKey: String
        var orgID: String?
    }

    enum Mode: String { case signup, signin }

    static func request(_ mode: Mode, server: String, email: String, password: String, firstName: String? = nil)
        async throws(CLIFailure) -> Credentials
    {
        let body = LoginBody(email: email, password: password, firstName: firstName)
        var request = HTTPClientRequest(url: server + "/api/auth/cli/" + mode.rawValue)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        let bytes: ByteBuffer
        let status: UInt
        do {
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            bytes = try await response.body.collect(upTo: 1 << 20)
            status = response.status.code
        } catch {
            throw CLIFailure("cannot reach \(server): \(error)")
        }
        let data = Data(buffer: bytes)
        guard (200..<300).contains(status), let grant = try? JSONDecoder().decode(DeviceKeyGrant.self, from: data) else {
            let failure = try? JSONDecoder().decode(ErrorBody.self, from: data)
            let message = failure.map { $0.message ?? $0.error } ?? "HTTP \(status)"
            throw CLIFailure("\(mode == .signup ? "sign-up" : "sign-in") failed: \(message)")
        }
        return Credentials(apiKey: grant.apiKey, orgID: grant.orgID)
    }

    /// Asks on the terminal: sign up or sign in, email, password.
    static func interactive(server: String) async throws(CLIFailure) -> Credentials {
        print("No API key yet. Sign in to \(server) to create one for this device.")
        print("  1) Sign up (new account)")
        print("  2) Sign in")
        let choice = Terminal.prompt("Choose", default: "2") ?? "2"
        let mode: Mode = choice.hasPrefix("1") || choice.lowercased().hasPrefix("u") ? .signup : .signin
        guard let email = Terminal.prompt("Email"), !email.isEmpty else { throw CLIFailure("an email is needed") }
        let firstName = mode == .signup ? Terminal.prompt("First name") : nil
        guard let password = Terminal.secret("Password"), !password.isEmpty else { throw CLIFailure("a password is needed") }
        do {
            return try await request(mode, server: server, email: email, password: password, firstName: firstName)
        } catch  where mode == .signup && error.description.contains("already exists") {
            print("That account exists; signing in.")
            return try await request(.signin, server: server, email: email, password: password)
        }
    }

    /// Saves the key (and organisation) in the config file.
    static func save(_ c: Credentials, server: String, home: DeviceHome) {
        home.file.update { o in
            o["api_key"] = c.apiKey
            if let org = c.orgID { o["org_id"] = org }
            home.saveServer(server, in: &o)
            if o["persistent_buffer"] == nil { o["persistent_buffer"] = true }
            if o["source_id"] == nil { o["source_id"] = NSNull() }
        }
    }
}
