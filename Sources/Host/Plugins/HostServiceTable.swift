import VeneerPluginABI

/// The C side of `DeviceHost`: one process-wide `veneer_host_api` whose functions recover the
/// `DeviceHost` from the `veneer_host *` a plugin passes back.
///
/// Unsafe-pointer invariants: a `veneer_host *` is `Unmanaged<HostBinding>` of a binding that its
/// `PluginDevice` keeps alive for as long as the plugin instance exists, so the pointer is valid in
/// every call a well-behaved plugin makes. Plugin-supplied buffers are used only with the lengths
/// the plugin gave; guest memory is never touched here but through the `DeviceHost`.
public final class HostBinding: @unchecked Sendable {
    public let host: any DeviceHost
    public init(host: any DeviceHost) { self.host = host }

    var opaque: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    @inline(__always)
    static func host(_ pointer: OpaquePointer?) -> (any DeviceHost)? {
        guard let pointer else { return nil }
        return Unmanaged<HostBinding>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue().host
    }
}

private func text(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

public enum HostServiceTable {
    private struct Table: @unchecked Sendable {
        let pointer: UnsafePointer<veneer_host_api>
    }

    /// Built once; plugins may keep the pointer for their lifetime.
    private static let table = Table(pointer: makeTable())

    public static var api: UnsafePointer<veneer_host_api> { table.pointer }

    private static func makeTable() -> UnsafePointer<veneer_host_api> {
        var t = veneer_host_api()
        t.struct_size = UInt32(MemoryLayout<veneer_host_api>.size)
        t.abi_major = UInt16(VENEER_ABI_MAJOR)
        t.abi_minor = UInt16(VENEER_ABI_MINOR)
        t.log = { h, level, msg in HostBinding.host(h)?.log(level: level, message: text(msg)) }
        t.set_error = { h, msg in HostBinding.host(h)?.setError(text(msg)) }
        t.register_pio = { h, region, port, length in
            HostBinding.host(h)?.registerPortIO(region: region, port: port, length: length) ?? .invalid
        }
        t.register_mmio = { h, region, address, length in
            HostBinding.host(h)?.registerMMIO(region: region, address: address, length: length) ?? .invalid
        }
        t.unregister_region = { h, region in HostBinding.host(h)?.unregisterRegion(region) ?? .invalid }
        t.mem_read = { h, address, dst, length in
            guard let host = HostBinding.host(h) else { return .invalid }
            guard length > 0 else { return .ok }
            guard let dst, length <= UInt64(Int.max) else { return .invalid }
            return host.readGuest(address, into: UnsafeMutableRawBufferPointer(start: dst, count: Int(length)))
        }
        t.mem_write = { h, address, src, length in
            guard let host = HostBinding.host(h) else { return .invalid }
            guard length > 0 else { return .ok }
            guard let src, length <= UInt64(Int.max) else { return .invalid }
            return host.writeGuest(address, from: UnsafeRawBufferPointer(start: src, count: Int(length)))
        }
        t.mem_map = { h, address, length, flags in
            HostBinding.host(h)?.mapGuest(address, length: length, writable: flags & UInt32(VENEER_MAP_WRITE) != 0)
        }
        t.irq_set = { h, line, level in HostBinding.host(h)?.setIRQ(line: line, level: level != 0) ?? .invalid }
        t.msi_send = { h, address, data in HostBinding.host(h)?.sendMSI(address: address, data: data) ?? .invalid }
        t.clock_ns = { h in HostBinding.host(h)?.clockNanoseconds() ?? 0 }
        t.timer_arm = { h, token, deadline, period in
            HostBinding.host(h)?.armTimer(token: token, deadline: deadline, period: period) ?? .invalid
        }
        t.timer_cancel = { h, token in HostBinding.host(h)?.cancelTimer(token: token) ?? .invalid }
        t.fd_watch = { h, fd, events, token in HostBinding.host(h)?.watch(fd: fd, events: events, token: token) ?? .invalid }
        t.fd_unwatch = { h, fd in HostBinding.host(h)?.unwatch(fd: fd) ?? .invalid }
        t.post_work = { h, token in HostBinding.host(h)?.postWork(token: token) ?? .invalid }
        t.request_stop = { h, reason, status in HostBinding.host(h)?.requestStop(reason: reason, exitStatus: status) }
        t.vmbus_offer = { h, offer, channel in
            guard let host = HostBinding.host(h), let offer, let channel else { return .invalid }
            let size = Int(UnsafeRawPointer(offer).load(as: UInt32.self))
            guard size >= MemoryLayout<veneer_vmbus_offer>.offset(of: \.reserved) ?? 168 else { return .invalid }
            let o = offer.pointee
            guard o.user_defined_length <= 120 else { return .invalid }
            let request = VMBusOfferRequest(
                interfaceType: withUnsafeBytes(of: o.interface_type) { Array($0) },
                interfaceInstance: withUnsafeBytes(of: o.interface_instance) { Array($0) },
                channelFlags: o.channel_flags, mmioMegabytes: o.mmio_megabytes,
                userDefined: withUnsafeBytes(of: o.user_defined) { Array($0.prefix(Int(o.user_defined_length))) })
            let (status, id) = host.vmbusOffer(request)
            if status == .ok { channel.pointee = id }
            return status
        }
        t.vmbus_read = { h, channel, packet, buffer, capacity in
            guard let host = HostBinding.host(h), let packet else { return .invalid }
            guard capacity == 0 || buffer != nil else { return .invalid }
            let (status, result) = host.vmbusRead(channel: channel, into: UnsafeMutableRawBufferPointer(start: buffer, count: buffer == nil ? 0 : capacity))
            if let result {
                packet.pointee.type = result.type
                packet.pointee.flags = result.flags
                packet.pointee.transaction_id = result.transactionID
                packet.pointee.header_length = UInt32(result.headerLength)
                packet.pointee.payload_length = UInt32(result.payloadLength)
            }
            return status
        }
        t.vmbus_write = { h, channel, type, flags, transaction, data, length in
            guard let host = HostBinding.host(h) else { return .invalid }
            guard length == 0 || data != nil else { return .invalid }
            return host.vmbusWrite(channel: channel, type: type, flags: flags, transactionID: transaction,
                                   data: UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : length))
        }
        t.ioevent_add = { h, flags, address, length, fd in
            HostBinding.host(h)?.ioeventAdd(mmio: flags & UInt32(VENEER_IO_MMIO) != 0, address: address, length: length, fd: fd) ?? .invalid
        }
        t.pci_register = { h, function, handle in
            guard let host = HostBinding.host(h), let function, let handle else { return .invalid }
            guard let request = decodePCIFunction(function) else { return .invalid }
            let (status, id) = host.pciRegister(request)
            if status == .ok { handle.pointee = id }
            return status
        }
        t.pci_config_access = { h, bdf, offset, size, flags, data in
            guard let host = HostBinding.host(h), let data else { return .invalid }
            var value = data.pointee
            let status = host.pciConfigAccess(bdf: bdf, offset: offset, size: size,
                                              isWrite: flags & UInt32(VENEER_IO_WRITE) != 0, data: &value)
            data.pointee = value
            return status
        }
        t.machine_fact = { h, fact, buffer, capacity, length in
            guard let host = HostBinding.host(h), let length else { return .invalid }
            let (status, bytes) = host.machineFact(fact)
            guard status == .ok else { return status }
            length.pointee = bytes.count
            guard bytes.count <= capacity else { return .noSpace }
            guard !bytes.isEmpty else { return .ok }
            guard let buffer else { return .invalid }
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            return .ok
        }
        t.hv_connect = { h, kind, id in HostBinding.host(h)?.hvConnect(kind: kind, connectionID: id) ?? .invalid }
        t.hv_post_message = { h, vp, sint, type, payload, length in
            guard let host = HostBinding.host(h) else { return .invalid }
            guard length <= HyperVConnectionRules.maxPayload, length == 0 || payload != nil else { return .invalid }
            let bytes = payload.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
            return host.hvPostMessage(vp: vp, sint: sint, messageType: type, payload: bytes)
        }
        t.hv_signal_event = { h, vp, sint, flag in HostBinding.host(h)?.hvSignalEvent(vp: vp, sint: sint, flag: flag) ?? .invalid }
        t.hv_reference_time = { h, time in
            guard let host = HostBinding.host(h), let time else { return .invalid }
            let (status, value) = host.hvReferenceTime()
            if status == .ok { time.pointee = value }
            return status
        }
        t.vmbus_rescind = { h, channel in HostBinding.host(h)?.vmbusRescind(channel: channel) ?? .invalid }
        t.vmbus_offer_subchannels = { h, primary, count, channels in
            guard let host = HostBinding.host(h), let channels else { return .invalid }
            guard count >= 1, count <= UInt32(VMBusCallLimits.maxSubchannelsPerCall) else { return .invalid }
            let (status, ids) = host.vmbusOfferSubchannels(primary: primary, count: Int(count))
            guard status == .ok else { return status }
            guard ids.count == Int(count) else { return .ioError }
            for (i, id) in ids.enumerated() { channels[i] = id }
            return .ok
        }
        t.vmbus_read_segments = { h, channel, packet, buffer, capacity, segments, segmentCapacity, segmentCount in
            guard let host = HostBinding.host(h), let packet, let segmentCount else { return .invalid }
            guard Int(UnsafeRawPointer(packet).load(as: UInt32.self)) >= packetFieldsSize else { return .invalid }
            guard capacity == 0 || buffer != nil, segmentCapacity == 0 || segments != nil else { return .invalid }
            let read = host.vmbusReadSegments(channel: channel, into: UnsafeMutableRawBufferPointer(start: buffer, count: buffer == nil ? 0 : capacity),
                                              segmentCapacity: Int(segmentCapacity))
            if let result = read.result {
                packet.pointee.type = result.type
                packet.pointee.flags = result.flags
                packet.pointee.transaction_id = result.transactionID
                packet.pointee.header_length = UInt32(result.headerLength)
                packet.pointee.payload_length = UInt32(result.payloadLength)
                segmentCount.pointee = UInt32(read.segments.count)
            }
            if read.status == .ok, let segments {
                for (i, segment) in read.segments.enumerated() where i < Int(segmentCapacity) {
                    segments[i] = veneer_guest_segment(gpa: segment.gpa, length: segment.length)
                }
            }
            return read.status
        }
        t.vmbus_gpadl_segments = { h, channel, gpadl, segments, capacity, count in
            guard let host = HostBinding.host(h), let count else { return .invalid }
            guard capacity == 0 || segments != nil else { return .invalid }
            let (status, found) = host.vmbusGPADLSegments(channel: channel, gpadl: gpadl)
            guard status == .ok else { return status }
            count.pointee = UInt32(found.count)
            guard found.count <= Int(capacity), let segments else { return found.isEmpty ? .ok : .noSpace }
            for (i, segment) in found.enumerated() { segments[i] = veneer_guest_segment(gpa: segment.gpa, length: segment.length) }
            return .ok
        }
        t.metric_register = { h, name, help, kind, metric in
            guard let host = HostBinding.host(h), let name, let metric else { return .invalid }
            let n = String(cString: name)
            guard ManagementLimits.isMetricName(n),
                  kind == UInt32(VENEER_METRIC_COUNTER) || kind == UInt32(VENEER_METRIC_GAUGE) else { return .invalid }
            let (status, handle) = host.metricRegister(name: n, help: text(help), kind: kind)
            if status == .ok { metric.pointee = handle }
            return status
        }
        t.metric_add = { h, metric, delta in HostBinding.host(h)?.metricAdd(metric, delta: delta) }
        t.metric_set = { h, metric, value in HostBinding.host(h)?.metricSet(metric, value: value) }
        t.control_reply = { h, request, status, json, length in
            guard let host = HostBinding.host(h), length <= ManagementLimits.maxReplyBytes else { return .invalid }
            guard length == 0 || json != nil else { return .invalid }
            let reply = json.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""
            return host.controlReply(request: request, status: status, text: reply)
        }
        t.vmbus_write_batch = { h, channel, packets, count, packetSize, written in
            guard let host = HostBinding.host(h), let written else { return .invalid }
            written.pointee = 0
            guard count <= UInt32(VMBusCallLimits.maxBatchPackets) else { return .invalid }
            guard count > 0 else { return .ok }
            guard let packets, Int(packetSize) >= sendFieldsSize, packetSize <= 4096 else { return .invalid }
            guard let batch = decodeSendBatch(UnsafeRawPointer(packets), count: Int(count), stride: Int(packetSize)) else { return .invalid }
            let (status, n) = host.vmbusWriteBatch(channel: channel, packets: batch)
            written.pointee = UInt32(n)
            return status
        }
        let pointer = UnsafeMutablePointer<veneer_host_api>.allocate(capacity: 1)
        pointer.initialize(to: t)
        return UnsafePointer(pointer)
    }
}

