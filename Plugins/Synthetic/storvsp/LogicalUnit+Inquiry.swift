import SCSIProtocol

/// INQUIRY (standard data and VPD pages) and MODE SENSE of a LUN. Linux overwrites the status
/// of INQUIRY and MODE SENSE(6) with GOOD, so every answer here is valid data of the right size.
extension LogicalUnit {
    var supportedVPDPages: [UInt8] {
        var pages = [VPDPage.supportedPages, VPDPage.unitSerialNumber, VPDPage.deviceIdentification]
        if kind == .disk {
            pages += [VPDPage.blockLimits, VPDPage.blockDeviceCharacteristics, VPDPage.logicalBlockProvisioning]
        }
        return pages
    }

    var standardInquiry: StandardInquiryData {
        StandardInquiryData(deviceType: kind == .cdrom ? .cdDVD : .directAccess, removable: kind == .cdrom, version: 5,
                            vendor: Self.vendor, product: kind == .cdrom ? Self.cdProduct : Self.diskProduct,
                            revision: Self.revision)
    }

    func inquiry(evpd: Bool, page: UInt8, allocation: Int, buffer: Int) -> SCSIReply {
        guard evpd else { return .dataIn(standardInquiry.encode(), allocation: allocation, buffer: buffer) }
        let data: [UInt8]
        switch page {
        case VPDPage.supportedPages:
            data = VPDPage.supportedPagesPage(peripheral: peripheral, pages: supportedVPDPages)
        case VPDPage.unitSerialNumber:
            data = VPDPage.unitSerialNumberPage(peripheral: peripheral, serial: serial)
        case VPDPage.deviceIdentification:
            data = VPDPage.deviceIdentificationPage(peripheral: peripheral, designators: [
                .naaRegisteredExtended(naaIdentifier),
                .t10(vendor: Self.vendor, specific: "\(Self.diskProduct) \(serial)"),
            ])
        case VPDPage.blockLimits where kind == .disk:
            let perTransfer = maxTransferBytes / blockSize
            let granularity = UInt16(clamping: max(1, physicalBlockSize / blockSize))
            data = BlockLimitsPage(maximumTransferLength: perTransfer, optimalTransferLength: perTransfer,
                                   optimalTransferLengthGranularity: granularity,
                                   maximumUnmapLBACount: canUnmap ? Self.maxUnmapBlocks : 0,
                                   maximumUnmapBlockDescriptorCount: canUnmap ? Self.maxUnmapDescriptors : 0,
                                   optimalUnmapGranularity: canUnmap ? UInt32(granularity) : 0,
                                   maximumWriteSameLength: readOnly ? 0 : UInt64(Self.maxUnmapBlocks)).encode(peripheral: peripheral)
        case VPDPage.blockDeviceCharacteristics where kind == .disk:
            data = BlockDeviceCharacteristicsPage().encode(peripheral: peripheral)
        case VPDPage.logicalBlockProvisioning where kind == .disk:
            data = LogicalBlockProvisioningPage(unmapSupported: canUnmap, writeSame16UnmapSupported: canUnmap,
                                                writeSame10UnmapSupported: canUnmap, readsZeros: false,
                                                provisioningType: canUnmap ? 2 : 0).encode(peripheral: peripheral)
        default:
            return .check(.illegalRequest, .invalidFieldInCDB)
        }
        return .dataIn(data, allocation: allocation, buffer: buffer)
    }

    /// The mode pages this LUN has, in page-code order.
    private func modePages(changeable: Bool) -> [(UInt8, [UInt8])] {
        if kind == .cdrom {
            return [(ModePage.control, ModePage.controlPage(changeable: changeable)),
                    (ModePage.cdCapabilities, ModePage.cdCapabilitiesPage(changeable: changeable))]
        }
        return [(ModePage.caching, ModePage.cachingPage(writeCacheEnabled: writeCacheEnabled, changeable: changeable)),
                (ModePage.control, ModePage.controlPage(changeable: changeable))]
    }

    func modeSense(_ request: ModeSenseRequest, buffer: Int) -> SCSIReply {
        if request.pageControl == .saved { return .check(.illegalRequest, .savingParametersNotSupported) }
        // Subpage 0 only (0xFF, "all subpages", is the same set here).
        guard request.subpage == 0 || request.subpage == 0xFF else { return .check(.illegalRequest, .invalidFieldInCDB) }
        let all = modePages(changeable: request.pageControl == .changeable)
        let pages = request.page == ModePage.all ? all : all.filter { $0.0 == request.page }
        guard !pages.isEmpty else { return .check(.illegalRequest, .invalidFieldInCDB) }
        let descriptor: (blocks: UInt64, blockLength: UInt32)? =
            kind == .disk && !request.disableBlockDescriptors ? (blocks: blocks, blockLength: blockSize) : nil
        let list = ModeParameterList(mediumType: 0, writeProtected: readOnly, dpoFua: kind == .disk,
                                     blockDescriptor: descriptor, pages: pages.flatMap(\.1))
        return .dataIn(request.tenByte ? list.encode10() : list.encode6(), allocation: request.allocationLength, buffer: buffer)
    }
}
