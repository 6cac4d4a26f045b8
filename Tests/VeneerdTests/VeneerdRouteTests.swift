import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import VeneerManagement
import WorkerControlProtocol
@testable import VeneerdAPI

/// The HTTP routes over an in-test VMManaging: status codes, problem+json naming the field,
/// what reaches the manager, and the Hyper-V transition rules surfacing as 409 with the state.
@Suite struct VeneerdRouteTests {
    @Test func serviceInfoNamesThisProcessAndItsStateDirectory() async throws {
        try await APIHarness.with { api in
            let reply = try await api.request(.GET, "/v1")
            #expect(reply.status == 200)
            let info = try reply.json()
            #expect(info["pid"] as? Int == Int(getpid()))
            #expect(info["stateDirectory"] as? String == api.state.path)
            #expect(info["version"] as? String == VeneerdAPI.version)
        }
    }

    @Test func defineListInfoAndDuplicate() async throws {
        try await APIHarness.with { api in
            let created = try await api.define("alpha")
            #expect(created.status == 201)
            #expect(created.header("Location") == "/v1/vms/alpha")
            #expect(try created.json()["summary"].flatMap { ($0 as? [String: Any])?["state"] as? String } == "Off")

            let list = try await api.request(.GET, "/v1/vms")
            #expect(list.status == 200)
            let items = try JSONSerialization.jsonObject(with: Data(list.body)) as? [[String: Any]]
            #expect(items?.map { $0["name"] as? String } == ["alpha"])

            let info = try await api.request(.GET, "/v1/vms/alpha")
            #expect(info.status == 200)
            #expect(try info.json()["directory"] as? String == "/tmp")

            let again = try await api.define("alpha")
            #expect(again.status == 409)
            #expect(again.header("Content-Type") == "application/problem+json")
            #expect(try again.json()["field"] as? String == "name")
        }
    }

