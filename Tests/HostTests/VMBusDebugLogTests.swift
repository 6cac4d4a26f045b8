import Testing
import VMBusProtocol
@testable import VeneerHost

/// At debug level the VMBus host logs every channel message in and out, one line each, with the
/// fields that identify it; below debug it builds none of them.
struct VMBusDebugLogTests {
    @Test func everyChannelMessageIsOneDebugLine() throws {
        let bed = try VMBusTestBed()
        let instance = GUID(0x1234_5678, 0x9abc, 0xdef0, 0x0102_0304_0506_0708)
        _ = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.heartbeat, interfaceInstance: instance),
                                  handler: RecordingVSP(acceptOpen: true))
        _ = try bed.connect()
        _ = try bed.requestOffers()
        let lines = bed.log.all
        #expect(lines.contains("guest -> host: INITIATE_CONTACT version 5.3 target VCPU 0 SINT 2"))
        #expect(lines.contains { $0.hasPrefix("host -> VP 0: VERSION_RESPONSE supported 1 ") })
        #expect(lines.contains("guest -> host: REQUESTOFFERS"))
        #expect(lines.contains { $0.hasPrefix("host -> VP 0: OFFERCHANNEL relid ") && $0.contains("type \(DeviceClass.heartbeat) instance \(instance)") })
        #expect(lines.contains("host -> VP 0: ALLOFFERS_DELIVERED"))
    }

    @Test func summariesNameTheFieldsThatIdentifyTheMessage() {
        let open = ChannelMessage.openChannel(OpenChannel(childRelid: 3, openID: 7, ringBufferGPADL: 0xE1E10, targetVP: 0,
                                                          downstreamRingBufferPageOffset: 4))
        #expect(open.summary == "OPENCHANNEL relid 3 open id 7 ring GPADL 0xe1e10 target VP 0 downstream offset 4 pages")
        #expect(ChannelMessage.gpadlTeardown(GPADLTeardown(childRelid: 3, gpadl: 0xE1E10)).summary == "GPADL_TEARDOWN relid 3 GPADL 0xe1e10")
        #expect(ChannelMessage.unload.summary == "UNLOAD")
    }

    @Test func nothingIsBuiltBelowDebug() {
        final class QuietSink: VMBusLogSink {
            let logsDebug = false
            func log(_ level: Logger.Level, _ message: String) { Issue.record("logged: \(message)") }
        }
        let diagnostics = VMBusDiagnostics(sink: QuietSink())
        diagnostics.debug({ Issue.record("built a debug line nobody wants"); return "" }())
    }
}
