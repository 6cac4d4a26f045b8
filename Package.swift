// swift-tools-version:6.0
import PackageDescription

/// Device plugins: each is its own shared object (`lib<name>.so`), loaded at run time through the
/// C ABI in PluginSDK/include. `name` is what a VM config's `plugin = "..."` says.
struct PluginTarget {
    let name: String
    let module: String
    let path: String
    /// Library targets the plugin uses besides VeneerPluginKit (e.g. VeneerIC).
    var dependencies: [String] = []
}

let plugins: [PluginTarget] = [
    PluginTarget(name: "serial16550", module: "Serial16550", path: "Plugins/Emulated/serial16550"),
    PluginTarget(name: "debug-exit", module: "DebugExit", path: "Plugins/Emulated/debug-exit"),
    PluginTarget(name: "pit8254", module: "PIT8254", path: "Plugins/Emulated/pit8254"),
    PluginTarget(name: "cmos-rtc", module: "CMOSRTC", path: "Plugins/Emulated/cmos-rtc"),
    PluginTarget(name: "i8042", module: "I8042", path: "Plugins/Emulated/i8042"),
    PluginTarget(name: "acpi-pm", module: "ACPIPM", path: "Plugins/Emulated/acpi-pm"),
    PluginTarget(name: "pci-host", module: "PCIHost", path: "Plugins/Emulated/pci-host"),
    PluginTarget(name: "pci-testdev", module: "PCITestDevice", path: "Plugins/Emulated/pci-testdev"),
    PluginTarget(name: "vmbus-echo", module: "VMBusEcho", path: "Plugins/Synthetic/vmbus-echo"),
    PluginTarget(name: "heartbeat", module: "Heartbeat", path: "Plugins/Synthetic/heartbeat", dependencies: ["VeneerIC"]),
    PluginTarget(name: "timesync", module: "TimeSync", path: "Plugins/Synthetic/timesync", dependencies: ["VeneerIC"]),
    PluginTarget(name: "shutdown", module: "Shutdown", path: "Plugins/Synthetic/shutdown", dependencies: ["VeneerIC"]),
    PluginTarget(name: "fw-cfg", module: "FirmwareConfig", path: "Plugins/Emulated/fw-cfg"),
    PluginTarget(name: "hv-testdev", module: "HyperVTestDevice", path: "Plugins/Synthetic/hv-testdev"),
    PluginTarget(name: "param-testdev", module: "ParamTestDevice", path: "Plugins/Emulated/param-testdev"),
    PluginTarget(name: "storvsp", module: "StorVSP", path: "Plugins/Synthetic/storvsp",
                 dependencies: ["VeneerDisk", "StorVSPProtocol", "SCSIProtocol"]),
    PluginTarget(name: "kvp", module: "KVP", path: "Plugins/Synthetic/kvp", dependencies: ["VeneerIC"]),
    PluginTarget(name: "vss", module: "VSS", path: "Plugins/Synthetic/vss", dependencies: ["VeneerIC"]),
    PluginTarget(name: "fcopy", module: "FileCopy", path: "Plugins/Synthetic/fcopy", dependencies: ["VeneerIC"]),
    PluginTarget(name: "netvsp", module: "NetVSP", path: "Plugins/Synthetic/netvsp",
                 dependencies: ["NVSPProtocol", "RNDISProtocol", "VeneerNet"]),
]

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "Veneer",
    products: [
        .executable(name: "veneer", targets: ["veneer"]),
        .executable(name: "veneerd", targets: ["veneerd"]),
        .executable(name: "veneer-plugin-test", targets: ["veneer-plugin-test"]),
        .library(name: "VeneerPluginKit", targets: ["VeneerPluginKit"]),
        .library(name: "VeneerHarness", targets: ["VeneerHarness"]),
        .library(name: "VMBusProtocol", targets: ["VMBusProtocol"]),
        .library(name: "ICProtocol", targets: ["ICProtocol"]),
        .library(name: "VeneerIC", targets: ["VeneerIC"]),
    ] + plugins.map { .library(name: $0.name, type: .dynamic, targets: [$0.module]) },
    dependencies: [
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // veneerd: HTTP over a UNIX socket, the console WebSocket, logs and Prometheus metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // veneerd's tests: an HTTP client over the UNIX socket, and the OpenAPI document read as YAML.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C facts Swift cannot import: KVM ioctl numbers, non-variadic ioctl, packed epoll events.
        .target(name: "CKVM", path: "Sources/CKVM"),
        // The plugin ABI header, as a module for Swift; the .c file holds its layout checks.
        .target(name: "VeneerPluginABI", path: "PluginSDK/include", publicHeadersPath: "."),
        // VMBus wire formats: explicit little-endian layouts, no host logic; VSP plugins may use it.
        .target(name: "VMBusProtocol", path: "Sources/Protocols/VMBus", swiftSettings: strict),
        // Integration-component (heartbeat, shutdown, ...) message formats over VMBus pipes.
        .target(name: "ICProtocol", path: "Sources/Protocols/IC", swiftSettings: strict),
        // veneerd <-> worker control messages (newline-delimited JSON over the worker's control socket).
        .target(name: "WorkerControlProtocol", path: "Sources/Protocols/WorkerControl", swiftSettings: strict),
        // VHDX on-disk structures: little-endian encode/decode and CRC-32C, no file I/O.
        .target(name: "VHDXFormat", path: "Sources/Protocols/VHDX", swiftSettings: strict),
        // storvsp's VMBus packets (vstor_packet, the SCSI request block, channel properties).
        .target(name: "StorVSPProtocol", path: "Sources/Protocols/StorVSP", swiftSettings: strict),
        // netvsp's wire formats: NVSP messages and transfer-page headers; RNDIS messages, PPIs, NDIS objects.
        .target(name: "NVSPProtocol", path: "Sources/Protocols/NVSP", swiftSettings: strict),
        .target(name: "RNDISProtocol", path: "Sources/Protocols/RNDIS", swiftSettings: strict),
        // SCSI (SPC/SBC/MMC basics): CDBs, sense data, INQUIRY and VPD, mode pages, capacity data.
        .target(name: "SCSIProtocol", path: "Sources/Protocols/SCSI", swiftSettings: strict),
        .target(
            name: "VeneerHost",
            dependencies: ["CKVM", "VeneerPluginABI", "VMBusProtocol", "WorkerControlProtocol", "TOMLKit",
                           .product(name: "Logging", package: "swift-log")],
            path: "Sources/Host",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "veneer",
            dependencies: ["VeneerHost", "CKVM", "VeneerDisk", "VeneerNet", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           // `veneer ctl`: veneerd's API types, its HTTP client and the console's WebSocket.
                           "VeneerManagement", "WorkerControlProtocol",
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOWebSocket", package: "swift-nio")],
            path: "Sources/veneer",
            swiftSettings: strict
        ),
        // veneerd's core: VM definitions under a state directory, one supervised worker per VM.
        .target(name: "VeneerManagement",
                dependencies: ["WorkerControlProtocol", "CManagementSupport", "VeneerHost",
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio")],
                path: "Sources/Management", swiftSettings: strict),
        // posix_spawn's setsid/chdir/closefrom actions and pidfd_open: GNU extensions Swift's Glibc hides.
        .target(name: "CManagementSupport", path: "Sources/ManagementSupport"),
        // VMSupervisor against real `veneer run --control-dir` workers and test guests.
        .testTarget(name: "ManagementTests", dependencies: ["VeneerManagement", "WorkerControlProtocol"],
                    path: "Tests/ManagementTests", swiftSettings: strict),
        // veneerd's HTTP API (routes, problem+json, metrics, console, socket security) over VMManaging.
        .target(
            name: "VeneerdAPI",
            dependencies: [
                "VeneerManagement", "WorkerControlProtocol",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/veneerd/API",
            swiftSettings: strict
        ),
        // The management service: `veneerd --state-dir DIR`, serving VeneerdAPI on a UNIX socket.
        .executableTarget(
            name: "veneerd",
            dependencies: [
                "VeneerdAPI", "VeneerManagement", "WorkerControlProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/veneerd/Main",
            swiftSettings: strict
        ),
        // Host networking for NICs: the switch backend (Linux bridges, TAP with vnet headers), port policy.
        .target(name: "VeneerNet", dependencies: ["NetlinkProtocol", "VeneerNetSupport"], path: "PluginSDK/Net", swiftSettings: strict),
        // rtnetlink wire format (nlmsghdr, nlattr, ifinfomsg, ifaddrmsg, bridge VLAN info): encode/decode only.
        .target(name: "NetlinkProtocol", path: "Sources/Protocols/Netlink", swiftSettings: strict),
        // TAP ioctls (struct ifreq), AF_PACKET and unshare(CLONE_NEWNET): not in Swift's Glibc module.
        .target(name: "VeneerNetSupport", path: "PluginSDK/NetSupport"),
        .target(name: "VeneerSDKSupport", path: "PluginSDK/CSupport"),
        .target(name: "VeneerPluginKit", dependencies: ["VeneerPluginABI", "VeneerSDKSupport"], path: "PluginSDK/Swift", swiftSettings: strict),
        // The IC framework every integration-service plugin builds on: negotiation, transactions, timeouts.
        .target(name: "VeneerIC", dependencies: ["VeneerPluginKit", "ICProtocol"], path: "PluginSDK/IC", swiftSettings: strict),
        // Disk images (raw, VHDX) and the libaio engine that moves their data: used by storvsp and `veneer disk`.
        // libaio (and the Linux calls around it Swift's Glibc lacks) for VeneerDisk's engine.
        .target(name: "CLibAIO", path: "PluginSDK/CLibAIO", linkerSettings: [.linkedLibrary("aio")]),
        .target(name: "VeneerDisk", dependencies: ["CLibAIO", "VHDXFormat", "VeneerDiskSupport"], path: "PluginSDK/Disk", swiftSettings: strict),
        // fallocate(PUNCH_HOLE) for raw discard: not in Swift's Glibc module.
        .target(name: "VeneerDiskSupport", path: "PluginSDK/DiskSupport"),
        .target(name: "VeneerHarness", dependencies: ["VeneerHost", "VeneerPluginABI", "VMBusProtocol"], path: "PluginSDK/Harness/Library", swiftSettings: strict),
        .executableTarget(name: "veneer-plugin-test", dependencies: ["VeneerHarness"], path: "PluginSDK/Harness/CLI", swiftSettings: strict),
        .testTarget(name: "HostTests", dependencies: ["VeneerHost", "VeneerHarness", "VeneerPluginKit", "VMBusProtocol"], path: "Tests/HostTests", swiftSettings: strict),
        .testTarget(name: "PluginTests", dependencies: ["VeneerHarness", "ICProtocol", "VMBusProtocol"], path: "Tests/PluginTests", swiftSettings: strict),
        .testTarget(name: "ICTests", dependencies: ["ICProtocol", "VeneerIC"], path: "Tests/ICTests", swiftSettings: strict),
        // DiskQueue alone on a raw file, for bench/storage/run (against fio).
        .executableTarget(name: "veneer-disk-bench", dependencies: ["VeneerDisk"], path: "bench/storage/DiskBench", swiftSettings: strict),
        .testTarget(name: "DiskTests", dependencies: ["VeneerDisk", "VHDXFormat"], path: "Tests/DiskTests", swiftSettings: strict),
        // storvsp's wire formats and its SCSI target and channel logic, below the plugin ABI.
        .testTarget(name: "StorVSPTests", dependencies: ["StorVSP", "StorVSPProtocol", "SCSIProtocol", "VeneerDisk", "VeneerPluginKit", "VeneerPluginABI"],
                    path: "Tests/StorVSPTests", swiftSettings: strict),
        .testTarget(name: "VeneerdTests", dependencies: [
            "VeneerdAPI", "VeneerManagement", "WorkerControlProtocol",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            .product(name: "Yams", package: "Yams"),
        ], path: "Tests/VeneerdTests", exclude: ["Fixtures"], swiftSettings: strict),
        // netvsp: its wire formats, and the plugin through the harness (a test bundle cannot link a
        // second plugin module: each defines veneer_plugin_entry).
        .testTarget(name: "NetVSPTests", dependencies: ["NVSPProtocol", "RNDISProtocol", "VeneerNet", "VeneerPluginKit",
                                                        "VeneerHarness", "VeneerHost", "VMBusProtocol", "VeneerPluginABI"],
                    path: "Tests/NetVSPTests", swiftSettings: strict),
        .testTarget(name: "NetTests", dependencies: ["VeneerNet", "NetlinkProtocol", "VeneerNetSupport"], path: "Tests/NetTests", swiftSettings: strict),
        .testTarget(name: "IntegrationTests", dependencies: ["VeneerHost", "WorkerControlProtocol"], path: "Tests/IntegrationTests", swiftSettings: strict),
    ] + plugins.map {
        .target(name: $0.module, dependencies: ["VeneerPluginKit"] + $0.dependencies.map { .target(name: $0) }, path: $0.path, swiftSettings: strict)
    },
    swiftLanguageModes: [.v6]
)