    /// Every member of a definition is checked and a failure names it.
    @Test(arguments: [
        (#"{"name":"../etc","config":"[machine]","directory":"/tmp"}"#, 400, "name"),
        (#"{"config":"[machine]"}"#, 400, "directory"),
        (#"{"name":"a","directory":"/tmp"}"#, 400, "config"),
        (#"{"name":"a","config":"","directory":"/tmp"}"#, 400, "config"),
        (#"{"name":"a","config":"[machine]","directory":"relative/dir"}"#, 400, "directory"),
        (#"{"name":"a","config":"[machine]","directory":"/tmp","restartPolicy":{"mode":"sometimes"}}"#, 400, "restartPolicy.mode"),
        (#"{"name":"a","config":"[machine]","directory":"/tmp","restartPolicy":{"initialBackoffMs":0}}"#, 400, "restartPolicy.initialBackoffMs"),
        (#"{"name":"a","config":"[machine]","directory":"/tmp","restartPolicy":{"initialBackoffMs":5000,"maxBackoffMs":10}}"#, 400, "restartPolicy.maxBackoffMs"),
        (#"{"name":5,"config":"[machine]","directory":"/tmp"}"#, 400, "name"),
        (#"{"name":"a","config":"no machine table","directory":"/tmp"}"#, 422, "config"),
        (#"[1,2]"#, 400, "body"),
        (#"{not json"#, 400, "body"),
    ])
    func invalidDefinitionsNameTheField(body: String, status: Int, field: String) async throws {
        try await APIHarness.with { api in
            let reply = try await api.request(.POST, "/v1/vms", json: body)
            #expect(reply.status == status, "\(body): \(reply.text)")
            #expect(reply.header("Content-Type") == "application/problem+json")
            let problem = try reply.json()
            #expect(problem["field"] as? String == field, "\(body): \(reply.text)")
            #expect(problem["status"] as? Int == status)
            #expect((problem["type"] as? String)?.hasPrefix("urn:veneer:problem:") == true)
            #expect(await api.manager.vms.isEmpty)
        }
    }

    @Test func jsonBodiesAreLimitedAndTyped() async throws {
        try await APIHarness.with { api in
            let big = String(repeating: "x", count: RequestBodies.jsonLimit + 1)
            let tooLarge = try await api.request(.POST, "/v1/vms", json: #"{"config":"\#(big)"}"#)
            #expect(tooLarge.status == 413)
            #expect(try tooLarge.json()["field"] as? String == "body")

            let wrongType = try await api.request(.POST, "/v1/vms", bytes: Array(#"{"name":"a"}"#.utf8), headers: [("Content-Type", "text/plain")])
            #expect(wrongType.status == 415)
        }
    }

    @Test func transitionsFollowTheStateModelAndConflictsCarryTheState() async throws {
        try await APIHarness.with { api in
            try await api.define("vm1")
            let started = try await api.request(.POST, "/v1/vms/vm1/start")
            #expect(started.status == 200)
            #expect((try started.json()["summary"] as? [String: Any])?["state"] as? String == "Running")

            let twice = try await api.request(.POST, "/v1/vms/vm1/start")
            #expect(twice.status == 409)
            #expect(try twice.json()["state"] as? String == "Running")

            #expect(try await api.request(.POST, "/v1/vms/vm1/pause").status == 200)
            let resumeCheck = try await api.request(.POST, "/v1/vms/vm1/pause")
            #expect(try resumeCheck.json()["state"] as? String == "Paused")
            #expect(try await api.request(.POST, "/v1/vms/vm1/resume").status == 200)
            #expect(try await api.request(.POST, "/v1/vms/vm1/reset").status == 200)

            let deleteRunning = try await api.request(.DELETE, "/v1/vms/vm1")
            #expect(deleteRunning.status == 409)
            #expect(try deleteRunning.json()["state"] as? String == "Running")

            #expect(try await api.request(.POST, "/v1/vms/vm1/stop").status == 200)
            #expect(try await api.request(.DELETE, "/v1/vms/vm1").status == 204)
            let gone = try await api.request(.GET, "/v1/vms/vm1")
            #expect(gone.status == 404)
            #expect(try gone.json()["type"] as? String == "urn:veneer:problem:not-found")
        }
    }

    @Test func badNamesInThePathAreRefusedBeforeTheManager() async throws {
        try await APIHarness.with { api in
            for path in ["/v1/vms/..", "/v1/vms/%2e%2e", "/v1/vms/a%2Fb/start", "/v1/vms/-x", "/v1/vms/%ZZ"] {
                let reply = try await api.request(path.hasSuffix("start") ? .POST : .GET, path)
                #expect(reply.status == 400, "\(path): \(reply.text)")
                #expect(try reply.json()["field"] as? String == "name", "\(path)")
            }
        }
    }

    @Test func shutdownTakesAnOptionalBody() async throws {
        try await APIHarness.with { api in
            try await api.define("s")
            _ = try await api.request(.POST, "/v1/vms/s/start")
            let long = String(repeating: "r", count: 513)
            let tooLong = try await api.request(.POST, "/v1/vms/s/shutdown", json: #"{"reason":"\#(long)"}"#)
            #expect(tooLong.status == 400)
            #expect(try tooLong.json()["field"] as? String == "reason")
            let badForce = try await api.request(.POST, "/v1/vms/s/shutdown", json: #"{"force":"yes"}"#)
            #expect(try badForce.json()["field"] as? String == "force")
            let ok = try await api.request(.POST, "/v1/vms/s/shutdown", json: #"{"force":true,"reason":"maintenance"}"#)
            #expect(ok.status == 200)
            try await api.define("t")
            _ = try await api.request(.POST, "/v1/vms/t/start")
            #expect(try await api.request(.POST, "/v1/vms/t/shutdown").status == 200)
        }
    }

    @Test func deviceRequestsPassTheObjectThroughAndMapWorkerErrors() async throws {
        try await APIHarness.with { api in
            try await api.define("d")
            let off = try await api.request(.POST, "/v1/vms/d/devices/kvp0/requests", json: #"{"op":"list","pool":"guest"}"#)
            #expect(off.status == 409)
            #expect(try off.json()["state"] as? String == "Off")
            _ = try await api.request(.POST, "/v1/vms/d/start")

            let listed = try await api.request(.POST, "/v1/vms/d/devices/kvp0/requests", json: #"{"op":"list","pool":"guest"}"#)
            #expect(listed.status == 200)
            #expect(listed.header("Content-Type") == "application/json")
            #expect(try listed.json()["items"] != nil)
            #expect(await api.manager.deviceRequests.last?.body == #"{"op":"list","pool":"guest"}"#)

            let notObject = try await api.request(.POST, "/v1/vms/d/devices/kvp0/requests", json: "[1]")
            #expect(notObject.status == 400)
            let noOp = try await api.request(.POST, "/v1/vms/d/devices/kvp0/requests", json: #"{"pool":"guest"}"#)
            #expect(try noOp.json()["field"] as? String == "op")
            let noDevice = try await api.request(.POST, "/v1/vms/d/devices/nic9/requests", json: #"{"op":"x"}"#)
            #expect(noDevice.status == 404)
            #expect(try noDevice.json()["field"] as? String == "device")
            let unsupported = try await api.request(.POST, "/v1/vms/d/devices/kvp0/requests", json: #"{"op":"defrag"}"#)
            #expect(unsupported.status == 501)
            let slow = try await api.request(.POST, "/v1/vms/d/devices/kvp0/requests", json: #"{"op":"slow"}"#)
            #expect(slow.status == 504)
        }
    }

    @Test func kvpRoutesAreRequestsToTheKVPDevice() async throws {
        try await APIHarness.with { api in
            try await api.define("k")
            let off = try await api.request(.GET, "/v1/vms/k/kvp")
            #expect(off.status == 409)
            _ = try await api.request(.POST, "/v1/vms/k/start")

            #expect(try await api.request(.PUT, "/v1/vms/k/kvp/Host%20Name", json: #"{"value":"build-01"}"#).status == 204)
            let set = await api.manager.deviceRequests.last
            #expect(set?.device == "kvp0")
            #expect(set?.body == #"{"key":"Host Name","op":"set","value":"build-01"}"#)

            let got = try await api.request(.GET, "/v1/vms/k/kvp/Host%20Name")
            #expect(got.status == 200)
            #expect(try got.json()["value"] as? String == "build-01")
            #expect(await api.manager.deviceRequests.last?.body == #"{"key":"Host Name","op":"get","pool":"external"}"#)

            let list = try await api.request(.GET, "/v1/vms/k/kvp?pool=external")
            #expect((try list.json()["items"] as? [[String: String]])?.first?["key"] == "Host Name")

            #expect(try await api.request(.DELETE, "/v1/vms/k/kvp/Host%20Name").status == 204)
            #expect(try await api.request(.GET, "/v1/vms/k/kvp/Host%20Name").status == 404)

            let badPool = try await api.request(.GET, "/v1/vms/k/kvp?pool=swimming")
            #expect(badPool.status == 400)
            #expect(try badPool.json()["field"] as? String == "pool")
            let longKey = String(repeating: "k", count: 513)
            let badKey = try await api.request(.GET, "/v1/vms/k/kvp/\(longKey)")
            #expect(try badKey.json()["field"] as? String == "key")
            let longValue = String(repeating: "v", count: 2049)
            let badValue = try await api.request(.PUT, "/v1/vms/k/kvp/x", json: #"{"value":"\#(longValue)"}"#)
            #expect(try badValue.json()["field"] as? String == "value")
            let noValue = try await api.request(.PUT, "/v1/vms/k/kvp/x", json: "{}")
            #expect(try noValue.json()["field"] as? String == "value")
        }
    }

    @Test func uploadsGoThroughTheStateDirectoryAndAreRemoved() async throws {
        try await APIHarness.with { api in
            try await api.define("f")
            _ = try await api.request(.POST, "/v1/vms/f/start")
            // The VM's directory is the supervisor's to create; the scripted manager keeps none.
            try FileManager.default.createDirectory(atPath: api.state.path + "/vms/f", withIntermediateDirectories: true)
            let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let reply = try await api.request(.POST, "/v1/vms/f/files?destination=/root/data.bin&overwrite=true", bytes: payload)
            #expect(reply.status == 200, "\(reply.text)")
            #expect(try reply.json()["bytes"] as? Int == payload.count)
            let copy = try #require(await api.manager.copies.last)
            #expect(copy.bytes == payload)
            #expect(copy.destination == "/root/data.bin")
            #expect(copy.source.hasPrefix(api.state.path + "/vms/f/uploads/"))
            let body = try #require(await api.manager.deviceRequests.last?.body)
            #expect(body.contains(#""overwrite":true"#) && body.contains(#""createPath":false"#))
            #expect(try FileManager.default.contentsOfDirectory(atPath: api.state.path + "/vms/f/uploads").isEmpty)

            let noDestination = try await api.request(.POST, "/v1/vms/f/files", bytes: [1])
            #expect(try noDestination.json()["field"] as? String == "destination")
            let relative = try await api.request(.POST, "/v1/vms/f/files?destination=data.bin", bytes: [1])
            #expect(try relative.json()["field"] as? String == "destination")
            let badFlag = try await api.request(.POST, "/v1/vms/f/files?destination=/x&overwrite=perhaps", bytes: [1])
            #expect(try badFlag.json()["field"] as? String == "overwrite")
            let json = try await api.request(.POST, "/v1/vms/f/files?destination=/x", json: "{}")
            #expect(json.status == 415)
        }
    }

    @Test func limitedBodyStopsPastItsLimit() async throws {
        let chunks = [ByteBuffer(repeating: 1, count: 600), ByteBuffer(repeating: 2, count: 600)]
        let stream = AsyncStream<ByteBuffer> { continuation in
            for chunk in chunks { continuation.yield(chunk) }
            continuation.finish()
        }
        var total = 0
        await #expect(throws: Problem.self) {
            for try await chunk in LimitedBody(base: stream, limit: 1000) { total += chunk.readableBytes }
        }
        #expect(total == 600)
    }

    @Test func unknownRoutesAreProblemsToo() async throws {
        try await APIHarness.with { api in
            let reply = try await api.request(.GET, "/v2/things")
            #expect(reply.status == 404)
            #expect(reply.header("Content-Type") == "application/problem+json")
            #expect(try reply.json()["type"] as? String == "urn:veneer:problem:no-route")
        }
    }

    @Test func eventsStreamAsNDJSON() async throws {
        try await APIHarness.with { api in
            try await api.define("e")
            var request = HTTPClientRequest(url: api.baseURL + "/v1/events")
            request.method = .GET
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "Content-Type") == "application/x-ndjson")
            // The stream is subscribed once the headers are out; now cause two events.
            for _ in 0..<100 where await api.manager.eventSubscribers == 0 { try await Task.sleep(for: .milliseconds(10)) }
            _ = try await api.request(.POST, "/v1/vms/e/start")
            _ = try await api.request(.POST, "/v1/vms/e/pause")
            var text = ""
            for try await chunk in response.body {
                text += String(buffer: chunk)
                if text.split(separator: "\n").count >= 2 { break }
            }
            let events = try text.split(separator: "\n").map { try JSONDecoder().decode(VMEvent.self, from: Data($0.utf8)) }
            #expect(events.map(\.state) == [.running, .paused])
            #expect(events.allSatisfy { $0.name == "e" })
        }
    }

    @Test func metricsRenderWorkersPluginsAndRequests() async throws {
        try await APIHarness.with { api in
            try await api.define("m")
            await api.manager.setMetrics([
                "m": WorkerMetrics(
                    vcpus: [.init(index: 0, exits: ["io": 5, "hlt": 2]), .init(index: 1, exits: ["io": 7])],
                    vmbus: ["messages_in": 3, "packets_out": 9],
                    devices: ["kvp0": [
                        .init(kind: "counter", name: "requests_total", help: "requests served", value: 4),
                        // Hostile: the same family as another kind, a negative counter, an odd name, NaN.
                        .init(kind: "gauge", name: "requests_total", help: "other", value: 1),
                        .init(kind: "counter", name: "negative", help: "", value: -1),
                        .init(kind: "gauge", name: "queue depth{x=\"1\"}", help: "depth", value: 2),
                        .init(kind: "gauge", name: "nan", help: "", value: .nan),
                        .init(kind: "histogram", name: "weird", help: "", value: 1),
                    ]],
                ),
            ])
            _ = try await api.request(.GET, "/v1/vms")
            let reply = try await api.request(.GET, "/v1/metrics")
            #expect(reply.status == 200)
            #expect(reply.header("Content-Type")?.hasPrefix("text/plain") == true)
            let text = reply.text
            #expect(text.contains(#"veneer_vcpu_exits_total{vm="m",vcpu="0",reason="io"} 5"#), "\(text)")
            #expect(text.contains(#"veneer_vcpu_exits_total{vm="m",vcpu="1",reason="io"} 7"#))
            #expect(text.contains(#"veneer_vmbus_packets_out_total{vm="m"} 9"#))
            #expect(text.contains(#"veneer_device_requests_total{vm="m",device="kvp0"} 4"#))
            #expect(text.contains(#"veneer_device_queue_depth_x__1__{vm="m",device="kvp0"} 2"#))
            #expect(!text.contains("veneer_device_negative") && !text.contains("veneer_device_nan") && !text.contains("veneer_device_weird"))
            #expect(text.contains(#"veneer_vms{state="Off"} 1"#))
            // veneerd's own request counters, through swift-metrics.
            #expect(text.contains("hb_requests"), "\(text)")
        }
    }
}
