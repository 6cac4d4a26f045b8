import VMBusProtocol

/// GPADL_HEADER, GPADL_BODY, GPADL_TEARDOWN.
extension VMBusState {
    mutating func gpadlHeader(_ header: GPADLHeader, _ env: VMBusEnvironment) {
        do throws(VMBusHostFailure) {
            guard let record = channels[header.childRelid], record.offered, record.phase != .rescinded,
                  !record.releasedByGuest
            else { throw .init("GPADL \(header.gpadl) for relid \(header.childRelid), which is not on offer") }
            // The existing GPADL with this id stays as it is.
            guard gpadls[header.gpadl] == nil else { throw .init("GPADL id \(header.gpadl) already in use") }
            guard gpadls.count < env.limits.maxGPADLs else { throw .init("partition already holds \(gpadls.count) GPADLs") }
            let owned = gpadls.values.reduce(0) { $0 + ($1.owner == header.childRelid ? 1 : 0) }
            guard owned < env.limits.maxGPADLsPerChannel else {
                throw .init("relid \(header.childRelid) already holds \(owned) GPADLs")
            }
            var gpadl = try GPADL(header: header, limits: env.limits)
            guard gpadlBudget + gpadl.budget <= env.limits.maxTotalGPADLPFNs else {
                throw .init("GPADL \(header.gpadl) would exceed the partition's \(env.limits.maxTotalGPADLPFNs) PFNs")
            }
            if gpadl.append(header.rangeWords) { try gpadl.finish(memory: env.memory) }
            gpadls[gpadl.id] = gpadl
            gpadlBudget += gpadl.budget
            if gpadl.isComplete { gpadlCreated(gpadl, ChannelStatus.success, env) }
        } catch {
            refuse("GPADL_HEADER: \(error.reason)", env)
            post(GPADLCreated(childRelid: header.childRelid, gpadl: header.gpadl, creationStatus: ChannelStatus.unsuccessful).encode(), env)
        }
    }

    mutating func gpadlBody(_ body: GPADLBody, _ env: VMBusEnvironment) {
        guard var gpadl = gpadls[body.gpadl], !gpadl.isComplete else {
            // No channel id in a body: without a GPADL being built there is no one to answer.
            drop("GPADL_BODY for GPADL \(body.gpadl), which is not being built", env)
            return
        }
        guard gpadl.append(body.words) else {
            gpadls[gpadl.id] = gpadl
            return
        }
        do throws(VMBusHostFailure) {
            try gpadl.finish(memory: env.memory)
            gpadls[gpadl.id] = gpadl
            gpadlCreated(gpadl, ChannelStatus.success, env)
        } catch {
            refuse("GPADL_BODY: \(error.reason)", env)
            removeGPADL(gpadl.id)
            gpadlCreated(gpadl, ChannelStatus.unsuccessful, env)
        }
    }

    mutating func gpadlTeardown(_ teardown: GPADLTeardown, _ env: VMBusEnvironment) {
        guard let gpadl = gpadls[teardown.gpadl], gpadl.owner == teardown.childRelid else {
            drop("GPADL_TEARDOWN of GPADL \(teardown.gpadl) for relid \(teardown.childRelid), which it does not hold", env)
            return
        }
        guard gpadl.isComplete else {
            drop("GPADL_TEARDOWN of GPADL \(teardown.gpadl) while it is being built", env)
            return
        }
        guard !gpadl.usedByRing else {
            // Tearing down a live ring would pull the pages from under the channel.
            drop("GPADL_TEARDOWN of GPADL \(teardown.gpadl), the ring of open relid \(gpadl.owner)", env)
            return
        }
        removeGPADL(gpadl.id)
        post(GPADLTorndown(gpadl: gpadl.id).encode(), env)
    }

    private func gpadlCreated(_ gpadl: GPADL, _ status: UInt32, _ env: VMBusEnvironment) {
        post(GPADLCreated(childRelid: gpadl.owner, gpadl: gpadl.id, creationStatus: status).encode(), env)
    }

    mutating func removeGPADL(_ id: UInt32) {
        guard let gpadl = gpadls.removeValue(forKey: id) else { return }
        gpadlBudget -= gpadl.budget
    }

    mutating func removeGPADLs(ownedBy relid: UInt32) {
        for id in gpadls.values.filter({ $0.owner == relid }).map(\.id) { removeGPADL(id) }
    }
}
