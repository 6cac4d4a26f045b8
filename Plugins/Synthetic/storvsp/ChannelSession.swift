import SCSIProtocol
import StorVSPProtocol
import VeneerDisk
#if canImport(Glibc)
import Glibc
#endif

/// One VMBus channel of a controller (the primary or a sub-channel): its initialization state,
/// its copy of the LUN table, its I/O engines and the commands in flight on it. Everything here
/// is touched only under its slot's lock in `ChannelTable` (`@unchecked Sendable` rests on that),
/// never by another channel; what channels share lives in `ControllerState`.
final class ChannelSession: @unchecked Sendable {
    enum Phase: UInt8, Sendable {
        /// Opened; waiting for BEGIN_INITIALIZATION (primary) or for the primary to be ready.
        case awaitingBegin = 0
        case negotiating
        case versionAgreed
        case propertiesSent
        case ready
    }

    /// What the session asks of the device around it.
    struct Hooks {
        /// Offers `count` sub-channels of this primary; false when the host refused.
        var offerSubChannels: (Int) -> Bool
        /// Watches an engine's eventfd; `key` comes back in `completionsReady`.
        var watch: (Int32, Int) -> Bool
        var unwatch: (Int32) -> Void
        var log: (String) -> Void
    }

    struct Counters: Sendable, Equatable {
        /// Packets dropped without a reply: wrong VMBus type, shorter than the storvsp header.
        var dropped: UInt64 = 0
        /// Packets answered with an error status: out of order, unknown, malformed.
        var refused: UInt64 = 0
        /// Data buffers naming memory outside guest RAM or shorter than the transfer.
        var badBuffers: UInt64 = 0
        var commands: UInt64 = 0
    }

    private struct InFlight {
        var transactionID: UInt64
        var request: VMSCSIRequest
        var replySize: Int
        var unit: LogicalUnit
        var plan: DiskPlan
        var remaining: Int
        var failure: DiskError?
    }

    let channel: UInt32
    let isPrimary: Bool
    let controller: ControllerState
    let transport: any ChannelTransport
    private let hooks: Hooks

    private(set) var phase: Phase = .awaitingBegin
    private(set) var version: StorageProtocolVersion?
    private(set) var counters = Counters()
    private(set) var subChannelsOffered = 0
    private(set) var broken = false
    private var luns: LUNMap
    private var lunGeneration: UInt64
    private var queues: [Int: any LUNQueue] = [:]
    private var inFlight: [UInt64: InFlight] = [:]
    private var nextCommand: UInt64 = 1
    /// Replies the guest's ring had no room for, oldest first.
    private var waiting: [ReplyPacket] = []

    init(channel: UInt32, isPrimary: Bool, controller: ControllerState, transport: any ChannelTransport, hooks: Hooks) {
        self.channel = channel
        self.isPrimary = isPrimary
        self.controller = controller
        self.transport = transport
        self.hooks = hooks
        (luns, lunGeneration) = controller.snapshot()
    }

    var commandsInFlight: Int { inFlight.count }
    var repliesWaiting: Int { waiting.count }

    // MARK: Events

    /// The guest signalled the channel (new packets, or room in its ring).
    func signalled() { pump() }

    /// An engine's eventfd became readable.
    func completionsReady(key: Int) {
        guard let queue = queues[key] else { return }
        var replies: [ReplyPacket] = []
        complete(queue.reap(), into: &replies)
        send(replies)
        pump()
    }

    /// The channel closed: waits for in-flight I/O (its buffers are guest RAM, which stays
    /// mapped) and forgets everything.
    func close() {
        for (_, queue) in queues {
            if queue.eventFD >= 0 { hooks.unwatch(queue.eventFD) }
            queue.close()
        }
        queues = [:]
        inFlight = [:]
        waiting = []
        if isPrimary { controller.setReady(nil) }
        phase = .awaitingBegin
        version = nil
    }

    /// Sends an unsolicited ENUMERATE_BUS (transaction id 0) so the guest rescans after a LUN
    /// was added or removed. Only a ready primary does.
    func announceBusChange() {
        // Hosts send it from Windows 7's protocol on (older guests do not expect it).
        guard isPrimary, phase == .ready, !broken, let version, version >= .win7 else { return }
        let packet = VStorPacket(operation: .enumerateBus).encode()
        send([ReplyPacket(type: IncomingPacket.inBand, transactionID: 0, payload: packet)])
    }

    /// Puts back what `StorVSPController.save` kept.
    func restore(phase: Phase, version: StorageProtocolVersion?, subChannelsOffered: Int, waiting: [ReplyPacket]) {
        self.phase = phase
        self.version = version
        self.subChannelsOffered = subChannelsOffered
        self.waiting = waiting
        if isPrimary && phase == .ready { controller.setReady(version) }
    }

