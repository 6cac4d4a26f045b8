import Foundation
import Testing
import VeneerHarness
import VeneerHost

/// ABI 1.7's parameter groups (VENEER_PARAM_GROUP) end to end: the loader reads a group's members
/// through the same bounded copies as the rest of the descriptor and refuses every broken promise
/// naming the file, the parameter and the field (Tests/Fixtures/plugins/groups.c, one macro per
/// promise); create's arguments carry each group's tables as `items`, table by table in member
/// order with defaults filled in; `veneer plugins --describe` shows the members; and the Swift SDK
/// and the harness speak the same shape (`Parameters.groups`, `.group([[...]])`).
@Suite struct ParameterGroupABITests {
    static let source = TestSupport.repoRoot + "/Tests/Fixtures/plugins/groups.c"

    static func plugin(_ defines: String...) throws -> String {
        try TestSupport.compilePlugin(try String(contentsOfFile: source, encoding: .utf8), defines: defines, name: "groups")
    }

    static let members: [ParameterSchema] = [
        ParameterSchema(name: "lun", doc: "logical unit", kind: .int(min: 0, max: 63), defaultText: nil),
        ParameterSchema(name: "path", doc: "the image", kind: .path(words: ["none"]), defaultText: nil),
        ParameterSchema(name: "cache", doc: "cache mode", kind: .choice(["none", "writeback", "unsafe"]), defaultText: "none"),
        ParameterSchema(name: "read_only", doc: "refuse writes", kind: .bool, defaultText: "false"),
    ]

    // MARK: loader

