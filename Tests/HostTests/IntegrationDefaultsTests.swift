import Testing
@testable import VeneerHost

/// `[integration]` and the integration services a VM with VMBus gets by default.
struct IntegrationDefaultsTests {
    static let boot = """
        [boot]
        format = "flat"
        image = "guest.bin"
        mode = "long"
        load_address = 0x100000
        """

    func parse(_ text: String) throws(ConfigError) -> VMConfig { try ConfigParser.parse(text, file: "/cfg/vm.toml") }

    func error(_ text: String) -> ConfigError? {
        do { _ = try parse(text); return nil } catch { return error }
    }

    @Test func aVMWithVMBusGetsEveryServiceAfterItsOwnDevices() throws {
        let c = try parse("name = \"web-1\"\nhyperv = true\n" + Self.boot + "\n[[device]]\nplugin = \"serial16550\"\n")
        let defaults = IntegrationServices.defaultDevices(for: c, enlightened: true)
        #expect(defaults.map(\.plugin) == ["heartbeat", "shutdown", "timesync", "kvp", "vss", "fcopy"])
        #expect(defaults.map(\.id) == defaults.map(\.plugin))
        #expect(defaults.allSatisfy(IntegrationServices.isDefault))
        #expect(defaults.first { $0.plugin == "kvp" }?.parameters == ["vm_name": .string("web-1")])
        #expect(IntegrationServices.defaultDevices(for: c, enlightened: false).isEmpty, "no VMBus, no services")
    }

    @Test func servicesTurnOffOneByOneAndAConfiguredDeviceReplacesTheDefault() throws {
        let c = try parse("hyperv = true\n" + Self.boot + """

            [integration]
            vss = false
            fcopy = false
            heartbeat = true
            [[device]]
            id = "hb"
            plugin = "heartbeat"
            interval_ms = 500
            [[device]]
            id = "kvp"
            plugin = "vmbus-echo"
            """)
        #expect(c.integration.disabled == ["vss", "fcopy"])
        let defaults = IntegrationServices.defaultDevices(for: c, enlightened: true)
        // heartbeat: replaced by "hb"; kvp: its id is taken; vss and fcopy: off.
        #expect(defaults.map(\.plugin) == ["shutdown", "timesync"])
    }

    @Test func theTableIsCheckedLikeAnyOther() {
        let unknown = error("hyperv = true\n" + Self.boot + "\n[integration]\nbackup = false\n")
        #expect(unknown?.key == "integration.backup")
        #expect(unknown?.reason.contains("unknown key: [integration] takes heartbeat, shutdown, timesync, kvp, vss, fcopy") == true, "\(String(describing: unknown))")
        let notBool = error("hyperv = true\n" + Self.boot + "\n[integration]\nkvp = \"no\"\n")
        #expect(notBool?.key == "integration.kvp" && notBool?.reason.contains("expected true or false") == true)
        let notTable = error("integration = false\n" + Self.boot)
        #expect(notTable?.key == "integration")
        let noVMBus = error("hyperv = false\n" + Self.boot + "\n[integration]\ntimesync = true\n")
        #expect(noVMBus?.key == "integration.timesync" && noVMBus?.reason.contains("hyperv = false") == true)
        #expect(error("hyperv = false\n" + Self.boot + "\n[integration]\ntimesync = false\n") == nil, "turning off is always fine")
    }

    @Test func theResolverAddsTheDefaultsOnlyToVMsWithVMBus() throws {
        let withBus = try parse("hyperv = true\n" + Self.boot + "\n[integration]\nkvp = false\n")
        let resolved = try DeviceResolver.resolve(withBus, registry: .standard())
        #expect(resolved.map(\.config.id) == ["heartbeat", "shutdown", "timesync", "vss", "fcopy"])
        let plain = try parse(Self.boot + "\n[[device]]\nplugin = \"serial16550\"\n")
        #expect(try DeviceResolver.resolve(plain, registry: .standard()).map(\.config.plugin) == ["serial16550"])
        // A synthetic device alone makes the VM enlightened, so it gets the services too.
        let synthetic = try parse(Self.boot + "\n[[device]]\nplugin = \"vmbus-echo\"\n")
        #expect(try DeviceResolver.resolve(synthetic, registry: .standard()).count == 7)
    }
}
