import ICProtocol
import VeneerIC
import VeneerPluginKit

/// The file-copy integration service ("guest services"), a VSP. Linux (6.10 and later) binds the
/// offer to `uio_hv_generic` and runs the protocol in `hv_fcopy_uio_daemon`, which finds the
/// channel under a hard-coded instance GUID, so this plugin offers exactly that one. It negotiates
/// framework 3.0 and file copy 1.1 (all the daemon accepts), then copies host files when asked:
/// START_FILE_COPY, 6 KiB WRITE_TO_FILE fragments, COMPLETE_FCOPY; a failed or unanswered write is
/// followed by CANCEL_FCOPY. The guest's errors (the file exists, its disk is full) are reported.
///
/// The plugin starts no copy by itself: management requests (ABI 1.8, `FileCopyControl.swift`)
/// do, through `copy(hostFile:toGuestPath:...)` (`veneer ctl copy-file`).
final class FileCopy: ICDevice {
    /// The instance GUID Linux's daemon looks for (tools/hv/hv_fcopy_uio_daemon.c).
    static let instance = "eb765408-105f-49b6-b4aa-c123b64d17d4"
    static let profile = ICServiceProfile(name: "file copy", messageType: .fileCopy, messageVersions: [ICVersion(1, 1)],
                                          frameworkVersions: [ICVersion(3, 0)])

    enum Token {
        static let timeout: UInt64 = 2
        static let drain: UInt64 = 3
    }

    enum CopyError: Error, Equatable, CustomStringConvertible {
        case notReady(String)
        case busy
        case badPath(String)
        case hostFile(String)
        case notSent(String)
        var description: String {
            switch self {
            case .notReady(let phase): "the file-copy channel is not ready (\(phase))"
            case .busy: "a copy is in progress"
            case .badPath(let why): why
            case .hostFile(let why): why
            case .notSent(let why): "the copy could not start: \(why)"
            }
        }
    }

    let host: HostServices
    let timeout: UInt64
    var endpoint: ICEndpoint
    var transfer: FileCopyTransfer?
    /// Told how the copy in progress ended.
    var completion: ((FileCopyTransfer.Outcome) -> Void)?
    /// How the last copy ended (nil: none yet), for the management service.
    var lastOutcome: FileCopyTransfer.Outcome?
    let metrics: FileCopyMetrics

    init(host: HostServices, timeoutMilliseconds: Int64) throws(PluginError) {
        guard (100...600_000).contains(timeoutMilliseconds) else { throw PluginError("timeout_ms \(timeoutMilliseconds) is outside 100-600000") }
        self.host = host
        timeout = UInt64(timeoutMilliseconds) * 1_000_000
        let channel = try ICEndpoint.offer(host: host, interfaceType: ICInterface.fileCopy, instance: Self.instance)
        endpoint = ICEndpoint(host: host, channel: channel, profile: Self.profile,
                              tokens: ICEndpoint.Tokens(timeout: Token.timeout, drain: Token.drain))
        metrics = try FileCopyMetrics(host: host)
    }

    // MARK: the internal API

    /// Copies `hostFile` to `guestPath` (absolute, `/dir/name`). Fails at once when the channel is
    /// not ready, another copy runs, the path does not fit, or the host file cannot be read; else
    /// `completion` is told the outcome.
    func copy(hostFile: String, toGuestPath guestPath: String, overwrite: Bool = false, createPath: Bool = false,
              completion: ((FileCopyTransfer.Outcome) -> Void)? = nil) -> Result<Void, CopyError> {
        guard endpoint.isReady else { return .failure(.notReady("\(endpoint.phase)")) }
        guard transfer == nil, endpoint.outstanding == nil else { return .failure(.busy) }
        guard guestPath.hasPrefix("/"), let slash = guestPath.lastIndex(of: "/"), guestPath.index(after: slash) != guestPath.endIndex else {
            return .failure(.badPath("guest path '\(guestPath)' is not an absolute path to a file"))
        }
        let directory = String(guestPath[..<slash]), name = String(guestPath[guestPath.index(after: slash)...])
        let file: HostFile
        do { file = try HostFile(path: hostFile) } catch { return .failure(.hostFile(error.description)) }
        var flags: FileCopyFlags = []
        if overwrite { flags.insert(.overwrite) }
        if createPath { flags.insert(.createPath) }
        guard let start = StartFileCopy(fileName: Array(name.utf16), pathName: Array((directory.isEmpty ? "/" : directory).utf16),
                                        flags: flags, fileSize: file.size) else {
            return .failure(.badPath("guest path '\(guestPath)': a name or directory is longer than 259 UTF-16 code units"))
        }
        var transfer = FileCopyTransfer(start: start) { offset, count in try file.read(at: offset, count: count) }
        let first = transfer.begin()
        switch endpoint.send(body: first.encode(), timeout: timeout) {
        case .success: break
        case .failure(let why): return .failure(.notSent("\(why)"))
        }
        self.transfer = transfer
        self.completion = completion
        host.log(.info, "file copy: copying \(hostFile) (\(file.size) bytes) to \(guestPath) in the guest")
        return .success(())
    }