/// The fields of a `veneer_vmbus_packet` the host writes (struct_size must cover them).
private let packetFieldsSize = MemoryLayout<veneer_vmbus_packet>.offset(of: \.reserved) ?? 24
/// The fields of a `veneer_vmbus_send` the host reads: each packet's struct_size, and the stride,
/// must cover them.
private let sendFieldsSize = MemoryLayout<veneer_vmbus_send>.offset(of: \.reserved) ?? 48

/// A plugin's vmbus_write_batch array, copied out packet by packet within `stride`: nil when a
/// packet is malformed (struct_size outside [fields, stride], a header that is not a multiple of
/// 8, a length past what a descriptor can describe, a NULL pointer with a length).
private func decodeSendBatch(_ base: UnsafeRawPointer, count: Int, stride: Int) -> [OutgoingRingPacket]? {
    var batch: [OutgoingRingPacket] = []
    batch.reserveCapacity(count)
    for i in 0..<count {
        let p = base + i * stride
        let size = Int(p.loadUnaligned(as: UInt32.self))
        guard size >= sendFieldsSize, size <= stride else { return nil }
        let s = PluginLibrary.prefix(of: p, size: sendFieldsSize, into: veneer_vmbus_send())
        let headerLength = Int(s.header_length)
        guard headerLength % 8 == 0, headerLength <= VMBusCallLimits.maxPacketBytes, headerLength == 0 || s.header != nil,
              s.payload_length <= UInt64(VMBusCallLimits.maxPacketBytes), s.payload_length == 0 || s.payload != nil
        else { return nil }
        let header = s.header.map { Array(UnsafeRawBufferPointer(start: $0, count: headerLength)) } ?? []
        let payload = s.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(s.payload_length))) } ?? []
        batch.append(OutgoingRingPacket(type: s.type, flags: s.flags, transactionID: s.transaction_id, header: header, payload: payload))
    }
    return batch
}

