import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Turns a `PluginDefinition` into the C descriptor the host loads.
///
/// A plugin written in Swift exports its entry point like this:
///
///     @_cdecl("veneer_plugin_entry")
///     public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: MyDevice.definition) }
///
/// Unsafe-pointer invariants of this file: the descriptor, its strings, its parameter table and
/// its groups' member tables are allocated once per process and never freed (the host may read them until it unloads the .so);
/// a `veneer_device *` is an `Unmanaged<DeviceBox>` retained in `create` and released in `destroy`,
/// so it is valid for every callback in between; buffers passed in by the host are used only within
/// the bounds it gives (a group's items: its table count times this plugin's member count).
public enum PluginExport {
    private static let exported = Mutex<(definition: PluginDefinition, descriptor: UnsafeRawPointer)?>(nil)

    public static func descriptor(for definition: PluginDefinition) -> UnsafeRawPointer {
        exported.withLock { state in
            if let state { return state.descriptor }
            let descriptor = UnsafeRawPointer(makeDescriptor(definition))
            state = (definition, descriptor)
            return descriptor
        }
    }

    static var definition: PluginDefinition? { exported.withLock { $0?.definition } }
}

/// The Swift object behind one `veneer_device *`.
final class DeviceBox {
    let device: any VeneerDevice
    let host: HostServices
    init(device: any VeneerDevice, host: HostServices) {
        self.device = device
        self.host = host
    }

