import ICProtocol

/// One host-to-guest file copy as a sequence of file-copy requests: START_FILE_COPY, one
/// WRITE_TO_FILE per 6 KiB fragment, COMPLETE_FCOPY; after a failed or unanswered write, a
/// CANCEL_FCOPY. The transport (one outstanding request, timeouts) is the IC endpoint's; this
/// value only says what to send next and what an answer means, so the whole protocol is testable
/// without a channel. The source is read one fragment at a time through `read`, never whole.
public struct FileCopyTransfer: Sendable {
    /// Reads up to `count` bytes of the source at `offset` (fewer only at its end).
    public typealias Reader = @Sendable (_ offset: UInt64, _ count: Int) throws -> [UInt8]

    public enum Outcome: Equatable, Sendable {
        /// Every byte was written and the guest closed the file.
        case copied(bytes: UInt64)
        case failed(String)
    }

    public let start: StartFileCopy
    let read: Reader
    /// What the request in flight is (nil before the first and after the end).
    public private(set) var inFlight: FileCopyOperation?
    /// Bytes the guest confirmed.
    public private(set) var written: UInt64 = 0
    /// Set once the transfer ended.
    public private(set) var outcome: Outcome?
    /// Why the copy failed before a CANCEL was sent (reported when the CANCEL is answered).
    private var failure: String?

    public init(start: StartFileCopy, read: @escaping Reader) {
        self.start = start
        self.read = read
    }

    /// The first request.
    public mutating func begin() -> FileCopyMessage {
        inFlight = .start
        return .start(start)
    }

    /// The guest answered the request in flight with `status`: the next request, or nil when the
    /// transfer ended (`outcome` says how).
    public mutating func answered(status: UInt32) -> FileCopyMessage? {
        guard let operation = inFlight else { return nil }
        switch operation {
        case .start:
            guard status == ICStatus.ok else { return end(.failed("the guest refused to create the file (\(Self.describe(status)))")) }
            return nextWrite()
        case .write:
            guard status == ICStatus.ok else { return cancel("the guest failed to write at offset \(written) (\(Self.describe(status)))") }
            written += UInt64(min(UInt64(FileCopyMessage.fragmentSize), start.fileSize - written))
            return nextWrite()
        case .complete:
            return end(status == ICStatus.ok ? .copied(bytes: written)
                                             : .failed("the guest failed to close the file (\(Self.describe(status)))"))
        default:
            // Linux's daemon answers CANCEL_FCOPY with HV_E_FAIL (it has no case for it): any answer ends it.
            return end(.failed(failure ?? "cancelled"))
        }
    }

    /// The request in flight went unanswered (or was answered with garbage): a copy in progress
    /// is cancelled, anything else ends.
    public mutating func unanswered(_ why: String) -> FileCopyMessage? {
        switch inFlight {
        case .write?, .complete?: return cancel("\(inFlight?.description ?? ""): \(why)")
        case nil: return nil
        default: return end(.failed(failure ?? "\(inFlight?.description ?? ""): \(why)"))
        }
    }

    /// Stops the copy from the host's side (a CANCEL after START, nothing before).
    public mutating func abandon(_ why: String) -> FileCopyMessage? {
        guard let operation = inFlight, operation != .cancel else { return nil }
        return operation == .start ? end(.failed(why)) : cancel(why)
    }

    private mutating func nextWrite() -> FileCopyMessage? {
        guard written < start.fileSize else {
            inFlight = .complete
            return .complete
        }
        let count = Int(min(UInt64(FileCopyMessage.fragmentSize), start.fileSize - written))
        let data: [UInt8]
        do { data = try read(written, count) } catch {
            return cancel("cannot read the host file at offset \(written): \(error)")
        }
        guard data.count == count else {
            return cancel("the host file ended at \(written + UInt64(data.count)) bytes, before its size \(start.fileSize)")
        }
        inFlight = .write
        return .write(offset: written, data: data)
    }

    private mutating func cancel(_ why: String) -> FileCopyMessage? {
        failure = why
        inFlight = .cancel
        return .cancel
    }

    private mutating func end(_ result: Outcome) -> FileCopyMessage? {
        inFlight = nil
        outcome = result
        return nil
    }

    static func describe(_ status: UInt32) -> String {
        switch status {
        case ICStatus.alreadyExists: "the file exists and overwrite was not asked for"
        case ICStatus.diskFull: "the guest's disk is full"
        default: "status 0x\(String(status, radix: 16))"
        }
    }
}
