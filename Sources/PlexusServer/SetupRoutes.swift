import Foundation
import Hummingbird
import NIOCore

/// One-line device setup: `GET /setup` is a bash script that installs the `plexus` binary
/// for the device's architecture from `GET /releases/plexus-linux-<arch>` (with its
/// `.sha256`), writes the config and starts a systemd service. The release files come from
/// `--releases-dir` (filled by `scripts/package`); without it every architecture is
/// "not available" and the script explains how to build from source.
struct SetupRoutes {
    let state: ServerState

    /// `plexus-linux-x86_64`, `plexus-linux-aarch64.sha256`, …
    static func isReleaseName(_ name: String) -> Bool {
        name.range(of: #"^plexus-linux-[a-z0-9_]{1,32}(\.sha256)?$"#, options: .regularExpression) != nil
    }

    /// `authority` if it is a host name, IPv4 or bracketed IPv6 address with an optional
    /// port, and nothing else (no quotes, spaces, `$`, backticks or slashes).
    static func safeAuthority(_ authority: String) -> String? {
        authority.range(of: #"^([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$"#, options: .regularExpression) != nil
            ? authority : nil
    }

    func register(_ router: Router<PlexusRequestContext>) {
        router.get("/setup") { request, _ in
            let proto = request.head.reachedOverTLS ? "https" : "http"
            // The Host header goes into a script that is run as root: only a plain host[:port].
            let host = request.head.authority ?? "\(state.config.host):\(state.config.port)"
            guard Self.safeAuthority(host) != nil else {
                throw APIError.badRequest("the Host header must be a plain host[:port]")
            }
            let script = Self.script.replacingOccurrences(of: "__PLEXUS_SERVER__", with: "\(proto)://\(host)")
            return Response(
                status: .ok,
                headers: [.contentType: "text/x-shellscript; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: script)))
        }
        router.get("/releases/:name") { request, context in
            let name = context.parameters.get("name") ?? ""
            guard Self.isReleaseName(name), let dir = state.config.releasesDirectory else {
                throw APIError.notFound("no release \(name) on this server")
            }
            let path = dir + "/" + name
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
                throw APIError.notFound("no release \(name) on this server")
            }
            let body = try await FileIO().loadFile(path: path, context: context)
            let type = name.hasSuffix(".sha256") ? "text/plain; charset=utf-8" : "application/octet-stream"
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: body)
        }
    }

    /// The script. `__PLEXUS_SERVER__` becomes the URL the request came to.
    static let script = #"""
        #!/usr/bin/env bash
        # Plexus device setup: installs the `plexus` agent, saves its key, starts it.
        #
        #   curl -sL __PLEXUS_SERVER__/setup | bash -s -- --key plx_... [--name NAME]
        #
        # Safe to run again (it updates the binary and the key and restarts the service).
        # Environment: PLEXUS_SERVER (default __PLEXUS_SERVER__), PLEXUS_ROOT (install under
        # this directory instead of /), PLEXUS_BIN (install this binary instead of downloading),
        # PLEXUS_NO_SYSTEMD=1 (no service: print the foreground command), HOME (where
        # ~/.plexus/config.json goes).
        set -euo pipefail

        SERVER="${PLEXUS_SERVER:-__PLEXUS_SERVER__}"
        ROOT="${PLEXUS_ROOT:-}"
        KEY=""
        NAME=""

        say() { printf '%s\n' "$*"; }
        fail() { printf 'plexus setup: %s\n' "$*" >&2; exit "${2:-1}"; }

        while [ $# -gt 0 ]; do
          case "$1" in
            --key|--api-key|-k) KEY="${2:-}"; shift 2 ;;
            --name|-n) NAME="${2:-}"; shift 2 ;;
            --server) SERVER="${2:-}"; shift 2 ;;
            -h|--help) sed -n '2,10p' "$0" 2>/dev/null || true; say "usage: bash -s -- --key plx_... [--name NAME] [--server URL]"; exit 0 ;;
            *) fail "unknown option: $1 (use --key plx_... [--name NAME])" 2 ;;
          esac
        done
        [ -n "$KEY" ] || fail "an API key is required: --key plx_..." 2
        if [ -n "$NAME" ] && ! printf '%s' "$NAME" | grep -Eq '^[a-z0-9][a-z0-9._-]*$'; then
          fail "--name must match ^[a-z0-9][a-z0-9._-]*$ (got '$NAME')" 2
        fi

        ARCH="$(uname -m)"
        case "$ARCH" in
          amd64) ARCH=x86_64 ;;
          arm64) ARCH=aarch64 ;;
        esac

        SUDO=""
        if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
          command -v sudo >/dev/null 2>&1 && SUDO="sudo" || fail "run as root (or install sudo) to install into /usr/local/bin"
        fi
        BIN_DIR="$ROOT/usr/local/bin"
        BIN="$BIN_DIR/plexus"
        UNIT_DIR="$ROOT/etc/systemd/system"
        TMP="$(mktemp -d)"
        trap 'rm -rf "$TMP"' EXIT

        fetch() { # URL FILE -> 0, or 22 for an HTTP error
          if command -v curl >/dev/null 2>&1; then curl -fsSL "$1" -o "$2"
          elif command -v wget >/dev/null 2>&1; then wget -q "$1" -O "$2"
          else fail "neither curl nor wget is installed"; fi
        }
        sha256() { sha256sum "$1" | cut -d' ' -f1; }

        if [ -n "${PLEXUS_BIN:-}" ]; then
          [ -x "$PLEXUS_BIN" ] || fail "PLEXUS_BIN=$PLEXUS_BIN is not an executable file"
          cp "$PLEXUS_BIN" "$TMP/plexus"
          say "Using the local binary $PLEXUS_BIN"
        else
          RELEASE="plexus-linux-$ARCH"
          if ! fetch "$SERVER/releases/$RELEASE.sha256" "$TMP/sum" 2>/dev/null; then
            cat >&2 <<EOF
        plexus setup: this server ($SERVER) has no plexus build for linux-$ARCH.

        Build it from source on this device instead (needs the Swift 6 toolchain, swift.org):
            git clone <the plexus repository> plexus && cd plexus
            swift build -c release --product plexus
        then run this script again with the binary you built:
            curl -sL $SERVER/setup | PLEXUS_BIN=\$PWD/.build/release/plexus bash -s -- --key <your key>${NAME:+ --name $NAME}
        (or ask the server's admin to run scripts/package on a linux-$ARCH machine).
        EOF
            exit 3
          fi
          EXPECTED="$(cut -d' ' -f1 < "$TMP/sum")"
          [ -n "$EXPECTED" ] || fail "$RELEASE.sha256 is empty"
          if [ -x "$BIN" ] && [ "$(sha256 "$BIN")" = "$EXPECTED" ]; then
            cp "$BIN" "$TMP/plexus"
            say "plexus is already up to date in $BIN_DIR"
          else
            say "Downloading $RELEASE from $SERVER"
            fetch "$SERVER/releases/$RELEASE" "$TMP/plexus" || fail "download of $RELEASE failed"
            ACTUAL="$(sha256 "$TMP/plexus")"
            [ "$ACTUAL" = "$EXPECTED" ] || fail "checksum mismatch for $RELEASE: expected $EXPECTED, got $ACTUAL (nothing installed)"
            say "Checksum verified ($EXPECTED)"
          fi
        fi

        $SUDO mkdir -p "$BIN_DIR"
        $SUDO install -m 0755 "$TMP/plexus" "$BIN.new"
        $SUDO mv -f "$BIN.new" "$BIN"
        say "Installed $BIN"

        # The key, server and name go to ~/.plexus/config.json (kept: install_id and the rest).
        LOGIN=(login --key "$KEY" --server "$SERVER")
        [ -n "$NAME" ] && LOGIN+=(--name "$NAME")
        "$BIN" "${LOGIN[@]}"

        RUN_USER="$(id -un)"
        START="$BIN start"
        # systemd only when it runs (a container may have systemctl without it); under
        # PLEXUS_ROOT the systemctl on PATH is trusted. PLEXUS_NO_SYSTEMD=1: never.
        if [ -z "${PLEXUS_NO_SYSTEMD:-}" ] && command -v systemctl >/dev/null 2>&1 \
          && { [ -n "$ROOT" ] || [ -d /run/systemd/system ]; }; then
          $SUDO mkdir -p "$UNIT_DIR"
          $SUDO tee "$UNIT_DIR/plexus.service" >/dev/null <<EOF
        [Unit]
        Description=Plexus device agent
        After=network-online.target
        Wants=network-online.target

        [Service]
        User=$RUN_USER
        Environment=HOME=$HOME
        ExecStart=$START
        Restart=always
        RestartSec=10

        [Install]
        WantedBy=multi-user.target
        EOF
          $SUDO systemctl daemon-reload
          $SUDO systemctl enable plexus.service
          $SUDO systemctl restart plexus.service
          say "✓ plexus runs as the systemd service plexus.service (journalctl -u plexus -f to watch)"
        else
          say "✓ Installed. systemd is not running here; run the agent in the foreground with:"
          say "    $START"
        fi
        """#
}