    static func from(_ pointer: OpaquePointer?) -> DeviceBox? {
        guard let pointer else { return nil }
        return Unmanaged<DeviceBox>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

/// A NUL-terminated copy that lives as long as the process (see the invariants above).
private func cString(_ s: String) -> UnsafePointer<CChar> {
    let utf8 = Array(s.utf8CString)
    let copy = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    copy.initialize(from: utf8, count: utf8.count)
    return UnsafePointer(copy)
}

/// The C spec of `p`; a group's members become a table of their own (same stride as the
/// descriptor's), allocated once like everything else in the descriptor.
private func makeSpec(_ p: ParameterSpec) -> veneer_param_spec {
    var spec = veneer_param_spec()
    spec.struct_size = UInt32(MemoryLayout<veneer_param_spec>.size)
    spec.name = cString(p.name)
    spec.doc = cString(p.doc)
    spec.default_value = p.defaultValue.map(cString)
    switch p.kind {
    case .bool: spec.type = VENEER_PARAM_BOOL.rawValue
    case .int(let min, let max):
        spec.type = VENEER_PARAM_INT.rawValue
        spec.min = min
        spec.max = max
    case .string: spec.type = VENEER_PARAM_STRING.rawValue
    case .choice(let options):
        spec.type = VENEER_PARAM_CHOICE.rawValue
        spec.choices = cString(options.joined(separator: ","))
    case .intChoice(let options):
        spec.type = VENEER_PARAM_INT.rawValue
        spec.min = options.min() ?? 0
        spec.max = options.max() ?? 0
        spec.choices = cString(options.map { "\($0)" }.joined(separator: ","))
    case .path(let words):
        spec.type = VENEER_PARAM_PATH.rawValue
        spec.choices = words.isEmpty ? nil : cString(words.joined(separator: ","))
    case .group(let fewest, let most, let members):
        spec.type = VENEER_PARAM_GROUP.rawValue
        spec.min = Int64(fewest)
        spec.max = Int64(most)
        spec.default_value = nil  // the ABI requires it: an absent group is zero tables
        let table = UnsafeMutablePointer<veneer_param_spec>.allocate(capacity: max(members.count, 1))
        for (i, m) in members.enumerated() { (table + i).initialize(to: makeSpec(m)) }
        spec.members = UnsafePointer(table)
        spec.member_count = UInt32(members.count)
    }
    return spec
}

/// The values create received, by name. A group's `items` hold int_value tables of the group's
/// member count each (this plugin's own definition says how many), at the host's stride.
private func readValues(_ base: UnsafeRawPointer?, count: Int, stride: Int, schema: [ParameterSpec]) -> [String: Parameters.Value] {
    var values: [String: Parameters.Value] = [:]
    guard let base, stride >= MemoryLayout<veneer_param_value>.size else { return values }
    for i in 0..<count {
        let v = (base + i * stride).loadUnaligned(as: veneer_param_value.self)
        guard let name = v.name.map({ String(cString: $0) }) else { continue }
        switch v.type {
        case VENEER_PARAM_STRING.rawValue, VENEER_PARAM_CHOICE.rawValue, VENEER_PARAM_PATH.rawValue:
            values[name] = .string(v.string_value.map { String(cString: $0) } ?? "")
        case VENEER_PARAM_GROUP.rawValue:
            guard case .group(_, _, let members)? = schema.first(where: { $0.name == name })?.kind,
                  v.int_value > 0, let items = v.items
            else {
                values[name] = .group([])
                continue
            }
            let tables = (0..<Int(v.int_value)).map { t in
                Parameters(values: readValues(UnsafeRawPointer(items) + t * members.count * stride, count: members.count,
                                              stride: stride, schema: members))
            }
            values[name] = .group(tables)
        default:
            values[name] = .int(v.int_value)
        }
    }
    return values
}

private func makeDescriptor(_ definition: PluginDefinition) -> UnsafeMutablePointer<veneer_plugin_descriptor> {
    let specs = UnsafeMutablePointer<veneer_param_spec>.allocate(capacity: max(definition.parameters.count, 1))
    for (i, p) in definition.parameters.enumerated() { (specs + i).initialize(to: makeSpec(p)) }

    var d = veneer_plugin_descriptor()
    d.struct_size = UInt32(MemoryLayout<veneer_plugin_descriptor>.size)
    d.abi_major = UInt16(VENEER_ABI_MAJOR)
    d.abi_minor = UInt16(VENEER_ABI_MINOR)
    d.name = cString(definition.name)
    d.version = cString(definition.version)
    d.summary = cString(definition.summary)
    d.kind = definition.kind.rawValue
    d.state_version = definition.stateVersion
    d.flags = definition.concurrent ? UInt32(VENEER_PLUGIN_CONCURRENT) : 0
    d.param_count = UInt32(definition.parameters.count)
    d.param_spec_size = UInt32(MemoryLayout<veneer_param_spec>.size)
    d.params = UnsafePointer(specs)

    d.create = { api, host, args in
        guard let api, let host, let args, let definition = PluginExport.definition else { return nil }
        let services = HostServices(api: api, host: host)
        let a = args.pointee
        let values = readValues(a.params.map { UnsafeRawPointer($0) }, count: Int(a.param_count), stride: Int(a.param_value_size),
                                schema: definition.parameters)
        let instance = a.instance_name.map { String(cString: $0) } ?? definition.name
        do {
            let device = try definition.make(services, Parameters(values: values), instance)
            let box = DeviceBox(device: device, host: services)
            return OpaquePointer(Unmanaged.passRetained(box).toOpaque())
        } catch {
            api.pointee.set_error?(host, "\(error)")
            return nil
        }
    }
    d.reset = { dev in
        DeviceBox.from(dev)?.device.reset()
        return veneer_status(VENEER_OK)
    }
    d.start = { dev in
        DeviceBox.from(dev)?.device.start()
        return veneer_status(VENEER_OK)
    }
    d.stop = { dev in
        DeviceBox.from(dev)?.device.stop()
        return veneer_status(VENEER_OK)
    }
    d.destroy = { dev in
        guard let dev else { return }
        Unmanaged<DeviceBox>.fromOpaque(UnsafeRawPointer(dev)).release()
    }
    d.io = { dev, region, offset, size, flags, data in
        guard let box = DeviceBox.from(dev), let data else { return }
        let access = IOAccess(
            region: region, offset: offset, size: Int(size),
            isWrite: flags & UInt32(VENEER_IO_WRITE) != 0,
            isMMIO: flags & UInt32(VENEER_IO_MMIO) != 0)
        var value = data.pointee
        box.device.io(access, data: &value)
        data.pointee = value
    }
    d.timer = { dev, token in DeviceBox.from(dev)?.device.timerFired(token: token) }
    d.fd_ready = { dev, token, events in DeviceBox.from(dev)?.device.fdReady(token: token, events: FDEvents(rawValue: events)) }
    d.work = { dev, token in DeviceBox.from(dev)?.device.workPosted(token: token) }
    d.save = { dev, buffer, capacity, length in
        guard let box = DeviceBox.from(dev), let length else { return veneer_status(VENEER_EINVAL) }
        var writer = StateWriter()
        box.device.save(to: &writer)
        let bytes = writer.bytes
        length.pointee = bytes.count
        guard let buffer, capacity >= bytes.count else { return veneer_status(VENEER_ENOSPC) }
        bytes.withUnsafeBytes { raw in
            if let source = raw.baseAddress { memcpy(buffer, source, bytes.count) }
        }
        return veneer_status(VENEER_OK)
    }
    d.load = { dev, version, buffer, length in
        guard let box = DeviceBox.from(dev) else { return veneer_status(VENEER_EINVAL) }
        if let definition = PluginExport.definition, version > definition.stateVersion {
            box.host.api.pointee.set_error?(box.host.host, "state version \(version) is newer than this plugin's \(definition.stateVersion)")
            return veneer_status(VENEER_ESTATE)
        }
        let bytes = buffer.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
        var reader = StateReader(bytes)
        do {
            try box.device.load(version: version, from: &reader)
            return veneer_status(VENEER_OK)
        } catch {
            box.host.api.pointee.set_error?(box.host.host, "\(error)")
            return veneer_status(VENEER_ESTATE)
        }
    }

    d.vmbus_opened = { dev, channel, data, length in
        let userData = data.map { Array(UnsafeBufferPointer(start: $0, count: min(length, 120))) } ?? []
        DeviceBox.from(dev)?.device.channelOpened(channel, userData: userData)
    }
    d.vmbus_signalled = { dev, channel in DeviceBox.from(dev)?.device.channelSignalled(channel) }
    d.vmbus_closed = { dev, channel in DeviceBox.from(dev)?.device.channelClosed(channel) }
    // Set for every plugin: one without PCI functions is never called, and the default
    // implementation leaves reads as the core preset them.
    d.pci_config = { dev, function, offset, size, flags, data in
        guard let box = DeviceBox.from(dev), let data else { return }
        let header = flags & UInt32(VENEER_PCI_HEADER_WRITTEN) != 0
        let access = PCIConfigAccess(function: function, offset: offset, size: Int(size),
                                     isWrite: flags & UInt32(VENEER_IO_WRITE) != 0, isHeaderUpdate: header)
        var value = data.pointee
        box.device.pciConfig(access, data: &value)
        if !header { data.pointee = value }
    }

    // ABI 1.4: reached only through connections the device claimed.
    d.hv_message = { dev, connection, vp, type, payload, length in
        guard let box = DeviceBox.from(dev) else { return HyperVStatus.invalidParameter.rawValue }
        let bytes = payload.map { Array(UnsafeBufferPointer(start: $0, count: min(length, 240))) } ?? []
        return box.device.hyperVMessage(connection: connection, vp: vp, messageType: type, payload: bytes).rawValue
    }
    d.hv_event = { dev, connection, vp, flag in DeviceBox.from(dev)?.device.hyperVEvent(connection: connection, vp: vp, flag: flag) }

    // ABI 1.8: management requests and run-state changes.
    d.control = { dev, request, json, length in
        guard let box = DeviceBox.from(dev) else { return }
        let body = json.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
        if let answer = box.device.control(ControlRequest(id: request, body: body)) {
            box.host.reply(to: request, answer)
        }
    }
    d.run_state = { dev, state in
        guard let box = DeviceBox.from(dev), let state = RunState(rawValue: state) else { return }
        box.device.runStateChanged(state)
    }

    let pointer = UnsafeMutablePointer<veneer_plugin_descriptor>.allocate(capacity: 1)
    pointer.initialize(to: d)
    return pointer
}
