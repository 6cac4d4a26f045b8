import Testing
import VeneerHarness
import VeneerPluginABI

/// The hv-testdev plugin through the harness: each command's effect on the fake SynIC, bad
/// commands refused, the event route, and state round trips.
@Suite struct HyperVTestDeviceTests {
    static func words(_ values: UInt32...) -> [UInt8] {
        values.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
    }

    let h: PluginHarness
    init() throws { h = try PluginHarness(plugin: "hv-testdev", vcpuCount: 2) }

    @Test func claimsItsTwoConnections() {
        #expect(h.host.hvConnections == [.init(kind: UInt32(VENEER_HV_MESSAGE_CONNECTION.rawValue), id: 0x10001),
                                         .init(kind: UInt32(VENEER_HV_EVENT_CONNECTION.rawValue), id: 0x10002)])
    }

    @Test func postCommandSendsABurstToTheTargetVP() {
        #expect(h.hvPost(connection: 0x10001, vp: 0, payload: Self.words(1, 1, 4, 0xABCD, 3)) == 0)
        #expect(h.host.hvMessages == (0..<3).map {
            .init(vp: 1, sint: 4, messageType: 0x7E57, payload: Self.words(0xABCD, $0, 0))
        })
    }

    @Test func signalCommandAndEventRoute() {
        #expect(h.hvPost(connection: 0x10001, payload: Self.words(2, 1, 5, 300)) == 0)
        #expect(h.host.hvEvents == [.init(vp: 1, sint: 5, flag: 300)])
        h.host.clearHyperVTraffic()
        #expect(h.hvSignal(connection: 0x10002, vp: 1, flag: 9) == 0)
        #expect(h.host.hvEvents.isEmpty, "no route yet: dropped")
        #expect(h.hvPost(connection: 0x10001, vp: 1, payload: Self.words(3, 0, 6)) == 0)
        #expect(h.hvSignal(connection: 0x10002, vp: 1, flag: 9) == 0)
        #expect(h.host.hvEvents == [.init(vp: 0, sint: 6, flag: 9)], "VP 1's signal lands on VP 0")
    }

    @Test(arguments: [
        [UInt8](),                                   // no command
        words(9),                                    // unknown command
        words(1, 0, 4, 1),                           // POST without a count
        words(1, 0, 4, 1, 0),                        // count 0
        words(1, 0, 4, 1, 65),                       // count over 64
        words(1, 2, 4, 1, 1),                        // VP 2 of 2
        words(1, 0, 16, 1, 1),                       // SINT 16
        words(2, 0, 5, 2048),                        // flag 2048
        words(3, 0, 16),                             // route to SINT 16
    ])
    func badCommandsAreInvalidParameters(payload: [UInt8]) {
        #expect(h.hvPost(connection: 0x10001, payload: payload) == 5)
        #expect(h.host.hvMessages.isEmpty && h.host.hvEvents.isEmpty)
    }

    @Test func stateRoundTrips() throws {
        #expect(h.hvPost(connection: 0x10001, payload: Self.words(3, 1, 7)) == 0)
        let state = try h.save()
        try h.reset()
        #expect(h.hvSignal(connection: 0x10002, flag: 1) == 0)
        #expect(h.host.hvEvents.isEmpty, "reset forgets the route")
        try h.load(state)
        #expect(h.hvSignal(connection: 0x10002, flag: 1) == 0)
        #expect(h.host.hvEvents == [.init(vp: 1, sint: 7, flag: 1)])
        #expect(throws: (any Error).self) { try h.load(Array(state.dropLast())) }
    }

    @Test func sameIdForBothConnectionsIsRefused() {
        #expect(throws: (any Error).self) {
            try PluginHarness(plugin: "hv-testdev", parameters: ["message_connection": .int(0x10005), "event_connection": .int(0x10005)])
        }
    }
}
