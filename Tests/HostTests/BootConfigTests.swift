import Foundation
import Testing
@testable import VeneerHost

@Suite struct BootConfigTests {
    let file = "/vms/test.toml"

    func parse(_ boot: String) throws(ConfigError) -> BootImage {
        try ConfigParser.parse("[boot]\n" + boot, file: file).boot
    }

    func expectError(_ boot: String, key: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: ConfigError.self, sourceLocation: sourceLocation) { _ = try parse(boot) }
        #expect(error?.file == file, sourceLocation: sourceLocation)
        #expect(error?.key == key, "\(String(describing: error))", sourceLocation: sourceLocation)
        #expect(error?.reason.contains(fragment) == true, "\(String(describing: error))", sourceLocation: sourceLocation)
    }

    @Test func flatIsTheDefaultFormat() throws {
        #expect(try parse("image = \"hello.bin\"\nmode = \"real\"\nload_address = 0x7c00")
            == .flat(FlatImage(path: "/vms/hello.bin", mode: .real, loadAddress: 0x7C00)))
    }

    @Test func bzImageAndPVH() throws {
        let text = "kernel = \"bzImage\"\ncmdline = \"console=ttyS0\"\ninitrd = \"/boot/initrd.img\"\n"
        #expect(try parse("format = \"bzimage\"\n" + text)
            == .bzImage(BzImage(path: "/vms/bzImage", cmdline: "console=ttyS0", initrd: "/boot/initrd.img")))
        #expect(try parse("format = \"pvh\"\n" + text)
            == .pvh(PVHImage(path: "/vms/bzImage", cmdline: "console=ttyS0", initrd: "/boot/initrd.img")))
        #expect(try parse("format = \"pvh\"\nkernel = \"vmlinux\"") == .pvh(PVHImage(path: "/vms/vmlinux")))
    }

    @Test func multibootWithModules() throws {
        let image = try parse("""
            format = "multiboot"
            kernel = "kernel.elf"
            cmdline = "answer=42"
            [[boot.module]]
            path = "initrd.tar"
            cmdline = "rootfs"
            [[boot.module]]
            path = "/abs/config.txt"
            """)
        #expect(image == .multiboot(MultibootImage(path: "/vms/kernel.elf", cmdline: "answer=42", modules: [
            .init(path: "/vms/initrd.tar", cmdline: "rootfs"),
            .init(path: "/abs/config.txt", cmdline: ""),
        ])))
        #expect(image.format == "multiboot")
        #expect(image.summary == "multiboot kernel /vms/kernel.elf with 2 module(s)")
    }

    @Test func keysOfAnotherFormatAreNamed() {
        expectError("format = \"bzimage\"\nkernel = \"k\"\nmode = \"long\"", key: "boot.mode",
                    "not used by format \"bzimage\": the bzimage boot protocol decides")
        expectError("format = \"bzimage\"\nimage = \"k\"", key: "boot.image", "the file is named by `kernel`")
        expectError("format = \"multiboot\"\nkernel = \"k\"\ninitrd = \"i\"", key: "boot.initrd",
                    "multiboot takes [[boot.module]] tables instead")
        expectError("format = \"pvh\"\nkernel = \"k\"\n[[boot.module]]\npath = \"m\"", key: "boot.module",
                    "only format \"multiboot\" takes [[boot.module]] tables; use `initrd`")
        expectError("image = \"x.bin\"\ncmdline = \"quiet\"", key: "boot.cmdline", "a flat image takes no command line")
        expectError("image = \"x.bin\"\nkernel = \"k\"", key: "boot.kernel", "a flat image is named by `image`")
    }

    @Test func unknownAndMissingKeys() {
        expectError("format = \"pvh\"\nkernel = \"k\"\nkernal_args = \"x\"", key: "boot.kernal_args", "unknown key")
        expectError("format = \"multiboot\"\nkernel = \"k\"\n[[boot.module]]\npath = \"m\"\nargs = \"x\"",
                    key: "boot.module[0].args", "unknown key")
        expectError("format = \"multiboot\"\nkernel = \"k\"\n[[boot.module]]\ncmdline = \"x\"",
                    key: "boot.module[0].path", "missing: the path of the module file")
        expectError("format = \"bzimage\"", key: "boot.kernel", "missing: the path of the kernel to boot")
        expectError("format = \"elf\"", key: "boot.format", "'elf' is not a supported format (supported: flat, bzimage, pvh, multiboot)")
        expectError("format = \"pvh\"\nkernel = \"k\"\ncmdline = 42", key: "boot.cmdline", "expected a string")
    }

    /// The shipped example configs parse, and name the files the guests' Makefile builds.
    @Test(arguments: ["multiboot", "pvh", "linux-boot"])
    func exampleConfigs(name: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let config = try ConfigParser.load(path: "\(root)/examples/\(name).toml")
        #expect(config.devices.map(\.plugin) == ["serial16550", "debug-exit"])
        switch config.boot {
        case .multiboot(let m):
            #expect(m.cmdline == "veneer-test answer=42")
            #expect(m.modules == [.init(path: "\(root)/examples/guests/multiboot-module.txt", cmdline: "mod-arg=7")])
        case .pvh(let p):
            #expect(p.cmdline == "veneer-test answer=42")
            #expect(p.initrd == "\(root)/examples/guests/build/test-initrd.txt")
        case .bzImage(let b):
            #expect(b.cmdline == "veneer-test answer=42")
            #expect(b.initrd == "\(root)/examples/guests/build/test-initrd.txt")
        case .flat:
            Issue.record("examples/\(name).toml is a flat config")
        }
    }
}
