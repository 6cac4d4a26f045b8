import Testing
import VeneerPluginKit

struct DeviceStateTests {
    @Test func roundTrip() throws {
        var w = StateWriter()
        w.write(UInt16(0xBEEF))
        w.write(true)
        w.write(bytes: [9, 8, 7])
        w.write(Int64(-2))
        var r = StateReader(w.bytes)
        #expect(try r.read(UInt16.self) == 0xBEEF)
        #expect(try r.readBool() == true)
        #expect(try r.readBytes(maxCount: 16) == [9, 8, 7])
        #expect(try r.read(Int64.self) == -2)
        try r.finish()
    }

    @Test func hostileBlobsAreErrorsNotCrashes() {
        var r = StateReader([1, 2, 3])
        #expect(throws: StateError.self) { try r.read(UInt32.self) }
        var bool = StateReader([7])
        #expect(throws: StateError.self) { try bool.readBool() }
        var huge = StateReader([0xFF, 0xFF, 0xFF, 0xFF, 1])
        #expect(throws: StateError.self) { try huge.readBytes(maxCount: 1 << 20) }
        let trailing = StateReader([0])
        #expect(throws: StateError.self) { try trailing.finish() }
    }
}