    /// For a save: waits until every command in flight completed, and returns the replies not yet
    /// written (those completions included), so that nothing the guest asked for is lost.
    func quiesce() -> [ReplyPacket] {
        var replies: [ReplyPacket] = []
        while !inFlight.isEmpty {
            var progressed = false
            for (_, queue) in queues where queue.outstanding > 0 {
                if queue.eventFD >= 0 {
                    var descriptor = pollfd(fd: queue.eventFD, events: Int16(POLLIN), revents: 0)
                    _ = poll(&descriptor, 1, 1000)
                }
                let completions = queue.reap()
                progressed = progressed || !completions.isEmpty
                complete(completions, into: &replies)
            }
            if !progressed && queues.values.allSatisfy({ $0.outstanding == 0 }) {
                // Nothing can complete any more: the engines lost these commands.
                hooks.log("channel \(channel): \(inFlight.count) commands lost by the I/O engine")
                inFlight = [:]
            }
        }
        waiting += replies
        return waiting
    }

    // MARK: The ring

    private func pump() {
        guard !broken else { return }
        while true {
            flushWaiting()
            guard waiting.isEmpty else { return }
            refreshLUNs()
            var replies: [ReplyPacket] = []
            var batches: [Int: [LUNRequest]] = [:]
            var read = 0
            while inFlight.count + batches.values.reduce(0, { $0 + $1.count }) < controller.limits.queueDepth {
                let packet: IncomingPacket?
                do { packet = try transport.readPacket() } catch {
                    hooks.log("channel \(channel): \(error); waiting for the guest to reopen it")
                    broken = true
                    break
                }
                guard let packet else { break }
                read += 1
                handle(packet, replies: &replies, batches: &batches)
            }
            for (key, requests) in batches.sorted(by: { $0.key < $1.key }) {
                guard let queue = queues[key] else { continue }
                complete(queue.submit(requests), into: &replies)
            }
            send(replies)
            if read == 0 || broken { return }
        }
    }

    private func flushWaiting() {
        guard !waiting.isEmpty else { return }
        let pending = waiting
        waiting = []
        send(pending)
    }

    /// Writes replies in one batch (one signal); what does not fit waits for `signalled`.
    private func send(_ replies: [ReplyPacket]) {
        guard !replies.isEmpty else { return }
        if !waiting.isEmpty {
            waiting += replies
            return
        }
        switch transport.write(replies) {
        case .written(let count, _):
            if count < replies.count { waiting = Array(replies[count...]) }
        case .failed(let why):
            hooks.log("channel \(channel): cannot write replies: \(why)")
        }
    }

    private func refreshLUNs() {
        guard controller.generation != lunGeneration else { return }
        (luns, lunGeneration) = controller.snapshot()
    }

    // MARK: Packets

