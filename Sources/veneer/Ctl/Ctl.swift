import ArgumentParser
import Foundation
import VeneerHost

/// `veneer ctl`: drives veneerd (the management service) through its HTTP API on a UNIX socket.
struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage VMs through veneerd's API (see veneerd --help).",
        discussion: """
            Exit status: 0 done, 1 veneerd failed, 3 not found, 4 conflict (exists, or not allowed \
            in the VM's state), 64 usage, 65 request refused (bad name, field or config), 66 a local \
            file cannot be read, 69 cannot connect to veneerd.
            """,
        subcommands: [
            CtlDefine.self, CtlList.self, CtlInfo.self, CtlStart.self, CtlStop.self, CtlShutdown.self,
            CtlReset.self, CtlPause.self, CtlResume.self, CtlDelete.self, CtlConsole.self, CtlEvents.self,
            CtlMetrics.self, CtlKVP.self, CtlCopyFile.self, CtlRequest.self,
        ]
    )
}

/// Where veneerd listens and how answers are printed; every ctl subcommand takes these.
struct CtlOptions: ParsableArguments {
    static let defaultSocket = "/var/lib/veneer/veneerd.sock"

    @Option(name: .customLong("socket"), help: "veneerd's API socket (default: $VENEER_SOCKET, else \(CtlOptions.defaultSocket)).")
    var socket: String?

    @Flag(name: .customLong("json"), help: "Print the API's JSON instead of text.")
    var json = false

    var socketPath: String {
        if let socket { return socket }
        if let environment = ProcessInfo.processInfo.environment["VENEER_SOCKET"], !environment.isEmpty { return environment }
        return Self.defaultSocket
    }
}

/// Writes text to stdout unbuffered (the output of one command, or a line of a stream).
func emit(_ text: String) {
    writeAll(1, text)
}

/// `--json`: the API's body as it came, newline-terminated.
func emitJSON(_ reply: VeneerdClient.Reply) {
    guard !reply.body.isEmpty else { return }
    emit(reply.text.hasSuffix("\n") ? reply.text : reply.text + "\n")
}