/// A plugin's `veneer_pci_function`, read only as far as its struct_size reaches (it must reach
/// past the BARs), with the capability bytes copied out; nil when it is malformed.
private func decodePCIFunction(_ p: UnsafePointer<veneer_pci_function>) -> PCIFunctionRequest? {
    let size = Int(UnsafeRawPointer(p).load(as: UInt32.self))
    guard size >= MemoryLayout<veneer_pci_function>.offset(of: \.reserved) ?? 136 else { return nil }
    let f = PluginLibrary.prefix(of: UnsafeRawPointer(p), size: size, into: veneer_pci_function())
    let maxCapabilities = 0x100 - 0x40
    guard f.capabilities_length <= maxCapabilities, f.capabilities_length == 0 || f.capabilities != nil else { return nil }
    let capabilities = f.capabilities.map { Array(UnsafeBufferPointer(start: $0, count: Int(f.capabilities_length))) } ?? []
    let bars = withUnsafeBytes(of: f.bars) { raw in
        (0..<6).map { i in
            let bar = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<veneer_pci_bar>.stride, as: veneer_pci_bar.self)
            return PCIFunctionRequest.BAR(size: bar.size, flags: bar.flags, region: bar.region)
        }
    }
    return PCIFunctionRequest(
        vendorID: f.vendor_id, deviceID: f.device_id, subsystemVendorID: f.subsystem_vendor_id, subsystemID: f.subsystem_id,
        classCode: f.class_code, revision: f.revision, interruptPin: f.interrupt_pin, interruptLine: f.interrupt_line,
        slot: f.slot, capabilityPointer: f.capability_pointer, capabilities: capabilities, bars: bars)
}
