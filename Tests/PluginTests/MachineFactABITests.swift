import Testing
import VeneerHarness
@testable import VeneerHost
import VeneerPluginABI

/// machine_fact (ABI 1.3) through the C table, as any plugin calls it: sizes first, nothing
/// copied into a buffer too small, EAGAIN while the machine is built, ENOTSUP for unknown facts.
@Suite struct MachineFactABITests {
    @Test func theCallFollowsTheHeadersRules() throws {
        let h = try PluginHarness(plugin: "debug-exit")
        let binding = HostBinding(host: h.host)
        let api = HostServiceTable.api
        #expect(api.pointee.abi_minor >= 3)
        let call = try #require(api.pointee.machine_fact)
        var length = 0
        var buffer = [UInt8](repeating: 0xEE, count: 64)
        func ask(_ fact: UInt32, capacity: Int) -> veneer_status {
            buffer.withUnsafeMutableBytes { call(binding.opaque, fact, $0.baseAddress, capacity, &length) }
        }
        #expect(ask(UInt32(VENEER_FACT_VCPU_COUNT.rawValue), capacity: 64) == veneer_status(VENEER_EAGAIN))

        let map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: 16 << 20))
        h.host.machineFacts = MachineFacts(vcpuCount: 5, ramBytes: 16 << 20, memoryMap: map.entries, cmdline: "quiet")
        #expect(ask(UInt32(VENEER_FACT_VCPU_COUNT.rawValue), capacity: 64) == veneer_status(VENEER_OK))
        #expect(length == 4 && buffer[0..<4] == [5, 0, 0, 0])
        // Too small: the size comes back, the buffer is untouched.
        buffer = [UInt8](repeating: 0xEE, count: 64)
        #expect(ask(UInt32(VENEER_FACT_RAM_BYTES.rawValue), capacity: 7) == veneer_status(VENEER_ENOSPC))
        #expect(length == 8 && buffer.allSatisfy { $0 == 0xEE })
        #expect(ask(UInt32(VENEER_FACT_MEMORY_MAP.rawValue), capacity: 0) == veneer_status(VENEER_ENOSPC))
        #expect(length == map.entries.count * MemoryLayout<veneer_memory_range>.size)
        #expect(ask(UInt32(VENEER_FACT_CMDLINE.rawValue), capacity: 64) == veneer_status(VENEER_OK))
        #expect(length == 5 && Array(buffer[0..<5]) == Array("quiet".utf8))
        // An empty fact needs no buffer; an unknown one is not supported.
        #expect(call(binding.opaque, UInt32(VENEER_FACT_INITRD.rawValue), nil, 0, &length) == veneer_status(VENEER_OK))
        #expect(length == 0)
        #expect(ask(0, capacity: 64) == veneer_status(VENEER_ENOTSUP))
        #expect(ask(1000, capacity: 64) == veneer_status(VENEER_ENOTSUP))
        // A non-empty fact with no buffer but a claimed capacity is malformed, not a crash.
        #expect(call(binding.opaque, UInt32(VENEER_FACT_VCPU_COUNT.rawValue), nil, 64, &length) == veneer_status(VENEER_EINVAL))
        #expect(call(binding.opaque, UInt32(VENEER_FACT_VCPU_COUNT.rawValue), nil, 64, nil) == veneer_status(VENEER_EINVAL))
        withExtendedLifetime(binding) {}
    }

    @Test func unreadableBootFilesAreAnIOErrorNamingTheFile() throws {
        let h = try PluginHarness(plugin: "debug-exit")
        let binding = HostBinding(host: h.host)
        h.host.machineFacts = MachineFacts(vcpuCount: 1, ramBytes: 16 << 20, memoryMap: [],
                                           kernel: .path("/nonexistent/vmlinuz", role: "boot image"))
        var length = 0
        let call = try #require(HostServiceTable.api.pointee.machine_fact)
        #expect(call(binding.opaque, UInt32(VENEER_FACT_KERNEL.rawValue), nil, 0, &length) == veneer_status(VENEER_EIO))
        #expect(h.host.errors.last?.hasPrefix("boot.kernel: boot image /nonexistent/vmlinuz: ") == true, "\(h.host.errors)")
        withExtendedLifetime(binding) {}
    }
}
