import Glibc
import VeneerDisk

// veneer-disk-bench: DiskQueue alone (no VM) doing what fio does in bench/storage/run, on a raw
// file: keeps `qd` requests of `bs` bytes in flight for `seconds`, waiting on the queue's eventfd
// with poll the way a plugin's event loop does, then prints one result line:
//
//   engine <pattern> bs <bytes> qd <n> ios <n> seconds <s> iops <x> mbps <x> cpu-us-per-io <x>
//
// Usage: veneer-disk-bench --file PATH --pattern randread|randwrite|read|write --bs BYTES --qd N
//                          --seconds S [--cache none|writeback|unsafe]
// Exit status 2 for bad arguments, 1 when the file cannot be used or a request fails.

/// The raw file as a disk: byte n of the disk is byte n of the file.
final class BenchRawImage: DiskImage {
    let path: String
    let geometry: DiskGeometry
    let isReadOnly = false
    let supportsDiscard = false
    let fd: Int32

    init(path: String) throws(DiskError) {
        fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw DiskError(.io(errno: errno), path: path, "cannot open: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= 1 << 20 else {
            close(fd)
            throw DiskError(.invalidRequest, path: path, "must be a file of at least 1 MiB")
        }
        self.path = path
        geometry = DiskGeometry(virtualSize: UInt64(info.st_size) & ~4095, logicalBlockSize: 512, physicalBlockSize: 4096)
    }

    deinit { close(fd) }

    var dataFiles: [DiskDataFile] { [DiskDataFile(fd: fd, path: path, writable: true)] }
    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] { [.file(fd: fd, offset: offset, length: length)] }
    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping {
        DiskWriteMapping(extents: [.file(fd: fd, offset: offset, length: length)])
    }
    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {}
    func discard(offset: UInt64, length: UInt64) throws(DiskError) {}
    func flush() throws(DiskError) {}
}

struct Options {
    var file = ""
    var pattern = "randread"
    var blockSize = 4096
    var depth = 1
    var seconds = 10.0
    var cache = DiskCacheMode.none
}

/// Writes `text` to standard error.
func printError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
}

func usage(_ message: String) -> Never {
    printError("veneer-disk-bench: \(message)\nusage: veneer-disk-bench --file PATH --pattern randread|randwrite|read|write --bs BYTES --qd N --seconds S [--cache none|writeback|unsafe]\n")
    exit(2)
}

func parse(_ arguments: [String]) -> Options {
    var options = Options()
    var index = 0
    while index < arguments.count {
        guard index + 1 < arguments.count else { usage("\(arguments[index]) needs a value") }
        let value = arguments[index + 1]
        switch arguments[index] {
        case "--file": options.file = value
        case "--pattern":
            guard ["randread", "randwrite", "read", "write"].contains(value) else { usage("unknown pattern \(value)") }
            options.pattern = value
        case "--bs":
            guard let bytes = Int(value), bytes >= 512, bytes % 512 == 0, bytes <= 16 << 20 else { usage("--bs must be a multiple of 512 up to 16 MiB") }
            options.blockSize = bytes
        case "--qd":
            guard let depth = Int(value), (1...1024).contains(depth) else { usage("--qd must be 1...1024") }
            options.depth = depth
        case "--seconds":
            guard let seconds = Double(value), seconds > 0 else { usage("--seconds must be positive") }
            options.seconds = seconds
        case "--cache":
            guard let cache = DiskCacheMode(rawValue: value) else { usage("unknown cache mode \(value)") }
            options.cache = cache
        default: usage("unknown option \(arguments[index])")
        }
        index += 2
    }
    if options.file.isEmpty { usage("--file is required") }
    return options
}

func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    return user + system
}

func fail(_ message: String) -> Never {
    printError("veneer-disk-bench: \(message)\n")
    exit(1)
}

