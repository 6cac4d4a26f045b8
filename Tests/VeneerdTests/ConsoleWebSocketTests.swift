import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket
import Testing
@testable import VeneerdAPI

/// The console route bridges a WebSocket and the VM's ConsoleAttachment: the ring first, then
/// live output; client frames become guest input; closing detaches.
@Suite(.enabled(if: LoopbackForwarder.python != nil, "SKIPPED: python3 (the TCP-to-UNIX forwarder) is missing"))
struct ConsoleWebSocketTests {
    @Test func consoleCarriesTheRingThenEchoesInputAndDetaches() async throws {
        try await APIHarness.with { api in
            try await api.define("c")
            _ = try await api.request(.POST, "/v1/vms/c/start")
            let forwarder = try LoopbackForwarder(socketPath: api.socketPath)
            defer { forwarder.stop() }
            let logger = Logger(label: "console-test")
            let received = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(forwarder.port)/v1/vms/c/console", logger: logger) { inbound, outbound, _ in
                var text = ""
                var sent = false
                for try await message in inbound.messages(maxSize: 1 << 16) {
                    guard case .binary(let buffer) = message else { continue }
                    text += String(buffer: buffer)
                    if text.contains("boot banner\n") && !sent {
                        try await outbound.write(.binary(ByteBuffer(string: "uname\n")))
                        sent = true
                    }
                    if text.contains("uname\n") { break }
                }
                #expect(text == "boot banner\nuname\n")
                try await outbound.close(.normalClosure, reason: "done")
            }
            _ = received
            #expect(await api.manager.consoleInput == Array("uname\n".utf8))
            // Detached: the attachment is closed once the bridge ends.
            for _ in 0..<200 where await api.manager.consoleAttachments > 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(await api.manager.consoleAttachments == 0)
            #expect(await api.manager.vms["c"]?.state == .running)
        }
    }

    @Test func plainGetAndStoppedVMsAreProblems() async throws {
        try await APIHarness.with { api in
            try await api.define("c")
            let plain = try await api.request(.GET, "/v1/vms/c/console")
            #expect(plain.status == 426)
            // A VM without a running worker, or no VM at all: the WebSocket closes with 4000 + status.
            let forwarder = try LoopbackForwarder(socketPath: api.socketPath)
            defer { forwarder.stop() }
            let logger = Logger(label: "console-test")
            for (vm, code, text) in [("c", 4409, "Off"), ("zz", 4404, "no VM")] {
                let close = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(forwarder.port)/v1/vms/\(vm)/console", logger: logger) { inbound, _, _ in
                    for try await _ in inbound.messages(maxSize: 1 << 16) {}
                }
                #expect(close?.closeCode == WebSocketErrorCode(codeNumber: code), "\(vm): \(String(describing: close))")
                #expect(close?.reason?.contains(text) == true, "\(vm): \(String(describing: close))")
            }
        }
    }
}