    /// Stops the copy in progress (CANCEL_FCOPY once started).
    func cancel() {
        guard var transfer else { return }
        let next = transfer.abandon("cancelled by the host")
        self.transfer = transfer
        proceed(with: next)
    }

    // MARK: lifecycle

    func reset() {
        endpoint.reset()
        let callback = completion
        transfer = nil
        completion = nil
        lastOutcome = nil
        callback?(.failed("the VM was reset during the copy"))
    }

    func start() { endpoint.start() }
    func stop() { endpoint.stop() }
    func io(_ access: IOAccess, data: inout UInt64) {}

    // MARK: events

    func handle(_ events: [ICEvent]) {
        for event in events {
            guard var transfer else { continue }
            let next: FileCopyMessage?
            switch event {
            case .reply(_, let frame): next = transfer.answered(status: frame.header.status)
            case .rejected(_, let reason): next = transfer.unanswered("unusable answer: \(reason)")
            case .timedOut: next = transfer.unanswered("no answer within \(timeout / 1_000_000) ms")
            case .closed:
                finish(.failed("the guest closed the channel"))
                continue
            case .negotiated, .negotiationFailed: continue
            }
            self.transfer = transfer
            proceed(with: next)
        }
    }

    /// Sends `next`, or reports the outcome when the transfer ended.
    private func proceed(with next: FileCopyMessage?) {
        guard var transfer else { return }
        if let next {
            guard endpoint.isReady else { return finish(.failed("the guest closed the channel")) }
            if case .failure(let why) = endpoint.send(body: next.encode(), timeout: timeout) {
                _ = transfer.abandon("")
                self.transfer = transfer
                return finish(.failed("\(next.operation) not sent: \(why)"))
            }
            return
        }
        finish(transfer.outcome ?? .failed("ended"))
    }

    private func finish(_ outcome: FileCopyTransfer.Outcome) {
        let name = transfer.map { String(decoding: $0.start.pathName, as: UTF16.self) + "/" + String(decoding: $0.start.fileName, as: UTF16.self) } ?? ""
        transfer = nil
        lastOutcome = outcome
        switch outcome {
        case .copied(let bytes):
            metrics.copies.add()
            metrics.bytes.add(bytes)
            host.log(.info, "file copy: copied \(bytes) bytes to \(name) in the guest")
        case .failed(let why):
            metrics.failures.add()
            host.log(.warning, "file copy: copying to \(name) failed: \(why)")
        }
        let callback = completion
        completion = nil
        callback?(outcome)
    }

    // MARK: state

    /// A copy in progress does not survive a save (its host file and caller are not state): the
    /// endpoint is saved, and a loaded plugin has no copy running.
    func save(to state: inout StateWriter) { endpoint.save(to: &state) }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("file-copy state version \(version) is unknown (this plugin writes 1)") }
        var endpoint = self.endpoint
        try endpoint.load(from: &state)
        try state.finish()
        self.endpoint = endpoint
        let callback = completion
        transfer = nil
        completion = nil
        callback?(.failed("the device's state was replaced during the copy"))
        endpoint.resumeTimers()
    }
}