/// `value` with `digits` decimals (Foundation-free).
func fixed(_ value: Double, _ digits: Int) -> String {
    var scale = 1
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((value * Double(scale)).rounded())
    guard digits > 0 else { return "\(scaled)" }
    let fraction = String(scaled % scale)
    return "\(scaled / scale)." + String(repeating: "0", count: digits - fraction.count) + fraction
}

/// One run: `depth` buffers, each always in flight until the time is up.
struct Bench {
    let options: Options
    let image: BenchRawImage
    let queue: DiskQueue
    let memory: UnsafeMutableRawPointer
    let blocks: UInt64
    var random: UInt64 = 0x5EED
    var sequential: UInt64 = 0
    var completedIOs = 0
    var stopping = false

    init(_ options: Options) {
        self.options = options
        do {
            image = try BenchRawImage(path: options.file)
            queue = try DiskQueue(image: image, cache: options.cache, depth: options.depth)
        } catch {
            fail(error.description)
        }
        var allocation: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&allocation, 4096, options.blockSize * options.depth) == 0, let allocation else { fail("out of memory") }
        memset(allocation, 0xA5, options.blockSize * options.depth)
        memory = allocation
        blocks = image.geometry.virtualSize / UInt64(options.blockSize)
        if blocks == 0 { fail("\(options.file) is smaller than one \(options.blockSize)-byte block") }
    }

    /// The next request for buffer `slot`: a random or the next block, as the pattern says.
    mutating func request(slot: Int) -> DiskRequest {
        let block: UInt64
        if options.pattern.hasPrefix("rand") {
            random &+= 0x9e37_79b9_7f4a_7c15
            var z = random
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            block = (z ^ (z >> 31)) % blocks
        } else {
            block = sequential
            sequential = (sequential + 1) % blocks
        }
        let buffer = DiskBuffer(base: memory + slot * options.blockSize, count: options.blockSize)
        let offset = block * UInt64(options.blockSize)
        let operation: DiskOperation = options.pattern.hasSuffix("write")
            ? .write(offset: offset, buffers: [buffer], fua: false)
            : .read(offset: offset, buffers: [buffer])
        return DiskRequest(token: UInt64(slot), operation: operation)
    }

    /// Counts completions and makes the follow-up request for each one's buffer.
    mutating func handle(_ completions: [DiskCompletion]) -> [DiskRequest] {
        var next: [DiskRequest] = []
        for completion in completions {
            if case .failure(let error) = completion.result { fail("request failed: \(error)") }
            completedIOs += 1
            if !stopping { next.append(request(slot: Int(completion.token))) }
        }
        return next
    }

    mutating func run() {
        let startTime = now()
        let startCPU = cpuSeconds()
        let deadline = startTime + options.seconds
        var first: [DiskRequest] = []
        for slot in 0..<options.depth { first.append(request(slot: slot)) }
        var pending = handle(queue.submit(first))
        while queue.outstanding > 0 || !pending.isEmpty {
            if !pending.isEmpty {
                let batch = pending
                pending = handle(queue.submit(batch))
                continue
            }
            var watch = pollfd(fd: queue.eventFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&watch, 1, 1000)
            pending = handle(queue.reap())
            if !stopping && now() >= deadline { stopping = true }
        }
        let elapsed = now() - startTime
        let cpu = cpuSeconds() - startCPU
        queue.close()
        free(memory)

        let iops = Double(completedIOs) / elapsed
        let megabytes = iops * Double(options.blockSize) / 1e6
        let cpuPerIO = completedIOs > 0 ? cpu / Double(completedIOs) * 1e6 : 0
        print("engine \(options.pattern) bs \(options.blockSize) qd \(options.depth) ios \(completedIOs) seconds \(fixed(elapsed, 2)) iops \(fixed(iops, 0)) mbps \(fixed(megabytes, 1)) cpu-us-per-io \(fixed(cpuPerIO, 2))")
    }
}

var bench = Bench(parse(Array(CommandLine.arguments.dropFirst())))
bench.run()