    @Test func theLoaderReadsAGroupAndItsMembers() throws {
        let library = try PluginLibrary(path: try Self.plugin())
        #expect(library.info.parameters.map(\.name) == ["port", "disk"])
        #expect(library.info.parameters[1] == ParameterSchema(name: "disk", doc: "one table per disk",
                                                              kind: .group(min: 0, max: 4, members: Self.members), defaultText: nil))
    }

    @Test(arguments: [
        (define: "GROUP_DEFAULT", field: "params[1].default_value", problem: "'x' on a group: must be NULL (an absent group is zero tables)"),
        (define: "MEMBER_COUNT=65", field: "params[1].member_count", problem: "65 is outside 1...64"),
        (define: "MEMBER_COUNT=0", field: "params[1].member_count", problem: "0 is outside 1...64"),
        (define: "MEMBERS_NULL", field: "params[1].members", problem: "is NULL but member_count is 4"),
        (define: "MEMBERS_DANGLING", field: "params[1].members", problem: "the 4 x 88 bytes at 0x10 are not all readable"),
        (define: #"MEMBER_NAME="lun""#, field: "params[1].members[1].name", problem: "'lun' is repeated in group 'disk'"),
        (define: #"MEMBER_NAME="Path""#, field: "params[1].members[1].name", problem: "'Path' is not [a-z][a-z0-9_]*"),
        (define: "MEMBER_NESTED", field: "params[1].members[1].type", problem: "6 (group) inside group 'disk': groups do not nest"),
        (define: "MEMBER_TYPE=9", field: "params[1].members[1].type",
         problem: "9 is not 1 (bool), 2 (int), 3 (string), 4 (choice), 5 (path) or 6 (group)"),
        (define: "MEMBER_DOC_AT_GUARD", field: "params[1].members[0].doc", problem: "runs into unreadable memory after 12 bytes"),
        (define: "MEMBER_BAD_DEFAULT", field: "params[1].members[2].default_value", problem: "'fast' is not one of none, writeback, unsafe"),
        (define: "GROUP_MIN=-1", field: "params[1].min", problem: "-1 tables: must be 0...max (4)"),
        (define: "GROUP_MIN=5", field: "params[1].min", problem: "5 tables: must be 0...max (4)"),
        (define: "GROUP_MAX=4097", field: "params[1].max", problem: "4097 tables exceeds 4096"),
        (define: "GROUP_STRUCT_SIZE=56", field: "params[1].struct_size",
         problem: "56 does not reach a group's members and member_count (a group needs 72)"),
    ])
    func aBrokenGroupIsRefusedNamingTheField(define: String, field: String, problem: String) throws {
        let path = try Self.plugin(define)
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        guard case .invalidField(let p, let f, let text) = error else {
            Issue.record("expected a refused field, got \(String(describing: error))")
            return
        }
        #expect(p == path && f == field, "\(error.map { "\($0)" } ?? "")")
        #expect(text.contains(problem), "\(text)")
        let line = error?.description ?? ""
        #expect(line.hasPrefix("plugin \(path) has a malformed descriptor: \(field): ") && !line.contains("\n"), "\(line)")
    }

    /// A table at 1.6's stride without the reserved tail (56 bytes) still loads; 1.7 took the
    /// group's fields from that tail, so a group needs the full stride.
    @Test func theShortStrideStillLoadsButCannotCarryAGroup() throws {
        let source = #"""
            #include "veneer_plugin.h"
            #include <stdlib.h>
            struct spec56 { uint32_t struct_size, type; const char *name, *doc, *default_value; int64_t min, max; const char *choices; };
            _Static_assert(sizeof(struct spec56) == 56, "1.6's spec without its tail");
            struct veneer_device { int unused; };
            static const struct spec56 params[] = {
                { 56, VENEER_PARAM_INT, "port", "first port", "0x600", 0, 0xffff, 0 },
                { 56, TYPE, "disk", "disks", 0, 0, 4, 0 },
            };
            static veneer_device *create(const veneer_host_api *api, veneer_host *host, const veneer_create_args *args) {
                (void)api; (void)host; (void)args;
                return calloc(1, sizeof(veneer_device));
            }
            static void destroy(veneer_device *dev) { free(dev); }
            static const veneer_plugin_descriptor descriptor = {
                .struct_size = sizeof(veneer_plugin_descriptor), .abi_major = VENEER_ABI_MAJOR, .abi_minor = ABI_MINOR,
                .name = "short", .version = "0.1", .summary = "56-byte parameter specs", .kind = VENEER_KIND_EMULATED,
                .state_version = 1, .param_count = 2, .param_spec_size = 56, .params = (const veneer_param_spec *)params,
                .create = create, .destroy = destroy,
            };
            const veneer_plugin_descriptor *veneer_plugin_entry(void) { return &descriptor; }
            """#
        let old = try PluginLibrary(path: try TestSupport.compilePlugin(source, defines: ["ABI_MINOR=6", "TYPE=VENEER_PARAM_BOOL"], name: "short"))
        #expect(old.info.parameters.map(\.kind) == [.int(min: 0, max: 0xffff), .bool])
        let path = try TestSupport.compilePlugin(source, defines: ["ABI_MINOR=7", "TYPE=VENEER_PARAM_GROUP"], name: "short")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .invalidField(path: path, field: "param_spec_size",
                                       problem: "56 does not reach a group's members and member_count (a group needs 72)"))
    }

    /// A plugin built for 1.6 or older cannot declare a group: type 6 meant nothing then, and
    /// its `members` bytes were reserved.
    @Test(arguments: 0...6)
    func aPluginOfAnEarlierMinorCannotDeclareAGroup(minor: Int) throws {
        let path = try Self.plugin("ABI_MINOR=\(minor)")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        guard case .invalidField(_, let field, let problem) = error else {
            Issue.record("expected a refused field, got \(String(describing: error))")
            return
        }
        #expect(field == "params[1].type")
        #expect(problem.hasPrefix("6 is not 1 (bool)") && problem.contains("6 (group)") && problem.contains("ABI 1.7"), "\(problem)")
    }

    // MARK: create's arguments

    /// What the C plugin read from `items`: each table's members in order, with their types,
    /// defaults filled in and paths resolved; the table count in int_value.
    @Test func createGetsEachTableInMemberOrderWithDefaults() throws {
        let h = try PluginHarness(plugin: try Self.plugin(), parameters: [
            "disk": .group([
                ["lun": .int(3), "path": .string("/vm/a.vhdx")],
                ["path": .string("none"), "lun": .int(0), "cache": .string("unsafe"), "read_only": .bool(true)],
            ]),
        ])
        #expect(h.host.logLines == [
            "disk[0]: lun=3 path=/vm/a.vhdx cache=none read_only=0",
            "disk[1]: lun=0 path=none cache=unsafe read_only=1",
            "2 disks",
        ])
        #expect(h.host.errors.isEmpty)
    }

    @Test func anAbsentGroupIsZeroTables() throws {
        let h = try PluginHarness(plugin: try Self.plugin())
        #expect(h.host.logLines == ["0 disks"])
    }

    @Test func theHarnessValidatesTablesAsTheConfigDoes() throws {
        let path = try Self.plugin("GROUP_MIN=1", "GROUP_MAX=2")
        func problem(_ disk: ParameterInput?) -> String {
            let parameters: [String: ParameterInput] = disk.map { ["disk": $0] } ?? [:]
            do { _ = try PluginHarness(plugin: path, parameters: parameters) } catch { return "\(error)" }
            return ""
        }
        let one: [String: ParameterInput] = ["lun": .int(0), "path": .string("a")]
        #expect(problem(nil) == "disk: required: at least 1 [[device.disk]] table")
        #expect(problem(.group([])) == "disk: required: at least 1 [[device.disk]] table")
        #expect(problem(.group([one, one, one])) == "disk: 3 tables, more than 2")
        #expect(problem(.string("a")) == "disk: expected an array of tables ([[device.disk]], one table each), got a string")
        #expect(problem(.group([one, ["lun": .int(1)]])) == "disk[1].path: required parameter missing (path or none: the image)")
        #expect(problem(.group([one, ["lun": .int(64), "path": .string("b")]])) == "disk[1].lun: 64 (0x40) is outside 0...63")
        #expect(problem(.group([["lun": .int(0), "path": .string("a"), "cache": .string("fast")]]))
                == "disk[0].cache: 'fast' is not one of none, writeback, unsafe")
        #expect(problem(.group([["lun": .int(0), "path": .string("a"), "size": .int(1)]]))
                == "disk[0].size: unknown key (a disk table takes: lun, path, cache, read_only)")
        #expect(problem(.group([["lun": .int(0), "path": .string("a"), "read_only": .string("yes")]]))
                == "disk[0].read_only: expected bool, got a string")
        #expect(problem(.group([one])) == "")
    }

    /// A plugin whose definition has no `disk`, or a value typed for another kind, is told so.
    @Test func aGroupValueForAPlainParameterIsRefused() throws {
        let path = try Self.plugin()
        let e = #expect(throws: ParameterValidation.Problem.self) {
            _ = try PluginHarness(plugin: path, parameters: ["port": .group([[:]])])
        }
        #expect(e?.description == "port: expected integer 0...65535, got an array of tables")
    }

    // MARK: the Swift SDK (param-testdev)

    @Test func aSwiftPluginReadsItsGroupThroughParametersGroups() throws {
        let h = try PluginHarness(plugin: "param-testdev", parameters: [
            "port": .int(0x700),
            "disk": .group([
                ["lun": .int(5), "path": .string("/img/a.raw"), "read_only": .bool(true)],
                ["lun": .int(2), "path": .string("none"), "cache": .string("writeback")],
            ]),
        ])
        #expect(h.host.logLines == [
            "disk[0]: lun=5 path=/img/a.raw cache=none read_only=true",
            "disk[1]: lun=2 path=none cache=writeback read_only=false",
        ])
        #expect(h.read(port: 0x701) == 2)
        #expect(h.read(port: 0x702) == 5 && h.read(port: 0x703) == 1)
        h.write(port: 0x700, 1)
        #expect(h.read(port: 0x702) == 2 && h.read(port: 0x703) == 0)
        h.write(port: 0x700, 2)
        #expect(h.read(port: 0x702) == 0xff)
    }

    @Test func aSwiftPluginWithoutTablesSeesNone() throws {
        let h = try PluginHarness(plugin: "param-testdev")
        #expect(h.read(port: 0x6f1) == 0 && h.host.logLines.isEmpty)
    }

    /// The plugin's own checks across tables see every table: a repeated lun is refused.
    @Test func aSwiftPluginChecksAcrossTables() throws {
        let e = #expect(throws: PluginDeviceError.self) {
            _ = try PluginHarness(plugin: "param-testdev", parameters: [
                "disk": .group([["lun": .int(1), "path": .string("a")], ["lun": .int(1), "path": .string("b")]]),
            ])
        }
        #expect(e?.reason == "disk[1].lun: 1 is already disk[0]'s", "\(String(describing: e))")
    }

    /// The SDK's descriptor carries the group as the loader reads it back.
    @Test func theSDKExportsTheGroupSchema() throws {
        let library = try PluginLibrary(path: try PluginRegistry.standard().locate("param-testdev"))
        guard case .group(let min, let max, let members)? = library.info.parameters.first(where: { $0.name == "disk" })?.kind else {
            Issue.record("no disk group in \(library.info.parameters)")
            return
        }
        #expect(min == 0 && max == 8)
        #expect(members.map(\.name) == ["lun", "path", "cache", "read_only"])
        #expect(members.map(\.defaultText) == [nil, nil, "none", "false"])
        #expect(members[1].kind == .path(words: ["none"]))
    }

    // MARK: veneer-plugin-test

    /// `--param disk[1].lun=4` gives a group's tables to the conformance suite; the plugin's
    /// own refusal and a table that misses a required member fail create.
    @Test func thePluginTestToolTakesGroupTables() throws {
        let tool = TestSupport.productsDirectory + "/veneer-plugin-test"
        let good = try TestSupport.run(tool, ["param-testdev", "--accesses", "200", "--param", "disk[0].lun=3", "--param", "disk[0].path=none",
                                              "--param", "disk[1].lun=4", "--param", "disk[1].path=b.img", "--param", "disk[1].read_only=true"])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("PASS  create: instance created with defaults and disk[0].lun=3 disk[0].path=none disk[1].lun=4"), "\(good.stdout)")
        let repeated = try TestSupport.run(tool, ["param-testdev", "--param", "disk[0].lun=3", "--param", "disk[0].path=a",
                                                  "--param", "disk[1].lun=3", "--param", "disk[1].path=b"])
        #expect(repeated.status == 1 && repeated.stdout.contains("FAIL  create: device 'dut' (plugin param-testdev): create failed: disk[1].lun: 3 is already disk[0]'s"),
                "\(repeated.stdout)")
        let gap = try TestSupport.run(tool, ["param-testdev", "--param", "disk[1].lun=3", "--param", "disk[1].path=b"])
        #expect(gap.status == 1 && gap.stdout.contains("FAIL  create: disk[0].lun: required parameter missing"), "\(gap.stdout)")
        let notAGroup = try TestSupport.run(tool, ["param-testdev", "--param", "port[0].x=1"])
        #expect(notAGroup.status == 1 && notAGroup.stdout.contains("FAIL  create: port[0].x: 'port' is not a parameter group of this plugin"),
                "\(notAGroup.stdout)")
    }

    // MARK: veneer plugins --describe

    @Test func describeShowsTheGroupAndItsMembersIndented() throws {
        let path = try Self.plugin()
        let r = try TestSupport.run(TestSupport.productsDirectory + "/veneer", ["plugins", "--describe", path])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let start = lines.firstIndex(of: "  parameters:") ?? lines.count
        #expect(Array(lines.dropFirst(start)) == [
            "  parameters:",
            "    port (integer 0...65535, default 0x600): the register",
            "    disk (group of 0...4 tables, [[device.disk]]): one table per disk",
            "      lun (integer 0...63, required): logical unit",
            "      path (path or none, required): the image",
            "      cache (one of none, writeback, unsafe, default none): cache mode",
            "      read_only (bool, default false): refuse writes",
        ], "\(r.stdout)")
    }
}
