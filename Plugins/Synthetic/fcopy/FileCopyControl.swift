import VeneerIC
import VeneerPluginKit

/// `{"op":"copy","source":"/abs/host/path","destination":"/guest/dir/name","overwrite":bool,
/// "createPath":bool}` → `{"bytes":N}` once the guest closed the file. "overwrite" (replace an
/// existing file) and "createPath" (create missing directories) default to false. `.invalid` for
/// a relative source, a destination that is not an absolute path to a file, or a source that is
/// not a readable regular file; `.notNow` before the guest's daemon connected or while another
/// copy runs; `.failed` with the guest's reason (the file exists, its disk is full) otherwise.
/// The host times a request out after 30 s: large files copy on, and the outcome is logged.
struct FileCopyControlRequest: Decodable {
    var op: String
    var source: String
    var destination: String
    var overwrite: Bool?
    var createPath: Bool?
}

struct FileCopyResult: Encodable {
    var bytes: UInt64
}

extension FileCopy {
    func control(_ request: ControlRequest) -> ControlReply? {
        guard request.op == "copy" else { return ICControl.unknownOp(request, service: "fcopy", ops: ["copy"]) }
        let body: FileCopyControlRequest
        do { body = try ICControl.decode(request, as: FileCopyControlRequest.self) } catch { return error.reply }
        guard body.source.hasPrefix("/"), !body.source.contains("\0") else {
            return .failure(.invalid, message: "member 'source': '\(body.source.prefix(256))' is not an absolute host path")
        }
        guard !body.destination.contains("\0") else {
            return .failure(.invalid, message: "member 'destination' contains a NUL character")
        }
        let id = request.id
        let started = copy(hostFile: body.source, toGuestPath: body.destination, overwrite: body.overwrite ?? false,
                           createPath: body.createPath ?? false) { [weak self] outcome in
            switch outcome {
            case .copied(let bytes): self?.host.reply(to: id, .encoding(FileCopyResult(bytes: bytes)))
            case .failed(let why): self?.host.reply(to: id, .failure(.failed, message: why))
            }
        }
        switch started {
        case .success: return nil   // answered when the copy ends
        case .failure(.notReady): return ICControl.notConnected(endpoint)
        case .failure(.busy): return .failure(.notNow, message: CopyError.busy.description)
        case .failure(.badPath(let why)): return .failure(.invalid, message: "member 'destination': \(why)")
        case .failure(.hostFile(let why)): return .failure(.invalid, message: "member 'source': \(why)")
        case .failure(.notSent(let why)): return .failure(.failed, message: "the copy could not start: \(why)")
        }
    }
}

/// The metrics fcopy publishes (`veneer_device_fcopy_*`).
struct FileCopyMetrics {
    let copies: Metric
    let failures: Metric
    let bytes: Metric

    init(host: HostServices) throws(PluginError) {
        copies = try host.registerMetric("fcopy_files_total", help: "files copied into the guest", kind: .counter)
        failures = try host.registerMetric("fcopy_failures_total", help: "copies that failed", kind: .counter)
        bytes = try host.registerMetric("fcopy_bytes_total", help: "bytes of files copied into the guest", kind: .counter)
    }
}
