import Foundation
import Testing
import VeneerHarness
import VeneerHost

/// The storvsp plugin as the host loads it: its parameters, the disk group, and the offer.
@Suite("storvsp plugin")
struct StorvspPluginTests {
    static let scsiType: [UInt8] = [0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f]

    static func image(_ size: Int) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("storvsp-\(UUID().uuidString).img").path
        guard FileManager.default.createFile(atPath: path, contents: Data(count: size)) else { throw CocoaError(.fileWriteUnknown) }
        return path
    }

    @Test func offersTheSyntheticSCSIControllerWithAStableInstance() throws {
        let disk = try Self.image(1 << 20)
        defer { unlink(disk) }
        let h = try PluginHarness(plugin: "storvsp", parameters: [
            "disk": .group([["lun": .int(0), "path": .string(disk)], ["lun": .int(1), "path": .string(""), "type": .string("cdrom")]]),
        ])
        #expect(h.library.info.kind == .synthetic)
        let offer = try #require(h.host.offers.values.first)
        #expect(h.host.offers.count == 1 && offer.interfaceType == Self.scsiType)
        let again = try PluginHarness(plugin: "storvsp")
        #expect(again.host.offers.values.first?.interfaceInstance == offer.interfaceInstance,
                "the default instance comes from the device id, so it is the same on every boot")
        let given = try PluginHarness(plugin: "storvsp", parameters: ["instance": .string("00112233-4455-6677-8899-aabbccddeeff")])
        #expect(given.host.offers.values.first?.interfaceInstance == [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
                                                                      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
    }

    @Test func badDisksAreRefusedNamingDeviceLUNAndFile() throws {
        let disk = try Self.image(4096)
        defer { unlink(disk) }
        func failure(_ parameters: [String: ParameterValidation.Input]) -> String {
            do {
                _ = try PluginHarness(plugin: "storvsp", parameters: parameters)
                return ""
            } catch { return "\(error)" }
        }
        let missing = failure(["disk": .group([["lun": .int(3), "path": .string("/nonexistent/x.img")]])])
        #expect(missing.contains("LUN 3") && missing.contains("/nonexistent/x.img"))
        let twice = failure(["disk": .group([["lun": .int(2), "path": .string(disk)], ["lun": .int(2), "path": .string(disk)]])])
        #expect(twice.contains("two disks at target 0 LUN 2"))
        let odd = try Self.image(1000)
        defer { unlink(odd) }
        #expect(failure(["disk": .group([["lun": .int(0), "path": .string(odd)]])]).contains("not a multiple"))
        #expect(failure(["disk": .group([["lun": .int(0), "path": .string("")]])]).contains("needs a path"))
        #expect(failure(["max_transfer_bytes": .int(4097)]).contains("multiple of 4096"))
        #expect(failure(["disk": .group([["lun": .int(64), "path": .string(disk)]])]) != "", "LUN 64 is outside the schema")
    }
}
