import ArgumentParser
import Foundation
import NIOCore
import VeneerManagement

struct CtlEvents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Stream every VM's state changes until interrupted (--json: the API's ndjson lines).")
    @OptionGroup var options: CtlOptions

    /// Longest event line accepted (an event is a name, a state and a one-line reason).
    static let maxLineBytes = 64 * 1024

    func run() throws {
        let options = options
        try runToCompletion {
            try await VeneerdClient.with(socket: options.socketPath) { client in
                let response = try await client.stream("/v1/events")
                var pending: [UInt8] = []
                do {
                    for try await chunk in response.body {
                        pending += chunk.readableBytesView
                        while let newline = pending.firstIndex(of: 0x0A) {
                            let line = Array(pending[..<newline])
                            pending.removeSubrange(...newline)
                            try Self.show(line, json: options.json)
                        }
                        guard pending.count <= Self.maxLineBytes else {
                            throw CtlFailure(.failed, "veneerd sent an event line longer than \(Self.maxLineBytes) bytes")
                        }
                    }
                } catch let failure as CtlFailure {
                    throw failure
                } catch {
                    throw CtlFailure(.failed, "the event stream from veneerd broke: \(error)")
                }
                // veneerd ends the stream only when it shuts down.
                throw CtlFailure(.failed, "veneerd closed the event stream (it is shutting down)")
            }
        }
    }

    static func show(_ line: [UInt8], json: Bool) throws(CtlFailure) {
        guard !line.isEmpty else { return }
        if json { return emit(String(decoding: line, as: UTF8.self) + "\n") }
        do {
            emit(CtlFormat.event(try JSONDecoder().decode(VMEvent.self, from: Data(line))))
        } catch {
            throw CtlFailure(.failed, "veneerd sent an event that is not a VMEvent: \(error)")
        }
    }
}

struct CtlMetrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Print veneerd's metrics (Prometheus text; --json has no other form).")
    @OptionGroup var options: CtlOptions

    func run() throws {
        let options = options
        try runToCompletion {
            try await VeneerdClient.with(socket: options.socketPath) { client in
                emit(try await client.send(.GET, "/v1/metrics").text)
            }
        }
    }
}
