import Testing
import VMBusProtocol
@testable import VeneerHost

// The VMM's own DeviceHost (DeviceContext over a real HyperVPartition and VMBus host) for ABI
// 1.7's calls: a loaded VSP's channel, opened by a scripted guest whose replies are left in the
// SynIC queue, and the calls a plugin makes through the host table, made here directly.
@Suite(.enabled(if: KVMSystem.isAvailable(), "SKIPPED: /dev/kvm is not available on this machine"))
struct DeviceContextVSPTests {
    let memory: GuestMemory
    let partition: HyperVPartition
    let machine: MachineServices
    let context: DeviceContext
    let device: PluginDevice

    init() throws {
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 16 << 20))
        let stop = try StopController()
        let events = try EventLoop(stop: stop)
        let interrupts = InterruptController(vm: vm)
        partition = try HyperVPartition(vm: vm, vpCount: 2, tscHz: 2_000_000_000, estimatedGuestTSC: { 0 }, memory: memory,
                                        interrupts: interrupts, events: events, logger: Logger(threshold: .error))
        machine = MachineServices(vm: vm, memory: memory, ports: PortIOBus(), mmio: MMIOBus(), interrupts: interrupts,
                                  events: events, stop: stop, hyperv: partition, logger: Logger(threshold: .error))
        context = DeviceContext(id: "scsi0", machine: machine)
        let library = try PluginLibrary(path: try PluginRegistry.standard().locate("vmbus-echo"))
        device = PluginDevice(library: library, instanceName: "scsi0", host: context)
        context.device = device
        try device.create(parameters: try ParameterValidation.resolve([:], schema: library.info.parameters), vcpuCount: 2)
    }

    private func post(_ message: ChannelMessage, connection: UInt32 = VMBusHost.messageConnectionID) {
        _ = partition.vmbus.handlePostMessage(connectionID: connection, messageType: 1, payload: message.encode(), vp: 0)
    }

    /// Connects the guest (once) and opens `relid` on a 2+2-page ring at `base`.
    private func open(_ relid: UInt32, base: UInt64, gpadl: UInt32) throws -> (toHost: GuestRing, toGuest: GuestRing) {
        if partition.vmbus.negotiatedVersion == nil {
            post(.initiateContact(InitiateContact(versionRequested: VMBusVersion.win10_5_3.rawValue, targetVCPU: 0,
                                                  interruptPageOrTargetInfo: 2, monitorPage1: 0, monitorPage2: 0)),
                 connection: VMBusHost.initiateContactConnectionID)
            post(.requestOffers)
        }
        try memory.load([UInt8](repeating: 0, count: 4 * 4096), at: base)
        let first = base >> 12
        let toHost = GuestRing(memory: memory, pfns: [first, first + 1])
        let toGuest = GuestRing(memory: memory, pfns: [first + 2, first + 3])
        try toHost.set(RingControlPage.featureBitsOffset, 1)
        try toGuest.set(RingControlPage.featureBitsOffset, 1)
        let range = GPARange(byteCount: 4 * 4096, byteOffset: 0, pfns: (0..<4).map { first + $0 })
        VMBusTestBed.gpadlMessages(relid: relid, gpadl: gpadl, ranges: [range]).forEach { post($0) }
        post(.openChannel(OpenChannel(childRelid: relid, openID: 1, ringBufferGPADL: gpadl, targetVP: 0, downstreamRingBufferPageOffset: 2)))
        return (toHost, toGuest)
    }

    /// A GPA-direct packet as the guest writes it into its ring.
    private func gpaDirect(transactionID: UInt64, ranges: [GPARange], payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        GPADirectHeader(ranges: ranges).encode(into: &w)
        let header = w.bytes
        let length = (16 + header.count + payload.count + 7) & ~7
        return PacketDescriptor(type: 9, dataOffset8: UInt16((16 + header.count) / 8), length8: UInt16(length / 8), flags: 1,
                                transactionID: transactionID).encode()
            + header + payload + [UInt8](repeating: 0, count: length - 16 - header.count - payload.count)
    }

    @Test func subchannelsSegmentsBatchesAndRescindsThroughTheVMM() throws {
        _ = try open(1, base: 0x10_0000, gpadl: 0x100)
        // Sub-channels of the open primary, none of a sub-channel.
        let (status, subs) = context.vmbusOfferSubchannels(primary: 1, count: 2)
        #expect(status == .ok && subs.count == 2 && !subs.contains(1))
        #expect(context.vmbusOfferSubchannels(primary: subs[0], count: 1).0 == .invalid)
        #expect(context.vmbusOfferSubchannels(primary: 77, count: 1).0 == .invalid)
        let rings = try open(subs[0], base: 0x20_0000, gpadl: 0x101)

        // A GPA-direct request on the sub-channel: too little room first (nothing consumed), then whole.
        try rings.toHost.writeRaw(gpaDirect(transactionID: 5, ranges: [GPARange(byteCount: 0x1800, byteOffset: 0x800, pfns: [0x300, 0x301])],
                                            payload: [1, 2, 3, 4, 5, 6, 7, 8]))
        var buffer = [UInt8](repeating: 0, count: 64)
        let short = buffer.withUnsafeMutableBytes { context.vmbusReadSegments(channel: subs[0], into: $0, segmentCapacity: 0) }
        #expect(short.status == .noSpace && short.segments == [VMBusSegment(gpa: 0x30_0800, length: 0x1800)])
        #expect(short.result?.payloadLength == 8 && short.result?.headerLength == 0)
        let read = buffer.withUnsafeMutableBytes { context.vmbusReadSegments(channel: subs[0], into: $0, segmentCapacity: 4) }
        #expect(read.status == .ok && read.result?.transactionID == 5 && read.segments == short.segments)
        #expect(Array(buffer.prefix(8)) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(buffer.withUnsafeMutableBytes { context.vmbusReadSegments(channel: subs[0], into: $0, segmentCapacity: 4) }.status == .again)

        // Completions in one batch; a malformed one writes nothing.
        let batch = (0..<3).map { OutgoingRingPacket(type: 11, transactionID: UInt64(10 + $0), payload: [UInt8($0)]) }
        #expect(context.vmbusWriteBatch(channel: subs[0], packets: batch) == (.ok, 3))
        #expect(context.vmbusWriteBatch(channel: subs[0], packets: [OutgoingRingPacket(type: 7, transactionID: 1, header: [1], payload: [])]) == (.invalid, 0))
        #expect(try (0..<3).map { _ in try #require(try rings.toGuest.read()).descriptor.transactionID } == [10, 11, 12])
        #expect(try rings.toGuest.read() == nil)

        // The primary's GPADL, from the sub-channel; not another's.
        let buffers = GPARange(byteCount: 0x2000, byteOffset: 0, pfns: [0x400, 0x401])
        VMBusTestBed.gpadlMessages(relid: 1, gpadl: 0x200, ranges: [buffers]).forEach { post($0) }
        #expect(context.vmbusGPADLSegments(channel: subs[1], gpadl: 0x200) == (.ok, [VMBusSegment(gpa: 0x40_0000, length: 0x2000)]))
        #expect(context.vmbusGPADLSegments(channel: subs[0], gpadl: 0x101).0 == .ok, "its own ring GPADL")
        #expect(context.vmbusGPADLSegments(channel: subs[1], gpadl: 0x101).0 == .invalid, "not a sibling's")
        #expect(context.vmbusGPADLSegments(channel: 1, gpadl: 0x101).0 == .invalid, "not a sub-channel's, from the primary")
        #expect(context.vmbusGPADLSegments(channel: subs[1], gpadl: 0x999).0 == .invalid)

        // Sub-channels go with the primary; the device forgets them.
        #expect(context.vmbusRescind(channel: subs[0]) == .invalid)
        post(.closeChannel(CloseChannel(childRelid: 1)))
        #expect(buffer.withUnsafeMutableBytes { context.vmbusReadSegments(channel: subs[0], into: $0, segmentCapacity: 4) }.status == .invalid)
        #expect(context.vmbusWriteBatch(channel: subs[0], packets: batch) == (.invalid, 0))
        #expect(context.vmbusGPADLSegments(channel: subs[1], gpadl: 0x200).0 == .invalid)

        // Rescind the primary; a new offer (hot add) gets a channel again.
        #expect(context.vmbusRescind(channel: 1) == .ok)
        #expect(context.vmbusRescind(channel: 1) == .invalid)
        machine.vcpusRunning = true
        let request = VMBusOfferRequest(interfaceType: DeviceClass.scsi.wireBytes, interfaceInstance: GUID.zero.wireBytes,
                                        channelFlags: 0, mmioMegabytes: 0, userDefined: [])
        let (added, id) = context.vmbusOffer(request)
        #expect(added == .ok && id != 0 && !subs.contains(id) && id != 1, "relids still held by the rescinded channels are not reused")
    }
}