    private func handle(_ packet: IncomingPacket, replies: inout [ReplyPacket], batches: inout [Int: [LUNRequest]]) {
        guard packet.type == IncomingPacket.inBand || packet.type == IncomingPacket.gpaDirect,
              let vstor = try? VStorPacket.decode(packet.payload) else {
            counters.dropped += 1
            return
        }
        // Replies are as long as the request (at most a full packet): Windows checks the size.
        let replySize = min(max(packet.payload.count, VStorPacket.headerSize), VStorPacket.size)
        func answer(_ status: NTStatus, union: [UInt8] = vstor.union) {
            if status != .success { counters.refused += 1 }
            let reply = VStorPacket(operation: .completeIO, status: status, union: union)
            replies.append(ReplyPacket(type: IncomingPacket.completion, transactionID: packet.transactionID,
                                          payload: reply.encode(size: replySize)))
        }
        guard let operation = vstor.knownOperation else { return answer(.invalidDeviceRequest) }
        if packet.type == IncomingPacket.gpaDirect && operation != .executeSRB { return answer(.invalidParameter) }

        switch operation {
        case .beginInitialization:
            guard isPrimary, phase == .awaitingBegin else { return answer(.invalidDeviceState) }
            phase = .negotiating
            answer(.success)
        case .queryProtocolVersion:
            guard isPrimary, phase == .negotiating || phase == .versionAgreed else { return answer(.invalidDeviceState) }
            let query = ProtocolVersionQuery(union: vstor.union)
            guard StorageProtocolVersion.supported.contains(query.version) else { return answer(.revisionMismatch) }
            version = query.version
            phase = .versionAgreed
            answer(.success)
        case .queryProperties:
            guard isPrimary, phase == .versionAgreed || phase == .propertiesSent, let version else {
                return answer(.invalidDeviceState)
            }
            phase = .propertiesSent
            let multi = version.supportsMultiChannel && controller.maxSubChannels > 0
            let properties = ChannelProperties(maxSubChannels: multi ? UInt16(controller.maxSubChannels) : 0,
                                               flags: multi ? ChannelProperties.multiChannelFlag : 0,
                                               maxTransferBytes: controller.limits.maxTransferBytes)
            answer(.success, union: properties.encode())
        case .endInitialization:
            guard isPrimary, phase == .versionAgreed || phase == .propertiesSent, let version else {
                return answer(.invalidDeviceState)
            }
            phase = .ready
            controller.setReady(version)
            answer(.success)
        case .createSubChannels:
            guard isPrimary, phase == .propertiesSent || phase == .ready, version?.supportsMultiChannel == true else {
                return answer(.invalidDeviceState)
            }
            let count = Int(SubChannelRequest(union: vstor.union).count)
            guard count > 0, subChannelsOffered + count <= controller.maxSubChannels else { return answer(.invalidParameter) }
            guard hooks.offerSubChannels(count) else { return answer(.ioDeviceError) }
            subChannelsOffered += count
            answer(.success)
        case .resetLUN, .resetAdapter, .resetBus:
            // Commands complete as their I/O does; there is nothing to abort early.
            guard effectiveVersion != nil else { return answer(.invalidDeviceState) }
            answer(.success)
        case .executeSRB:
            guard let version = effectiveVersion else { return answer(.invalidDeviceState) }
            execute(packet, vstor: vstor, version: version, replySize: replySize, replies: &replies, batches: &batches)
        case .completeIO, .removeDevice, .enumerateBus, .fibreChannelHBAData, .eventNotification:
            answer(.invalidDeviceRequest)
        }
    }

    /// The version I/O runs at: the primary's own once ready; a sub-channel's once the primary is.
    private var effectiveVersion: StorageProtocolVersion? {
        if isPrimary { return phase == .ready ? version : nil }
        return controller.readyProtocol
    }

    // MARK: SCSI requests

    private func execute(_ packet: IncomingPacket, vstor: VStorPacket, version: StorageProtocolVersion, replySize: Int,
                         replies: inout [ReplyPacket], batches: inout [Int: [LUNRequest]]) {
        counters.commands += 1
        let request = VMSCSIRequest(union: vstor.union, size: version.requestSize)
        func finish(_ reply: SCSIReply) {
            if reply.srbStatus == .invalidRequest { counters.refused += 1 }
            replies.append(srbReply(transactionID: packet.transactionID, request: request, reply: reply, version: version,
                                    replySize: replySize))
        }
        guard packet.payload.count >= VStorPacket.headerSize + version.requestSize,
              let cdb = request.cdb, let direction = request.direction else { return finish(.srb(.invalidRequest)) }

        // The data buffer: GPA-direct packets only, at most the advertised transfer size, and
        // every byte of it inside guest RAM.
        let length = Int(request.dataTransferLength)
        var buffer = GuestBuffer.empty
        if length > 0 {
            guard packet.type == IncomingPacket.gpaDirect, direction != .none,
                  length <= Int(controller.limits.maxTransferBytes) else { return finish(.srb(.invalidRequest)) }
            var total: UInt64 = 0
            for segment in packet.segments {
                let (sum, overflow) = total.addingReportingOverflow(segment.length)
                guard !overflow else { return finish(.srb(.invalidRequest)) }
                total = sum
            }
            guard total >= UInt64(length),
                  let mapped = GuestBuffer.map(segments: packet.segments.map { ($0.gpa, $0.length) }, length: length,
                                               mapper: { transport.mapGuest($0, length: $1, writable: direction == .read) })
            else {
                counters.badBuffers += 1
                return finish(.srb(.invalidRequest))
            }
            buffer = mapped
        }

        let command: SCSICommand
        do { command = try SCSICommand.decode(cdb) } catch { return finish(.check(error.sense)) }
        let dataIn = direction == .read ? length : 0, dataOut = direction == .write ? length : 0
        let bufferLength: Int
        var parameters: [UInt8] = []
        switch command {
        case .write:
            bufferLength = dataOut
        case .unmap, .writeSame, .modeSelect:
            bufferLength = dataOut
            parameters = buffer.copyOut(min(dataOut, 1 << 16))
        default:
            bufferLength = dataIn
        }

        let (unit, plan) = luns.plan(command, path: request.pathID, target: request.targetID, lun: request.lun,
                                     bufferLength: bufferLength, parameterData: parameters)
        switch plan {
        case .reply(var reply):
            if !reply.data.isEmpty { reply.transferred = buffer.copyIn(reply.data) }
            finish(reply)
        case .disk(let diskPlan):
            guard let unit, let image = unit.image, let key = queueKey(for: unit, image: image) else {
                return finish(.check(.hardwareError, .internalTargetFailure))
            }
            let number = nextCommand
            nextCommand &+= 1
            inFlight[number] = InFlight(transactionID: packet.transactionID, request: request, replySize: replySize, unit: unit,
                                        plan: diskPlan, remaining: diskPlan.work.count, failure: nil)
            for (index, work) in diskPlan.work.enumerated() {
                let token = number << 16 | UInt64(index)
                let operation: LUNRequest.Operation
                switch work.kind {
                case .read: operation = .read(offset: work.offset, buffers: buffer.slice(offset: work.bufferOffset, length: Int(work.length)))
                case .write(let fua):
                    operation = .write(offset: work.offset, buffers: buffer.slice(offset: work.bufferOffset, length: Int(work.length)), fua: fua)
                case .flush: operation = .flush
                case .discard: operation = .discard(offset: work.offset, length: work.length)
                case .writeZeroes: operation = .writeZeroes(offset: work.offset, length: work.length)
                }
                batches[key, default: []].append(LUNRequest(token: token, operation: operation))
            }
        }
    }

    /// The engine for a LUN on this channel, made on first use.
    private func queueKey(for unit: LogicalUnit, image: any DiskImage) -> Int? {
        let key = LUNMap.key(target: unit.target, lun: unit.lun)
        if queues[key] != nil { return key }
        do {
            let queue = try controller.queueFactory.makeQueue(for: unit, image: image)
            if queue.eventFD >= 0 && !hooks.watch(queue.eventFD, key) {
                queue.close()
                hooks.log("channel \(channel): cannot watch the I/O engine of LUN \(unit.lun)")
                return nil
            }
            queues[key] = queue
            return key
        } catch {
            hooks.log("channel \(channel): LUN \(unit.lun): \(error)")
            return nil
        }
    }

    private func complete(_ completions: [LUNCompletion], into replies: inout [ReplyPacket]) {
        for completion in completions {
            let number = completion.token >> 16, index = Int(completion.token & 0xFFFF)
            guard var command = inFlight[number], index < command.plan.work.count else { continue }
            let work = command.plan.work[index]
            switch completion.result {
            case .success(let moved):
                let expected: UInt64
                switch work.kind {
                case .read, .write: expected = work.length
                default: expected = 0
                }
                if moved < expected && command.failure == nil {
                    command.failure = DiskError(.io(errno: 5), path: command.unit.image?.path ?? "",
                                                "short transfer: \(moved) of \(expected) bytes at \(work.offset)")
                }
            case .failure(let error):
                if command.failure == nil { command.failure = error }
            }
            command.remaining -= 1
            if command.remaining > 0 {
                inFlight[number] = command
                continue
            }
            inFlight[number] = nil
            if let failure = command.failure {
                hooks.log("channel \(channel): LUN \(command.unit.lun): \(failure)")
            }
            let reply = command.unit.finish(command.plan, failure: command.failure)
            let version = effectiveVersion ?? version ?? .win10
            replies.append(srbReply(transactionID: command.transactionID, request: command.request, reply: reply,
                                    version: version, replySize: command.replySize))
        }
    }

    /// The completion of an EXECUTE_SRB: the guest's request block with the statuses, the
    /// transferred length and the sense data filled in.
    private func srbReply(transactionID: UInt64, request: VMSCSIRequest, reply: SCSIReply, version: StorageProtocolVersion,
                          replySize: Int) -> ReplyPacket {
        var answer = request
        let senseRoom = min(version.senseBufferSize, Int(request.senseInfoLength), SenseData.size)
        let sense = reply.sense.map { Array($0.encode().prefix(senseRoom)) } ?? []
        let autosense = !sense.isEmpty
        answer.srbStatus = reply.srbStatus.wireValue(autosense: autosense)
        answer.scsiStatus = reply.scsiStatus.rawValue
        answer.dataTransferLength = UInt32(clamping: reply.transferred)
        answer.senseInfoLength = UInt8(sense.count)
        answer.cdbOrSense = sense + [UInt8](repeating: 0, count: VMSCSIRequest.longSenseSize - sense.count)
        let packet = VStorPacket(operation: .completeIO, status: NTStatus(srb: reply.srbStatus),
                                 union: answer.encode(size: version.requestSize))
        return ReplyPacket(type: IncomingPacket.completion, transactionID: transactionID, payload: packet.encode(size: replySize))
    }
}
